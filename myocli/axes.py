"""myo28's axes and MuJoCo's, and the change between them, for every module that hands motions to MuJoCo.

myo28 positions are X left, Y up, Z forward (docs/design.md); MuJoCo's world, as the simulated
humanoid (rl/) and the renderer (render/) set it up, is x forward, y left, z up. The two differ by a
rotation (a cyclic swap of the axes), not a mirror, so a body keeps its left and right.
"""

from __future__ import annotations

import numpy as np


def to_mujoco(positions: np.ndarray) -> np.ndarray:
    """myo28 axes (X left, Y up, Z forward) -> MuJoCo's (x forward, y left, z up): a rotation, not a mirror."""
    return np.asarray(positions, dtype=np.float64)[..., [2, 0, 1]]


def from_mujoco(vectors: np.ndarray) -> np.ndarray:
    """MuJoCo axes -> myo28 axes (the inverse of to_mujoco)."""
    return np.asarray(vectors, dtype=np.float64)[..., [1, 2, 0]]


#: The same change for rotation matrices: R_mujoco = TO_MUJOCO @ R_myo28 @ TO_MUJOCO.T
TO_MUJOCO = to_mujoco(np.eye(3)).T
