"""Helpers shared by the test_rl_*.py files: a hinge's column, a short-legged walk, and the lowest foot
point of the humanoid's pose of a reference."""

from __future__ import annotations

import numpy as np

from myocli import skeleton as sk
from myocli.rl import humanoid as hu


def hinge(name: str) -> int:
    """The column of a hinge (e.g. "left_knee_y") in qpos[7:], ctrl and the policy's actions."""
    return [h.name for h in hu.HINGE_LIST].index(name)


def short_legged(clip: np.ndarray) -> np.ndarray:
    """The clip (T, 28, 3) with thigh and shin 7% shorter, 2.8 cm each (a generated walk's: 2.2 and 3.1 cm)."""
    from myocli.motion.floor import on_floor

    bones = clip[:, 1:] - clip[:, sk.PARENTS[1:]]
    lengths = sk.CANONICAL_BONE_LENGTHS.copy()
    legs = [b - 1 for b in (sk.JOINT_INDEX[n] for n in ("left_knee", "right_knee", "left_ankle", "right_ankle"))]
    lengths[legs] *= 0.93
    return on_floor(sk.chain_from_directions(clip[:, 0], bones / np.linalg.norm(bones, axis=-1, keepdims=True), lengths))


def lowest_foot_point(reference) -> np.ndarray:
    """Height (T,) of the humanoid's lowest heel or ball in its pose of the reference, feet on the joint line."""
    return hu.joint_positions(reference.sites)[:, list(sk.FOOT_CONTACT_JOINTS), 1].min(1)
