"""Reconstruction metrics on myo28 positions (metres in, metres out) and codebook statistics.

Conventions follow the tokenizer papers (MotionGPT, MoMask): MPJPE is measured after moving
both poses' pelvis to the origin in every frame; heading-aligned MPJPE also turns the
prediction to the target's heading, which separates pose error from heading drift; PA-MPJPE after a per-frame similarity
(Procrustes) alignment; acceleration error is the mean distance between second differences.
"""

from __future__ import annotations

import numpy as np

from myocli import skeleton as sk


def mpjpe(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-frame mean joint error after aligning the pelvis: (T, J, 3) x2 -> (T,)."""
    p = predicted - predicted[:, :1]
    t = target - target[:, :1]
    return np.linalg.norm(p - t, axis=-1).mean(axis=-1)


def heading_aligned_mpjpe(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-frame mean joint error after aligning the pelvis and turning the prediction about the
    vertical to the target's heading: (T,). Separates pose error from accumulated heading drift."""
    turn = sk.rotation_about_y(sk.heading_angles(target) - sk.heading_angles(predicted))
    p = np.einsum("tij,tkj->tki", turn, predicted - predicted[:, :1])
    return np.linalg.norm(p - (target - target[:, :1]), axis=-1).mean(axis=-1)


def global_mpjpe(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-frame mean joint error without alignment (the path counts too): (T,)."""
    return np.linalg.norm(predicted - target, axis=-1).mean(axis=-1)


def pa_mpjpe(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-frame mean joint error after the best rotation, scale and translation: (T,)."""
    p = predicted - predicted.mean(axis=1, keepdims=True)
    t = target - target.mean(axis=1, keepdims=True)
    # Optimal rotation of p onto t per frame (Umeyama): SVD of the cross-covariance.
    u, s, vt = np.linalg.svd(np.einsum("tji,tjk->tik", p, t))
    d = np.sign(np.linalg.det(np.einsum("tij,tjk->tik", u, vt)))
    s[:, -1] *= d
    u[:, :, -1] *= d[:, None]
    rotation = np.einsum("tij,tjk->tik", u, vt)  # applied as p @ rotation
    scale = s.sum(axis=-1) / np.maximum((p * p).sum(axis=(1, 2)), 1e-12)
    aligned = scale[:, None, None] * np.einsum("tji,tik->tjk", p, rotation)
    return np.linalg.norm(aligned - t, axis=-1).mean(axis=-1)


def acceleration_error(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-frame mean distance between joint accelerations (metres per frame^2): (T - 2,)."""
    def accel(x):
        return x[2:] - 2 * x[1:-1] + x[:-2]

    return np.linalg.norm(accel(predicted) - accel(target), axis=-1).mean(axis=-1)


def codebook_usage(counts: np.ndarray) -> tuple[float, float]:
    """Fraction of codes used at least once, and perplexity exp(entropy) of their frequencies."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total == 0:
        return 0.0, 0.0
    freq = counts[counts > 0] / total
    return float((counts > 0).mean()), float(np.exp(-(freq * np.log(freq)).sum()))


# Plausibility of a motion on its own (no reference needed): what text-to-motion can be measured by.
SKATING_SPEED_M_S = 0.5  # GMD/OmniControl: a contact foot moving faster than this skates


def low_toes(positions: np.ndarray) -> np.ndarray:
    """(T - 1, 2) bool: whether each toe (left, right) stays below 5 cm in frames t and t + 1."""
    low = positions[:, list(sk.TOE_JOINTS), 1] < sk.FOOT_CONTACT_HEIGHT_M
    return low[1:] & low[:-1]


def skating_toes(positions: np.ndarray, fps: float) -> np.ndarray:
    """(T - 1, 2) bool: whether each toe skates between frames t and t + 1, that is stays low
    (`low_toes`) and moves faster than 0.5 m/s horizontally."""
    toes = positions[:, list(sk.TOE_JOINTS)]
    horizontal = np.linalg.norm((toes[1:] - toes[:-1])[..., [0, 2]], axis=-1) * fps
    return low_toes(positions) & (horizontal > SKATING_SPEED_M_S)


def foot_skating_ratio(positions: np.ndarray, fps: float) -> float:
    """Share of adjacent frame pairs in which a toe skates (`skating_toes`; GMD/OmniControl;
    real data 0.0, MDM about 0.09)."""
    if len(positions) < 2:
        return 0.0
    return float(np.mean(skating_toes(positions, fps).any(axis=-1)))


def penetration_mm(positions: np.ndarray) -> float:
    """Mean depth below the floor (y = 0) of the lowest joint, over frames, in mm (PhysDiff-style)."""
    return float(1000 * np.mean(np.maximum(-positions[..., 1].min(axis=-1), 0.0)))


def floating_mm(positions: np.ndarray) -> float:
    """Mean height of the lowest joint above the contact height (5 cm), over frames, in mm:
    a body whose lowest point stays above that is not standing on anything (jumps count too)."""
    return float(1000 * np.mean(np.maximum(positions[..., 1].min(axis=-1) - sk.FOOT_CONTACT_HEIGHT_M, 0.0)))


def bone_length_error_mm(positions: np.ndarray) -> float:
    """Mean absolute deviation of the 27 bone lengths from myo28's, in mm."""
    return float(1000 * np.mean(np.abs(sk.bone_lengths(positions) - sk.CANONICAL_BONE_LENGTHS)))


def displacement_errors(predicted: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """ADE and FDE in metres: mean joint distance over all frames and at the last frame (motion prediction)."""
    distances = np.linalg.norm(predicted - target, axis=-1).mean(axis=-1)
    return float(distances.mean()), float(distances[-1])
