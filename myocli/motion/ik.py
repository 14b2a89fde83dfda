"""Joint rotations from myo28 positions: inverse kinematics on the myo28 hierarchy.

For each joint, parent before child, the global rotation is the one that best turns the
rest offsets of its children into the observed child offsets:
- one child: the smallest rotation that carries the child's rest direction (as the parent
  already turned it) onto the observed one, so no twist is invented;
- several children (pelvis, spine3, ankles, wrists): the least-squares rotation (Kabsch).
Leaves keep their parent's rotation. Forward kinematics of the result with canonical bone
lengths gives back the positions exactly along every single-child chain, and to within the
difference between the observed and the rest angles among sibling bones elsewhere.
"""

from __future__ import annotations

import numpy as np

from myocli import skeleton as sk


def _smallest_rotation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotations (T, 3, 3) taking unit vectors a (T, 3) onto b (T, 3) about their common normal."""
    axis = np.cross(a, b)
    sin = np.linalg.norm(axis, axis=-1)
    cos = np.clip((a * b).sum(-1), -1.0, 1.0)
    # Antiparallel vectors: any perpendicular axis will do.
    flip = sin < 1e-9
    fallback = np.cross(a, np.where(np.abs(a[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]]))
    axis = np.where(flip[:, None], fallback, axis)
    axis /= np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-12)
    angle = np.arctan2(sin, cos)
    k = np.zeros((len(a), 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k -= k.transpose(0, 2, 1)
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def _kabsch(rest: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Rotations (T, 3, 3) R minimising sum |R rest_i - observed_i|^2; rest (n, 3), observed (T, n, 3)."""
    u, _, vt = np.linalg.svd(np.einsum("tni,nj->tij", observed, rest))
    d = np.sign(np.linalg.det(u @ vt))
    u[:, :, -1] *= d[:, None]
    return u @ vt


def world_rotations(positions: np.ndarray) -> np.ndarray:
    """Positions (T, 28, 3) -> each joint's global rotation (T, 28, 3, 3), parents first."""
    p = sk.as_joints(np.asarray(positions, dtype=np.float64))
    frames = len(p)
    world = np.empty((frames, sk.NUM_JOINTS, 3, 3))
    for j in range(sk.NUM_JOINTS):
        parent = sk.PARENTS[j]
        parent_rotation = world[:, parent] if parent >= 0 else np.broadcast_to(np.eye(3), (frames, 3, 3))
        children = sk.CHILDREN[j]
        if not children:
            world[:, j] = parent_rotation
        elif len(children) == 1:
            c = children[0]
            rest = parent_rotation @ (sk.REST_OFFSETS[c] / np.linalg.norm(sk.REST_OFFSETS[c]))
            seen = p[:, c] - p[:, j]
            seen = seen / np.maximum(np.linalg.norm(seen, axis=-1, keepdims=True), 1e-12)
            world[:, j] = _smallest_rotation(rest, seen) @ parent_rotation
        else:
            world[:, j] = _kabsch(sk.REST_OFFSETS[list(children)], p[:, list(children)] - p[:, j : j + 1])
    return world


def solve(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (T, 28, 3) -> (root positions (T, 3), local rotations (T, 28, 3, 3))."""
    p = sk.as_joints(np.asarray(positions, dtype=np.float64))
    world = world_rotations(p)
    local = np.empty_like(world)
    local[:, 0] = world[:, 0]
    for j in range(1, sk.NUM_JOINTS):
        local[:, j] = world[:, sk.PARENTS[j]].transpose(0, 2, 1) @ world[:, j]
    return p[:, 0].copy(), local
