"""Model-facing motion features from myo28 global positions, and their exact inverse.

Positions say where the character stands and which way it faces; a model should not have
to learn that twice. As HumanML3D does for SMPL, each frame is described in its own
heading frame (the ground-plane direction the hips and shoulders face), and the root's
path is kept only as velocities. One frame of features (FEATURE_DIM = 173, float):

    [0]        root yaw velocity: heading change from the previous frame, radians (0 at frame 0)
    [1:3]      root planar velocity: pelvis (x, z) displacement from the previous frame, metres,
               in this frame's heading frame (0 at frame 0)
    [3]        root height: pelvis y, metres above the floor
    [4:85]     local positions: joints 1..27 relative to the pelvis's ground point (x and z
               relative, y absolute height), in the heading frame, metres (27 x 3)
    [85:169]   joint velocities: displacement of all 28 joints from the previous frame, in the
               heading frame, metres per frame (28 x 3; 0 at frame 0)
    [169:173]  foot contacts (left heel, left toe, right heel, right toe): 1 when the point is
               below CONTACT_HEIGHT_M and moves slower than CONTACT_SPEED_M_S

Heading is `skeleton.heading_angles`: from +Z towards +X, so `skeleton.rotation_about_y(h)`
turns +Z to the facing direction. The inverse integrates the yaw and root velocities and places the local
positions; it is exact (float64) given the start heading and ground position, which are
both 0 for clips written by `myo data convert`. Velocities and contacts are redundant for
the inverse and exist to give the model smoother targets, as in HumanML3D.
"""

from __future__ import annotations

import numpy as np

from myocli import skeleton as sk
from myocli.motion.floor import on_floor

ROOT_YAW_VELOCITY = slice(0, 1)
ROOT_PLANAR_VELOCITY = slice(1, 3)
ROOT_HEIGHT = slice(3, 4)
LOCAL_POSITIONS = slice(4, 4 + (sk.NUM_JOINTS - 1) * 3)
JOINT_VELOCITIES = slice(LOCAL_POSITIONS.stop, LOCAL_POSITIONS.stop + sk.NUM_JOINTS * 3)
FOOT_CONTACTS = slice(JOINT_VELOCITIES.stop, JOINT_VELOCITIES.stop + len(sk.FOOT_CONTACT_JOINTS))
FEATURE_DIM = FOOT_CONTACTS.stop  # 173
FEATURE_VERSION = 1  # bump when the layout changes; checkpoints record it

BLOCKS = {
    "root_yaw_velocity": ROOT_YAW_VELOCITY,
    "root_planar_velocity": ROOT_PLANAR_VELOCITY,
    "root_height": ROOT_HEIGHT,
    "local_positions": LOCAL_POSITIONS,
    "joint_velocities": JOINT_VELOCITIES,
    "foot_contacts": FOOT_CONTACTS,
}

CONTACT_HEIGHT_M = sk.FOOT_CONTACT_HEIGHT_M
CONTACT_SPEED_M_S = 0.5  # the foot-skating convention of GMD/OmniControl (docs/evaluation.md)
_GROUND = np.array([1.0, 0.0, 1.0])


def _wrap(angle: np.ndarray) -> np.ndarray:
    return (angle + np.pi) % (2 * np.pi) - np.pi


def _displacements(values: np.ndarray) -> np.ndarray:
    """Frame-to-frame differences along axis 0, with zeros for frame 0."""
    out = np.zeros_like(values)
    out[1:] = values[1:] - values[:-1]
    return out


def foot_contacts(positions: np.ndarray, fps: float) -> np.ndarray:
    """(T, 28, 3) -> (T, 4) of 0/1 for left heel, left toe, right heel, right toe."""
    feet = positions[:, list(sk.FOOT_CONTACT_JOINTS)]
    speed = np.linalg.norm(_displacements(feet), axis=-1) * fps
    if len(speed) > 1:
        speed[0] = speed[1]  # frame 0 has no previous frame: take the next step's speed
    return ((feet[..., 1] < CONTACT_HEIGHT_M) & (speed < CONTACT_SPEED_M_S)).astype(np.float64)


def to_features(positions: np.ndarray, fps: float) -> np.ndarray:
    """Global positions (T, 28, 3) or (T, 84), metres -> features (T, FEATURE_DIM), float64."""
    p = sk.as_joints(np.asarray(positions, dtype=np.float64))
    heading = sk.heading_angles(p)
    into_heading = sk.rotation_about_y(-heading)  # world -> heading frame, per frame
    root = p[:, 0]

    planar = _displacements(root) * _GROUND
    planar_velocity = np.einsum("tij,tj->ti", into_heading, planar)[:, [0, 2]]
    local = np.einsum("tij,tkj->tki", into_heading, p[:, 1:] - (root * _GROUND)[:, None])
    velocity = np.einsum("tij,tkj->tki", into_heading, _displacements(p))
    return np.concatenate(
        [
            _wrap(_displacements(heading))[:, None],
            planar_velocity,
            root[:, 1:2],
            local.reshape(len(p), -1),
            velocity.reshape(len(p), -1),
            foot_contacts(p, fps),
        ],
        axis=-1,
    )


