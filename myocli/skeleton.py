"""The myo28 joint core: the one definition of the skeleton every other module imports.

myo28 keeps the 22 SMPL / HumanML3D joints in their order and with their parents (so HumanML3D
tooling such as the foot indices 7, 10, 8, 11 carries over) and adds six joints that make foot
roll and hand orientation visible from positions alone: heels, middle knuckles and thumbs.
Bone lengths follow the body origins of MyoSkeleton v2.

Coordinates: metres, Y up, +Z forward (the way the character faces), +X the character's left.
A motion is an array of global joint positions shaped (T, 28, 3), or (T, 84) flattened.

This module imports only numpy and has no per-frame Python loops: every helper works on
arrays with any leading shape (frames, batches), looping only over the 28 joints.
"""

from __future__ import annotations

import numpy as np

# name, parent index, rest offset from the parent (x, y, z) in metres, arms hanging down.
_TABLE: tuple[tuple[str, int, tuple[float, float, float]], ...] = (
    ("pelvis", -1, (0.0, 0.0, 0.0)),
    ("left_hip", 0, (0.0785, -0.078, 0.0)),
    ("right_hip", 0, (-0.0785, -0.078, 0.0)),
    ("spine1", 0, (0.0, 0.143, 0.0)),
    ("left_knee", 1, (0.0, -0.404, 0.0)),
    ("right_knee", 2, (0.0, -0.404, 0.0)),
    ("spine2", 3, (0.0, 0.066, 0.0)),
    ("left_ankle", 4, (0.0, -0.400, 0.0)),
    ("right_ankle", 5, (0.0, -0.400, 0.0)),
    ("spine3", 6, (0.0, 0.045, 0.0)),
    ("left_foot", 7, (0.0, -0.050, 0.129)),
    ("right_foot", 8, (0.0, -0.050, 0.129)),
    ("neck", 9, (0.0, 0.287, 0.0)),
    ("left_collar", 9, (0.030, 0.260, 0.040)),
    ("right_collar", 9, (-0.030, 0.260, 0.040)),
    ("head", 12, (0.0, 0.120, 0.0)),
    ("left_shoulder", 13, (0.145, -0.010, -0.020)),
    ("right_shoulder", 14, (-0.145, -0.010, -0.020)),
    ("left_elbow", 16, (0.0, -0.286, 0.0)),
    ("right_elbow", 17, (0.0, -0.286, 0.0)),
    ("left_wrist", 18, (0.0, -0.258, 0.0)),
    ("right_wrist", 19, (0.0, -0.258, 0.0)),
    ("left_heel", 7, (0.0, -0.060, -0.045)),
    ("right_heel", 8, (0.0, -0.060, -0.045)),
    ("left_hand", 20, (0.0, -0.082, 0.0)),
    ("right_hand", 21, (0.0, -0.082, 0.0)),
    ("left_thumb", 20, (0.0, -0.045, 0.057)),
    ("right_thumb", 21, (0.0, -0.045, 0.057)),
)

NAME = "myo28"
JOINT_NAMES: tuple[str, ...] = tuple(row[0] for row in _TABLE)
NUM_JOINTS = len(JOINT_NAMES)  # 28
NUM_FEATURES = NUM_JOINTS * 3  # 84
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}
PARENTS = np.array([row[1] for row in _TABLE], dtype=np.int64)
REST_OFFSETS = np.array([row[2] for row in _TABLE], dtype=np.float64)

# Every joint's parent comes before it, so one pass in index order visits parents first.
assert all(PARENTS[j] < j for j in range(1, NUM_JOINTS))
#: CHILDREN[j]: the joints whose parent is j, in index order.
CHILDREN: tuple[tuple[int, ...], ...] = tuple(tuple(c for c in range(NUM_JOINTS) if PARENTS[c] == j) for j in range(NUM_JOINTS))

#: (parent, child) for each of the 27 bones, in joint order.
BONES: tuple[tuple[int, int], ...] = tuple((int(PARENTS[j]), j) for j in range(1, NUM_JOINTS))
BONE_NAMES: tuple[str, ...] = tuple(f"{JOINT_NAMES[p]}->{JOINT_NAMES[c]}" for p, c in BONES)
#: Canonical length of each bone in BONES, metres.
CANONICAL_BONE_LENGTHS = np.linalg.norm(REST_OFFSETS[1:], axis=-1)

