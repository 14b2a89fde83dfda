"""HumanML3D processed joints (`new_joints/NNNNNN.npy`, (T, 22, 3), 20 fps) into myo28.

The 22 joints are SMPL's, in the order myo28 keeps for its first 22 joints, so the mapping is
the identity for those; heels, hands and thumbs are synthesised from the positions (see
retarget.py). Captions come from `texts/NNNNNN.txt` beside the `new_joints` folder, one per
line as `caption#tok/POS ...#start#end`. A line whose start and end are not both 0 (or NaN)
describes only that stretch of the clip, in seconds: it becomes its own sequence, cropped as
HumanML3D's own loader does. Files named `M<id>` are HumanML3D's mirrored copies and share
the group of `<id>`, so a split keeps them together.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from myocli import skeleton as sk
from myocli.data.converters.checks import LIMIT
from myocli.data.retarget import JointMap, SourceClip, map_to_myo28
from myocli.errors import MyoError

FPS = 20.0
NUM_SMPL_JOINTS = 22
JOINT_MAP = JointMap(joints={name: name for name in sk.JOINT_NAMES[:NUM_SMPL_JOINTS]})


def is_humanml3d(array: np.ndarray) -> bool:
    return array.ndim == 3 and array.shape[1:] == (NUM_SMPL_JOINTS, 3)


def text_file_for(path: Path) -> Path:
    return path.parent.parent / "texts" / f"{path.stem}.txt"


def read_captions(path: Path) -> list[tuple[str, float, float]]:
    """(caption, start, end) per line of a HumanML3D text file; (0, 0) means the whole clip."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MyoError(f"{path}: unreadable HumanML3D text file ({exc})") from exc
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.strip().split("#")
        if len(fields) < 4:
            raise MyoError(f"{path}: line {number} is not `caption#tokens#start#end`")
        if not fields[0].strip():
            raise MyoError(f"{path}: line {number} has an empty caption")
        try:
            start, end = float(fields[2]), float(fields[3])
        except ValueError as exc:
            raise MyoError(f"{path}: line {number} has start/end {fields[2]!r}/{fields[3]!r}, not seconds") from exc
        start, end = (0.0 if np.isnan(start) else start), (0.0 if np.isnan(end) else end)
        # Negative times would count from the clip's end; huge ones (1e308) overflow when rounded to frames.
        if not (0.0 <= start <= LIMIT and 0.0 <= end <= LIMIT):
            raise MyoError(f"{path}: line {number} has start/end {fields[2]!r}/{fields[3]!r}; give seconds >= 0 within the clip")
        entries.append((fields[0].strip(), start, end))
    return entries


def read(path: Path, array: np.ndarray, fps: float = FPS) -> list[SourceClip]:
    positions = np.full((len(array), sk.NUM_JOINTS, 3), np.nan)
    positions[:, :NUM_SMPL_JOINTS] = array
    points = {name: positions[:, i] for i, name in enumerate(sk.JOINT_NAMES[:NUM_SMPL_JOINTS])}
    full = map_to_myo28(points, JOINT_MAP)
    stem = path.stem
    group = stem[1:] if stem.startswith("M") and stem[1:].isdigit() else stem
    text_path = text_file_for(path)
    entries = read_captions(text_path) if text_path.is_file() else []
    # Captions for the whole clip stay together on one sequence; each cropped span is its own.
    spans: dict[tuple[float, float], list[str]] = {}
    for caption, start, end in entries:
        key = (0.0, 0.0) if start == 0.0 and end == 0.0 else (start, end)
        spans.setdefault(key, []).append(caption)
    if not spans:
        spans[(0.0, 0.0)] = []
    clips = []
    for (start, end), captions in spans.items():
        if (start, end) == (0.0, 0.0):
            segment, name = full, stem
        else:
            first, last = round(start * fps), round(end * fps)
            segment, name = full[first:last], f"{stem}_{start:g}-{end:g}s"
            if len(segment) < 2:
                raise MyoError(f"{text_path}: crop {start:g}-{end:g} s leaves {len(segment)} frame(s) of {len(full)}; fix the times")
        times = np.arange(len(segment)) / fps
        clips.append(SourceClip(name=name, positions=segment, times=times, captions=captions, group=group, source="humanml3d"))
    return clips
