"""Rotation matrices from the parametrisations mocap formats use (Euler angles, quaternions).

Vectorised numpy: every function takes arrays with any leading shape and returns (..., 3, 3).
"""

from __future__ import annotations

import numpy as np


def axis_rotation(axis: str, angle: np.ndarray) -> np.ndarray:
    """Rotation by `angle` radians about the x, y or z axis: (...,) -> (..., 3, 3)."""
    angle = np.asarray(angle, dtype=np.float64)
    c, s = np.cos(angle), np.sin(angle)
    zero, one = np.zeros_like(c), np.ones_like(c)
    rows = {
        "x": ((one, zero, zero), (zero, c, -s), (zero, s, c)),
        "y": ((c, zero, s), (zero, one, zero), (-s, zero, c)),
        "z": ((c, -s, zero), (s, c, zero), (zero, zero, one)),
    }[axis.lower()]
    return np.stack([np.stack(row, -1) for row in rows], -2)


def euler_to_matrix(angles: np.ndarray, order: str, degrees: bool = True) -> np.ndarray:
    """Compose R = R_order[0] @ R_order[1] @ ... from angles (..., len(order)).

    `order` names the axis of each angle column, e.g. "zyx" for BVH channels
    `Zrotation Yrotation Xrotation` (R = Rz Ry Rx). An empty order gives the identity.
    """
    angles = np.asarray(angles, dtype=np.float64)
    if degrees:
        angles = np.deg2rad(angles)
    result = np.broadcast_to(np.eye(3), (*angles.shape[:-1], 3, 3)).copy()
    for column, axis in enumerate(order):
        result = result @ axis_rotation(axis, angles[..., column])
    return result


def quaternion_to_matrix(quaternions: np.ndarray) -> np.ndarray:
    """Rotation matrices from quaternions (..., 4) in (w, x, y, z) order; normalised first."""
    q = np.asarray(quaternions, dtype=np.float64)
    q = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)
    w, x, y, z = np.moveaxis(q, -1, 0)
    m = np.empty((*q.shape[:-1], 3, 3))  # filled in place: the tracking environment calls this every step
    m[..., 0, 0], m[..., 0, 1], m[..., 0, 2] = 1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)
    m[..., 1, 0], m[..., 1, 1], m[..., 1, 2] = 2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)
    m[..., 2, 0], m[..., 2, 1], m[..., 2, 2] = 2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)
    return m


def matrix_to_euler_zxy(matrices: np.ndarray, degrees: bool = True) -> np.ndarray:
    """Angles (..., 3) in channel order (z, x, y) with R = Rz Rx Ry: the inverse of
    euler_to_matrix(angles, "zxy"). Near x = +-90 degrees (gimbal lock) z absorbs the rotation."""
    m = np.asarray(matrices, dtype=np.float64)
    x = np.arcsin(np.clip(m[..., 2, 1], -1.0, 1.0))
    locked = np.abs(m[..., 2, 1]) > 1 - 1e-9
    z = np.where(locked, np.arctan2(m[..., 1, 0], m[..., 0, 0]), np.arctan2(-m[..., 0, 1], m[..., 1, 1]))
    y = np.where(locked, 0.0, np.arctan2(-m[..., 2, 0], m[..., 2, 2]))
    angles = np.stack([z, x, y], axis=-1)
    return np.rad2deg(angles) if degrees else angles


def continuous_zxy(angles: np.ndarray) -> np.ndarray:
    """Make ZXY Euler angles (T, ..., 3), degrees, continuous over time: every rotation has two
    ZXY solutions, (z, x, y) and (z + 180, 180 - x, y + 180), and any angle + 360 k; pick, frame
    by frame, the one nearest the previous frame, so tools that interpolate keys do not spin."""
    angles = np.asarray(angles, dtype=np.float64)
    other = angles + np.array([180.0, 0.0, 180.0])
    other[..., 1] = 180.0 - angles[..., 1]
    out = np.empty_like(angles)
    out[0] = angles[0]
    for t in range(1, len(angles)):
        previous = out[t - 1]
        candidates = [c + 360.0 * np.round((previous - c) / 360.0) for c in (angles[t], other[t])]
        distance = [np.abs(c - previous).sum(-1, keepdims=True) for c in candidates]
        out[t] = np.where(distance[0] <= distance[1], candidates[0], candidates[1])
    return out