#: Kinematic chains for drawing and for per-limb losses (HumanML3D's five, extended).
KINEMATIC_CHAINS: dict[str, tuple[int, ...]] = {
    "right_leg": (0, 2, 5, 8, 11),
    "left_leg": (0, 1, 4, 7, 10),
    "spine": (0, 3, 6, 9, 12, 15),
    "right_arm": (9, 14, 17, 19, 21, 25),
    "left_arm": (9, 13, 16, 18, 20, 24),
    "right_heel": (8, 23),
    "left_heel": (7, 22),
    "right_thumb": (21, 27),
    "left_thumb": (20, 26),
}

#: MIRROR_INDEX[j] is the joint that j becomes when left and right swap.
MIRROR_INDEX = np.array(
    [
        JOINT_INDEX[name.replace("left_", "#").replace("right_", "left_").replace("#", "right_")]
        for name in JOINT_NAMES
    ],
    dtype=np.int64,
)

LEFT_JOINTS = tuple(i for i, n in enumerate(JOINT_NAMES) if n.startswith("left_"))
RIGHT_JOINTS = tuple(i for i, n in enumerate(JOINT_NAMES) if n.startswith("right_"))

#: HumanML3D's foot indices: left ankle, left foot, right ankle, right foot.
HUMANML3D_FOOT_JOINTS = (7, 10, 8, 11)
#: The points of each foot that touch the floor: heel and ball (MTP joint).
LEFT_FOOT_CONTACTS = (JOINT_INDEX["left_heel"], JOINT_INDEX["left_foot"])
RIGHT_FOOT_CONTACTS = (JOINT_INDEX["right_heel"], JOINT_INDEX["right_foot"])
FOOT_CONTACT_JOINTS = LEFT_FOOT_CONTACTS + RIGHT_FOOT_CONTACTS
FOOT_CONTACT_HEIGHT_M = 0.05  # a contact point below this is on the floor (GMD/OmniControl's foot-skating convention)
#: Toe joints used by the foot skating ratio (GMD / OmniControl definition).
TOE_JOINTS = (JOINT_INDEX["left_foot"], JOINT_INDEX["right_foot"])
#: Joints that define which way the body faces: right hip, left hip, right shoulder, left shoulder.
FACING_JOINTS = (2, 1, 17, 16)
#: Hands, feet and head: the end effectors a tracking reward looks at.
END_EFFECTORS = tuple(
    JOINT_INDEX[n] for n in ("left_hand", "right_hand", "left_foot", "right_foot", "head")
)

UP = np.array([0.0, 1.0, 0.0])
FORWARD = np.array([0.0, 0.0, 1.0])


def as_joints(motion: np.ndarray) -> np.ndarray:
    """View a motion as (..., 28, 3), accepting the flattened (..., 84) layout too."""
    motion = np.asarray(motion)
    if motion.shape[-2:] == (NUM_JOINTS, 3):
        return motion
    if motion.shape[-1] == NUM_FEATURES:
        return motion.reshape(*motion.shape[:-1], NUM_JOINTS, 3)
    raise ValueError(
        f"expected a myo28 motion shaped (..., {NUM_JOINTS}, 3) or (..., {NUM_FEATURES}), "
        f"got {motion.shape}"
    )


def bone_lengths(positions: np.ndarray) -> np.ndarray:
    """Length of each of the 27 bones: (..., 28, 3) -> (..., 27)."""
    positions = as_joints(positions)
    return np.linalg.norm(positions[..., 1:, :] - positions[..., PARENTS[1:], :], axis=-1)


