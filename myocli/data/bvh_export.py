"""Write myo28 motion as BVH for Blender, Maya or MotionBuilder, with the myo28 hierarchy.

Rotations come from inverse kinematics (myocli.motion.ik) on the canonical rest offsets.
A joint can turn only as a whole, so where one joint has several children (pelvis: hips and
spine; spine3: neck and collars; ankles: toes and heel; wrists: knuckles and thumb) the
observed angle between sibling bones need not match the rest pose: those children also carry
position channels with their exact offset (a few millimetres to centimetres from the rest
offset), so the file reproduces the positions exactly. OFFSETs take the clip's own mean bone
lengths along the rest directions; where a bone's length changes over time (generated motion)
the file keeps the mean. Euler angles are made continuous over time. Units: centimetres; channels
Zrotation Xrotation Yrotation (R = Rz Rx Ry); Y up, the character facing +Z.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from myocli import skeleton as sk
from myocli.atomic import atomic_path
from myocli.motion import ik
from myocli.rotations import continuous_zxy, matrix_to_euler_zxy

CM = 100.0
ROTATION_CHANNELS = "Zrotation Xrotation Yrotation"
POSITION_CHANNELS = "Xposition Yposition Zposition"
# Children of joints with several children: they get position channels (see the docstring).
TRANSLATED = tuple(c for j in range(sk.NUM_JOINTS) if len(sk.CHILDREN[j]) > 1 for c in sk.CHILDREN[j])
END_SITE_FRACTION = 0.5  # a leaf's end site continues its bone by half its length, so tools draw it


def _hierarchy(joint: int, depth: int, lines: list[str], offsets: np.ndarray) -> None:
    pad = "  " * depth
    name = sk.JOINT_NAMES[joint]
    offset = offsets[joint] * CM if joint else np.zeros(3)
    lines.append(f"{pad}{'ROOT' if joint == 0 else 'JOINT'} {name}")
    lines.append(f"{pad}{{")
    lines.append(f"{pad}  OFFSET {offset[0]:.6f} {offset[1]:.6f} {offset[2]:.6f}")
    if joint == 0 or joint in TRANSLATED:
        lines.append(f"{pad}  CHANNELS 6 {POSITION_CHANNELS} {ROTATION_CHANNELS}")
    else:
        lines.append(f"{pad}  CHANNELS 3 {ROTATION_CHANNELS}")
    children = sk.CHILDREN[joint]
    for child in children:
        _hierarchy(child, depth + 1, lines, offsets)
    if not children:
        end = offsets[joint] * CM * END_SITE_FRACTION
        lines += [f"{pad}  End Site", f"{pad}  {{", f"{pad}    OFFSET {end[0]:.6f} {end[1]:.6f} {end[2]:.6f}", f"{pad}  }}"]
    lines.append(f"{pad}}}")


def _depth_first(joint: int = 0) -> list[int]:
    order = [joint]
    for child in sk.CHILDREN[joint]:
        order += _depth_first(child)
    return order


def write_bvh(path: str | Path, positions: np.ndarray, fps: float) -> Path:
    """Positions (T, 28, 3) in metres -> a BVH file (atomically); returns the path."""
    p = sk.as_joints(np.asarray(positions, dtype=np.float64))
    root, local = ik.solve(p)
    world = np.empty_like(local)
    world[:, 0] = local[:, 0]
    for j in range(1, sk.NUM_JOINTS):
        world[:, j] = world[:, sk.PARENTS[j]] @ local[:, j]
    angles = continuous_zxy(matrix_to_euler_zxy(local))  # (T, 28, 3), no 360-degree jumps between frames
    # Rest directions with this clip's own (mean) bone lengths, so other proportions survive.
    lengths = sk.bone_lengths(p).mean(axis=0)
    offsets = np.zeros((sk.NUM_JOINTS, 3))
    offsets[1:] = sk.REST_OFFSETS[1:] / sk.CANONICAL_BONE_LENGTHS[:, None] * lengths[:, None]
    columns = []
    for joint in _depth_first():
        if joint == 0:
            columns.append(root * CM)
        elif joint in TRANSLATED:
            parent = sk.PARENTS[joint]
            offset = np.einsum("tji,tj->ti", world[:, parent], p[:, joint] - p[:, parent])  # in the parent's frame
            columns.append(offset * CM)
        columns.append(angles[:, joint])
    table = np.concatenate(columns, axis=1)
    lines = ["HIERARCHY"]
    _hierarchy(0, 0, lines, offsets)
    lines += ["MOTION", f"Frames: {len(p)}", f"Frame Time: {1.0 / fps:.8f}"]
    lines += [" ".join(f"{v:.5f}" for v in row) for row in table]
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return path
