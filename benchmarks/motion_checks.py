"""Geometric checks: does a generated motion show the basic geometry of the motion asked for?

Each check reads positions (T, 28, 3) in metres, Y up, on the floor, at `fps`, and says whether
the motion has the one property any clip of that motion has (a walk moves at walking speed
upright, a cartwheel puts the head below the pelvis, a get-up starts low and ends standing...).
They are deliberately simple and loose: they tell a walk from a shuffle in place, not a good
walk from a bad one. Every check passes on the real clips of its motion in ../shared/data
(tests/test_motion_checks.py).
"""

from __future__ import annotations

import numpy as np

from myocli import skeleton as sk

J = sk.JOINT_INDEX
UPRIGHT_HEAD_M = 1.25  # myo28 stands with the head at about 1.58 m
FEET = [J["left_ankle"], J["right_ankle"], J["left_foot"], J["right_foot"], J["left_heel"], J["right_heel"]]


def _height(p: np.ndarray, joint: str) -> np.ndarray:
    return p[:, J[joint], 1]


def ground_speed(p: np.ndarray, fps: float) -> float:
    """Mean horizontal speed of the pelvis over the motion, m/s (distance covered / time, so a shuffle in place is near 0)."""
    path = p[:, J["pelvis"], :][:, [0, 2]]
    return float(np.linalg.norm(np.diff(path, axis=0), axis=1).sum() / max(len(p) - 1, 1) * fps)


def upright(p: np.ndarray) -> bool:
    return float(np.median(_height(p, "head"))) > UPRIGHT_HEAD_M


def airborne_frames(p: np.ndarray, clearance: float = 0.08) -> int:
    """The longest run of frames with every foot point above `clearance` metres."""
    up = p[:, FEET, 1].min(axis=1) > clearance
    longest = run = 0
    for flag in up:
        run = run + 1 if flag else 0
        longest = max(longest, run)
    return longest


def inverted(p: np.ndarray) -> bool:
    """Some frame has the head below the pelvis (upside down, as in a cartwheel or a flip)."""
    return bool(np.any(_height(p, "head") < _height(p, "pelvis")))


def largest_turn_degrees(p: np.ndarray) -> float:
    """How far the hips' heading gets from where it started (the hips alone: raised arms tilt the shoulders' line)."""
    across = p[:, J["left_hip"]] - p[:, J["right_hip"]]
    angles = np.unwrap(np.arctan2(-across[:, 2], across[:, 0]))
    return float(np.degrees(np.max(np.abs(angles - angles[0]))))


def strike(p: np.ndarray, fps: float) -> tuple[float, float]:
    """How far in front of the pelvis a wrist gets along the facing direction (m), and its fastest forward speed (m/s)."""
    forward = sk.facing_directions(p)
    ahead = [((p[:, J[w]] - p[:, J["pelvis"]]) * forward).sum(axis=-1) for w in ("left_wrist", "right_wrist")]
    return float(max(a.max() for a in ahead)), float(max(np.diff(a).max() * fps for a in ahead))


def highest_foot(p: np.ndarray) -> float:
    return float(p[:, FEET, 1].max())


def _window(p: np.ndarray, fps: float, seconds: float, end: bool) -> np.ndarray:
    frames = max(1, int(seconds * fps))
    return p[-frames:] if end else p[:frames]


CHECKS = {
    # motion: (what it asks, the check)
    "walk": ("upright, pelvis moving 0.5-2.0 m/s", lambda p, fps: upright(p) and 0.5 <= ground_speed(p, fps) <= 2.0),
    "jog": ("upright, pelvis moving at 1.0 m/s or more", lambda p, fps: upright(p) and ground_speed(p, fps) >= 1.0),
    "run": ("upright, pelvis moving at 1.8 m/s or more", lambda p, fps: upright(p) and ground_speed(p, fps) >= 1.8),
    "jump": ("both feet 8 cm off the floor together for 0.15 s or more", lambda p, fps: airborne_frames(p) >= max(2, round(0.15 * fps))),
    "cartwheel": ("the head below the pelvis at some point", lambda p, fps: inverted(p)),
    "backflip": ("the head below the pelvis and both feet off the floor", lambda p, fps: inverted(p) and airborne_frames(p) >= 2),
    "crawl": ("the head below 0.9 m most of the time while the pelvis moves 0.2 m/s or more",
              lambda p, fps: float(np.median(_height(p, "head"))) < 0.9 and ground_speed(p, fps) >= 0.2),
    "get up": ("the head below 0.8 m in the first 0.5 s and above 1.25 m in the last 0.5 s",
               lambda p, fps: _height(_window(p, fps, 0.5, False), "head").mean() < 0.8
               and _height(_window(p, fps, 0.5, True), "head").mean() > UPRIGHT_HEAD_M),
    "kick": ("a foot 0.45 m or more off the floor while the head stays above 0.9 m",
             lambda p, fps: highest_foot(p) >= 0.45 and bool(np.all(_height(p, "head") > 0.9))),
    "punch": ("upright, a wrist thrust 0.45 m or more in front of the pelvis at 1.8 m/s or faster",
              lambda p, fps: upright(p) and strike(p, fps)[0] >= 0.45 and strike(p, fps)[1] >= 1.8),
    "turn": ("the hips turn 90 degrees or more away from their first heading", lambda p, fps: largest_turn_degrees(p) >= 90),
}  # fmt: skip


def check(motion: str, positions: np.ndarray, fps: float) -> bool:
    return bool(CHECKS[motion][1](np.asarray(positions, dtype=np.float64), fps))