def start_pose(positions: np.ndarray) -> tuple[float, np.ndarray]:
    """Heading and pelvis ground point (x, z) of frame 0: what the features leave out."""
    p = sk.as_joints(np.asarray(positions, dtype=np.float64))
    return float(sk.heading_angles(p[0])), p[0, 0, [0, 2]].copy()


def from_features(features: np.ndarray, start_heading: float = 0.0, start_xz=(0.0, 0.0)) -> np.ndarray:
    """Features (T, FEATURE_DIM) -> global positions (T, 28, 3), float64.

    The path starts at `start_xz` facing `start_heading` (the origin facing +Z by default,
    which is where every converted clip starts).
    """
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[-1] != FEATURE_DIM:
        raise ValueError(f"features must be shaped (T, {FEATURE_DIM}), got {f.shape}")
    frames = len(f)
    heading = start_heading + np.cumsum(f[:, ROOT_YAW_VELOCITY.start])
    to_world = sk.rotation_about_y(heading)
    planar = np.zeros((frames, 3))
    planar[:, [0, 2]] = f[:, ROOT_PLANAR_VELOCITY]
    ground = np.cumsum(np.einsum("tij,tj->ti", to_world, planar), axis=0)
    ground[:, [0, 2]] += np.asarray(start_xz, dtype=np.float64)
    local = f[:, LOCAL_POSITIONS].reshape(frames, sk.NUM_JOINTS - 1, 3)
    joints = np.einsum("tij,tkj->tki", to_world, local) + ground[:, None]
    root = ground.copy()
    root[:, 1] = f[:, ROOT_HEIGHT.start]
    return np.concatenate([root[:, None], joints], axis=1)


def generated_positions(features: np.ndarray, start=(0.0, (0.0, 0.0))) -> np.ndarray:
    """A generator's features (T, FEATURE_DIM) -> positions (T, 28, 3) float32 on the floor, starting
    at `start` (heading, ground point: see `start_pose`). Frame 0 is placed at the start pose; its own
    step (non-zero when a motion begins mid-stride) would move it one frame further."""
    features = np.array(features, dtype=np.float64)
    features[0, ROOT_YAW_VELOCITY] = 0.0
    features[0, ROOT_PLANAR_VELOCITY] = 0.0
    return on_floor(from_features(features, *start)).astype(np.float32)


def generated_positions_torch(features):
    """`generated_positions` for a batch of torch tensors, differentiable: (B, T, FEATURE_DIM) -> (B, T, 28, 3)
    starting at the origin facing +Z, the lowest foot point of each motion at y = 0. The floor is found
    without gradient: it is the world, and a loss on heights should move the body, not the floor."""
    features = features.clone()
    features[:, 0, ROOT_YAW_VELOCITY] = 0.0
    features[:, 0, ROOT_PLANAR_VELOCITY] = 0.0
    positions = from_features_torch(features)
    floor = positions[:, :, list(sk.FOOT_CONTACT_JOINTS), 1].amin(dim=(1, 2)).detach()
    lift = positions.new_zeros(positions.shape[0], 1, 1, 3)
    lift[..., 1] = floor[:, None, None]
    return positions - lift


def from_features_torch(features):
    """`from_features` for a batch of torch tensors, differentiable: (B, T, FEATURE_DIM) -> (B, T, 28, 3).

    Starts at the origin facing +Z (what a generated motion does); the loss terms of
    myocli/motion/physics_loss.py reach the features through it. Tested against `from_features`.
    """
    import torch

    batch, frames, _ = features.shape
    heading = torch.cumsum(features[..., ROOT_YAW_VELOCITY.start], dim=1)
    cos, sin = heading.cos(), heading.sin()
    vx, vz = features[..., ROOT_PLANAR_VELOCITY.start], features[..., ROOT_PLANAR_VELOCITY.start + 1]
    # rotation_about_y(heading) applied to (vx, 0, vz): the step in world axes.
    ground_x = torch.cumsum(cos * vx + sin * vz, dim=1)
    ground_z = torch.cumsum(-sin * vx + cos * vz, dim=1)
    local = features[..., LOCAL_POSITIONS].reshape(batch, frames, sk.NUM_JOINTS - 1, 3)
    lx, ly, lz = local.unbind(-1)
    cos, sin = cos.unsqueeze(-1), sin.unsqueeze(-1)
    joints = torch.stack([cos * lx + sin * lz + ground_x.unsqueeze(-1), ly, -sin * lx + cos * lz + ground_z.unsqueeze(-1)], dim=-1)
    root = torch.stack([ground_x, features[..., ROOT_HEIGHT.start], ground_z], dim=-1)
    return torch.cat([root.unsqueeze(2), joints], dim=2)