def forward_kinematics(
    root_positions: np.ndarray,
    local_rotations: np.ndarray,
    offsets: np.ndarray = REST_OFFSETS,
) -> tuple[np.ndarray, np.ndarray]:
    """Global positions and rotations from local joint rotations.

    root_positions (..., 3); local_rotations (..., 28, 3, 3), each joint's rotation relative to
    its parent's frame (the root's is global); offsets (28, 3) or (..., 28, 3) in the rest
    frame. A joint's rotation moves its children: p_j = p_parent + R_parent @ offset_j.
    Returns positions (..., 28, 3) and global rotations (..., 28, 3, 3).
    """
    # Joint-major contiguous copies: batched 3x3 products on strided slices are several times slower.
    local = np.ascontiguousarray(np.moveaxis(np.asarray(local_rotations, dtype=np.float64), -3, 0))
    offsets = np.asarray(offsets, dtype=np.float64)
    per_frame_offsets = offsets.ndim > 2
    if per_frame_offsets:
        offsets = np.ascontiguousarray(np.moveaxis(offsets, -2, 0))
    rotations = [local[0]]
    positions = [np.broadcast_to(np.asarray(root_positions, dtype=np.float64), local.shape[1:-2] + (3,))]
    for j in range(1, NUM_JOINTS):
        parent_rotation = rotations[PARENTS[j]]
        rotations.append(parent_rotation @ local[j])
        offset = offsets[j][..., None] if per_frame_offsets else offsets[j]
        step = parent_rotation @ offset
        positions.append(positions[PARENTS[j]] + (step[..., 0] if per_frame_offsets else step))
    return np.stack(positions, axis=-2), np.stack(rotations, axis=-3)


def rest_pose(floor: bool = True) -> np.ndarray:
    """The canonical rest pose (28, 3), arms hanging down; with `floor`, the lowest joint at y=0."""
    positions, _ = forward_kinematics(np.zeros(3), np.broadcast_to(np.eye(3), (NUM_JOINTS, 3, 3)))
    if floor:
        positions[:, 1] -= positions[:, 1].min()
    return positions


def chain_from_directions(
    root_positions: np.ndarray, directions: np.ndarray, lengths: np.ndarray = CANONICAL_BONE_LENGTHS
) -> np.ndarray:
    """Rebuild positions from the root, a unit direction per bone (..., 27, 3) and bone lengths."""
    positions = np.empty((*directions.shape[:-2], NUM_JOINTS, 3))
    positions[..., 0, :] = root_positions
    for b, (p, c) in enumerate(BONES):
        positions[..., c, :] = positions[..., p, :] + directions[..., b, :] * lengths[..., b, None]
    return positions


def facing_directions(positions: np.ndarray) -> np.ndarray:
    """Unit forward direction in the ground plane per frame: (..., 28, 3) -> (..., 3).

    As HumanML3D does: the across vector from right to left (hips plus shoulders), crossed with
    up. +X is the character's left, so across x up = forward.
    """
    positions = as_joints(positions)
    r_hip, l_hip, r_sh, l_sh = FACING_JOINTS
    across = (positions[..., l_hip, :] - positions[..., r_hip, :]) + (
        positions[..., l_sh, :] - positions[..., r_sh, :]
    )
    forward = np.cross(across, UP)
    forward[..., 1] = 0.0
    norm = np.linalg.norm(forward, axis=-1, keepdims=True)
    return forward / np.maximum(norm, 1e-9)


def heading_angles(positions: np.ndarray) -> np.ndarray:
    """Heading per frame, radians from +Z towards +X: (..., 28, 3) -> (...,).
    rotation_about_y(heading) turns +Z onto the facing direction."""
    forward = facing_directions(positions)
    return np.arctan2(forward[..., 0], forward[..., 2])


def rotation_about_y(angle: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) about the up axis by `angle` radians (counter-clockwise seen from above)."""
    c, s = np.cos(angle), np.sin(angle)
    zero, one = np.zeros_like(c), np.ones_like(c)
    return np.stack(
        [np.stack([c, zero, s], -1), np.stack([zero, one, zero], -1), np.stack([-s, zero, c], -1)],
        -2,
    )


def mirror(positions: np.ndarray) -> np.ndarray:
    """Left-right mirror image: negate x and swap every left_/right_ joint pair."""
    positions = as_joints(positions)
    mirrored = positions[..., MIRROR_INDEX, :].copy()
    mirrored[..., 0] *= -1.0
    return mirrored
