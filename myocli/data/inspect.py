"""The facts `myo data inspect` reports about a myo28 dataset file, as one JSON-ready dict."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np

from myocli import skeleton as sk
from myocli.data.h5 import read_dataset

STANDING_PELVIS_HEIGHT = 0.88  # legs nearly straight (0.94 m when straight)
STANDING_TORSO_RISE = 0.52  # neck this far above the pelvis (0.541 m upright): no bowing or slouching
STANDING_HEAD_RISE = 0.10  # head this far above the neck (0.12 m upright): head not bowed


def _stats(values: np.ndarray) -> dict:
    return {"min": float(values.min()), "median": float(np.median(values)), "mean": float(values.mean()),
            "max": float(values.max())}  # fmt: skip


def standing_frames(motion: np.ndarray) -> np.ndarray:
    """Mask of frames where the body stands upright with both feet on the floor."""
    feet_down = motion[:, sk.FOOT_CONTACT_JOINTS, 1].reshape(len(motion), 2, 2).min(axis=-1).max(axis=-1) < sk.FOOT_CONTACT_HEIGHT_M
    pelvis = motion[:, sk.JOINT_INDEX["pelvis"]]
    neck = motion[:, sk.JOINT_INDEX["neck"], 1]
    upright = (neck - pelvis[:, 1] > STANDING_TORSO_RISE) & (motion[:, sk.JOINT_INDEX["head"], 1] - neck > STANDING_HEAD_RISE)
    return feet_down & upright & (pelvis[:, 1] > STANDING_PELVIS_HEIGHT)


def inspect_file(path: str | Path, samples: int = 5, seed: int = 0) -> dict:
    dataset = read_dataset(path, check_values=False)
    sequences = dataset.sequences
    lengths = np.array([len(s) for s in sequences])
    frames = np.concatenate([s.motion for s in sequences]).astype(np.float64)
    finite = np.isfinite(frames).all(axis=(1, 2))
    good = frames[finite]
    bones = sk.bone_lengths(good)
    deviation = np.abs(bones - sk.CANONICAL_BONE_LENGTHS)
    head_standing = []
    for seq in sequences:
        standing = standing_frames(seq.motion)  # NaN compares False, so bad frames never count
        if standing.any():
            head_standing.append(float(seq.motion[standing, sk.JOINT_INDEX["head"], 1].max()))
    feet_per_sequence = np.array([np.nanmin(s.motion[:, sk.FOOT_CONTACT_JOINTS, 1]) for s in sequences])
    captions = [c for s in sequences for c in s.captions]
    picked = random.Random(seed).sample(range(len(sequences)), min(samples, len(sequences)))
    edges = np.linspace(0, lengths.max() / dataset.fps, 9)
    histogram, _ = np.histogram(lengths / dataset.fps, bins=edges)
    return {
        "file": str(path),
        "format": dataset.attrs.get("format", "myo-motion (seed layout, no attributes)"),
        "format_version": dataset.format_version,
        "skeleton": sk.NAME,
        "joint_names": list(sk.JOINT_NAMES),
        "fps": dataset.fps,
        "sequences": len(sequences),
        "recordings": len({s.group or s.name for s in sequences}),
        "frames": int(lengths.sum()),
        "duration_s": float(lengths.sum() / dataset.fps),
        "length_s": _stats(lengths / dataset.fps),
        "length_histogram_s": {"edges": [round(float(e), 3) for e in edges], "counts": histogram.tolist()},
        "captions": {"total": len(captions), "unique": len(set(captions)),
                     "samples": [{"name": sequences[i].name, "text": sequences[i].captions[0]} for i in picked]},
        "sources": dict(Counter(s.source or "unknown" for s in sequences).most_common()),
        "licenses": dict(Counter(s.license or "unknown" for s in sequences).most_common()),
        "bone_length_m": {
            name: {"canonical": float(sk.CANONICAL_BONE_LENGTHS[b]), "min": float(bones[:, b].min()),
                   "max": float(bones[:, b].max()), "std": float(bones[:, b].std())}
            for b, name in enumerate(sk.BONE_NAMES)
        },
        "max_bone_deviation_m": float(deviation.max()) if len(deviation) else None,
        "lowest_foot_height_m": float(np.nanmin(feet_per_sequence)),
        "lowest_foot_height_per_sequence_m": _stats(feet_per_sequence),
        "lowest_joint_height_m": float(good[..., 1].min()) if len(good) else None,
        "standing_head_height_m": _stats(np.array(head_standing)) if head_standing else None,
        "nonfinite_values": int((~np.isfinite(frames)).sum()),
        "nonfinite_frames": int((~finite).sum()),
    }  # fmt: skip
