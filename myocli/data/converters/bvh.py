"""BVH (Biovision hierarchy) into myo28.

Rigs recognised by their joint names (any other rig is refused with the list of its joints):
myo28 itself (files from `myo export --bvh`, every joint mapped to itself), and

| myo28 joint     | CMU, MotionBuilder names | CMU, 3dsMax names | Bandai Namco (22 joints) |
|-----------------|--------------------------|-------------------|--------------------------|
| pelvis          | Hips                     | Hips              | Hips                     |
| left_hip        | LeftUpLeg                | LeftHip           | UpperLeg_L               |
| left_knee       | LeftLeg                  | LeftKnee          | LowerLeg_L               |
| left_ankle      | LeftFoot                 | LeftAnkle         | Foot_L                   |
| left_foot (MTP) | LeftToeBase              | LeftToe           | Toes_L                   |
| spine polyline  | Hips Spine Spine1 Neck1  | Hips Chest Chest2 Neck | Hips Spine Chest Neck |
| neck            | Neck1                    | Neck              | Neck                     |
| head            | Head                     | Head              | Head (base of skull)     |
| left_shoulder   | LeftArm                  | LeftShoulder      | UpperArm_L               |
| left_elbow      | LeftForeArm              | LeftElbow         | LowerArm_L               |
| left_wrist      | LeftHand                 | LeftWrist         | Hand_L                   |
| left_hand       | LeftHandIndex1 / LFingers| LFingers          | synthesised              |
| left_thumb      | synthesised              | LThumb's end site | synthesised              |

Right side likewise. Synthesised everywhere: heels, spine1..3 and collars (see retarget.py).

Conventions handled: rotation channels compose in channel order (R = R_c1 R_c2 R_c3);
a joint's position channels replace its OFFSET (Bandai's bones carry constant position
channels, its Hips OFFSET is a stray value); global R_j = R_parent R_local and
p_j = p_parent + R_parent t_j. Units have no field in BVH, so they are inferred from the leg
length (metres, centimetres, millimetres, inches, or CMU's 0.45-inch units); `--scale` overrides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from myocli import skeleton as sk
from myocli.data.converters.checks import describe, first_bad
from myocli.data.retarget import JointMap, SourceClip, leg_length, map_to_myo28
from myocli.errors import MyoError
from myocli.rotations import euler_to_matrix

EXTENSIONS = (".bvh",)


@dataclass
class _Joint:
    name: str
    parent: int
    offset: np.ndarray
    channels: list[str]


def _rig(side_names: dict[str, str], spine: tuple[str, ...], **extra: str) -> JointMap:
    joints = {"pelvis": "Hips", **extra}
    for myo, src in side_names.items():
        joints[f"left_{myo}"] = src.format(L="Left", l="L", s="L", S="_L")
        joints[f"right_{myo}"] = src.format(L="Right", l="R", s="R", S="_R")
    return JointMap(joints=joints, spine=spine)


_LIMBS_MB = {"hip": "{L}UpLeg", "knee": "{L}Leg", "ankle": "{L}Foot", "foot": "{L}ToeBase",
             "shoulder": "{L}Arm", "elbow": "{L}ForeArm", "wrist": "{L}Hand"}  # fmt: skip
_LIMBS_MAX = {"hip": "{L}Hip", "knee": "{L}Knee", "ankle": "{L}Ankle", "foot": "{L}Toe",
              "shoulder": "{L}Shoulder", "elbow": "{L}Elbow", "wrist": "{L}Wrist",
              "hand": "{l}Fingers", "thumb": "{l}Thumb_end"}  # fmt: skip
_LIMBS_BANDAI = {"hip": "UpperLeg{S}", "knee": "LowerLeg{S}", "ankle": "Foot{S}", "foot": "Toes{S}",
                 "shoulder": "UpperArm{S}", "elbow": "LowerArm{S}", "wrist": "Hand{S}"}  # fmt: skip

#: (rig name, the joint that identifies it, its map). CMU MotionBuilder names come in two
#: variants for the index finger (LeftHandIndex1 in most files, LFingers in 01_01).
RIGS: tuple[tuple[str, str, JointMap], ...] = (
    ("myo28", "left_thumb", JointMap(joints={name: name for name in sk.JOINT_NAMES})),  # `myo export --bvh`
    ("cmu", "LeftHandIndex1", _rig({**_LIMBS_MB, "hand": "{L}HandIndex1"}, ("Hips", "Spine", "Spine1", "Neck1"), neck="Neck1", head="Head")),
    ("cmu", "LeftUpLeg", _rig({**_LIMBS_MB, "hand": "{l}Fingers"}, ("Hips", "Spine", "Spine1", "Neck1"), neck="Neck1", head="Head")),
    ("cmu", "LeftCollar", _rig(_LIMBS_MAX, ("Hips", "Chest", "Chest2", "Neck"), neck="Neck", head="Head")),
    ("bandai", "UpperLeg_L", _rig(_LIMBS_BANDAI, ("Hips", "Spine", "Chest", "Neck"), neck="Neck", head="Head")),
)  # fmt: skip

#: Candidate length units in metres, told apart by the leg length they imply (about 0.8 m).
UNITS = {"m": 1.0, "cm": 0.01, "mm": 0.001, "inch": 0.0254, "cmu": 0.0254 / 0.45}
TYPICAL_LEG_LENGTH = 0.8

_AXES = {"xrotation": "x", "yrotation": "y", "zrotation": "z"}
_POSITIONS = ("xposition", "yposition", "zposition")
#: Longest frame time read as mocap (1 fps); a damaged header with more would make the resampled
#: clip millions of frames long.
MAX_FRAME_TIME = 1.0


def _parse_hierarchy(path: Path, tokens: list[str]) -> list[_Joint]:
    joints: list[_Joint] = []
    stack: list[int] = []
    i = 0
    try:
        if tokens[0].upper() != "HIERARCHY":
            raise MyoError(f"{path}: not a BVH file (it does not start with HIERARCHY)")
        i = 1
        while i < len(tokens):
            word = tokens[i].upper()
            if word in ("ROOT", "JOINT"):
                parent = stack[-1] if stack else -1
                joints.append(_Joint(tokens[i + 1], parent, np.zeros(3), []))
                i += 2
            elif word == "END":  # "End Site": a leaf point named <parent>_end
                parent = stack[-1]
                joints.append(_Joint(f"{joints[parent].name}_end", parent, np.zeros(3), []))
                i += 2
            elif word == "{":
                stack.append(len(joints) - 1)
                i += 1
            elif word == "}":
                stack.pop()
                i += 1
            elif word == "OFFSET":
                joint = joints[stack[-1]]
                joint.offset = np.array(tokens[i + 1 : i + 4], dtype=np.float64)
                if joint.offset.shape != (3,) or first_bad(joint.offset) is not None:
                    raise MyoError(f"{path}: joint {joint.name}'s OFFSET is {' '.join(tokens[i + 1 : i + 4])!r}, not three usable numbers")
                i += 4
            elif word == "CHANNELS":
                joint, count = joints[stack[-1]], int(tokens[i + 1])
                joint.channels = [c.lower() for c in tokens[i + 2 : i + 2 + count]]
                # A wrong count swallows the next keywords as channel names (or leaves channels
                # to be read as keywords): refuse names that are not channels, and repeats.
                unknown = [c for c in joint.channels if c not in _AXES and c not in _POSITIONS]
                if count < 0 or unknown or len(set(joint.channels)) != len(joint.channels):
                    raise MyoError(
                        f"{path}: joint {joint.name} declares CHANNELS {' '.join(tokens[i + 1 : i + 2 + max(count, 0)])}; "
                        "a BVH channel is one of X/Y/Z position or rotation, each at most once"
                    )
                i += 2 + count
            else:
                raise MyoError(f"{path}: unexpected word {tokens[i]!r} in the BVH hierarchy")
    except (IndexError, ValueError) as exc:
        raise MyoError(f"{path}: the BVH hierarchy is truncated or malformed near word {i} ({exc})") from exc
    if stack or not joints:
        raise MyoError(f"{path}: the BVH hierarchy is truncated (unbalanced braces)")
    return joints


def read_bvh(path: Path) -> tuple[list[_Joint], np.ndarray, float]:
    """Parse a BVH file: joints (with end sites), channel values (frames, channels), frame time."""
    text = path.read_text(encoding="latin-1")
    head, sep, motion = text.partition("MOTION")
    if not sep:
        raise MyoError(f"{path}: no MOTION section; the BVH file is truncated or not a BVH file")
    joints = _parse_hierarchy(path, head.split())
    lines = motion.strip().splitlines()
    try:
        frames = int(lines[0].split(":")[1])
        frame_time = float(lines[1].split(":")[1])
    except (IndexError, ValueError) as exc:
        raise MyoError(f"{path}: the MOTION header needs 'Frames: N' and 'Frame Time: dt' lines") from exc
    width = sum(len(j.channels) for j in joints)
    try:
        values = np.array(" ".join(lines[2:]).split(), dtype=np.float64)
    except ValueError as exc:
        raise MyoError(f"{path}: a frame line holds something that is not a number ({exc})") from exc
    if values.size != frames * width:
        raise MyoError(
            f"{path}: the header promises {frames} frames of {width} values but the file holds "
            f"{values.size} values ({values.size / max(width, 1):.1f} frames); the file is truncated or damaged"
        )
    if frames < 1:
        raise MyoError(f"{path}: {frames} frames with frame time {frame_time}; nothing to convert")
    if not 0 < frame_time <= MAX_FRAME_TIME:  # also refuses NaN
        raise MyoError(f"{path}: 'Frame Time: {frame_time}' is not a mocap frame time (0 to {MAX_FRAME_TIME:g} s)")
    values = values.reshape(frames, width)
    bad = first_bad(values)
    if bad is not None:  # named here, at its source frame: after mapping it may spread to every frame
        frame, column = bad
        joint, channel = [(j.name, c) for j in joints for c in j.channels][column]
        raise MyoError(f"{path}: frame {frame} has {describe(values[bad])} in {joint}'s {channel} channel; the file is damaged")
    return joints, values, frame_time


def forward_kinematics(joints: list[_Joint], values: np.ndarray) -> np.ndarray:
    """Global positions (T, J, 3) of every joint and end site, in file units."""
    frames = len(values)
    positions = np.zeros((frames, len(joints), 3))
    rotations = np.zeros((frames, len(joints), 3, 3))
    column = 0
    for j, joint in enumerate(joints):
        block = values[:, column : column + len(joint.channels)]
        column += len(joint.channels)
        rotation_columns = [k for k, c in enumerate(joint.channels) if c in _AXES]
        order = "".join(_AXES[joint.channels[k]] for k in rotation_columns)
        local = euler_to_matrix(block[:, rotation_columns], order)
        translation = np.broadcast_to(joint.offset, (frames, 3)).copy()
        for axis, name in enumerate(_POSITIONS):
            if name in joint.channels:  # position channels replace the OFFSET
                translation[:, axis] = block[:, joint.channels.index(name)]
        if joint.parent < 0:
            positions[:, j], rotations[:, j] = translation, local
        else:
            parent_rotation = rotations[:, joint.parent]
            positions[:, j] = positions[:, joint.parent] + np.einsum("tij,tj->ti", parent_rotation, translation)
            rotations[:, j] = parent_rotation @ local
    return positions


def _choose_rig(path: Path, names: set[str]) -> tuple[str, JointMap]:
    for rig, marker, joint_map in RIGS:
        if marker in names and all(src in names for src in (*joint_map.joints.values(), *joint_map.spine)):
            return rig, joint_map
    raise MyoError(
        f"{path}: unknown BVH rig (joints: {', '.join(sorted(n for n in names if not n.endswith('_end')))}); "
        "supported rigs are myo28 (from `myo export --bvh`), CMU's 31-joint releases and Bandai Namco's 22-joint rig"
    )


def guess_unit(leg_length_in_file_units: float) -> float:
    """Metres per file unit: the candidate unit that makes the leg closest to 0.8 m."""
    ratios = {unit: abs(np.log(leg_length_in_file_units * scale / TYPICAL_LEG_LENGTH)) for unit, scale in UNITS.items()}
    return UNITS[min(ratios, key=ratios.get)]


def read(path: Path, scale: float | None = None) -> list[SourceClip]:
    joints, values, frame_time = read_bvh(path)
    points_all = forward_kinematics(joints, values)
    names = [j.name for j in joints]
    rig, joint_map = _choose_rig(path, set(names))
    # A hand or thumb point that sits on the wrist (a zero offset in this release) carries no
    # direction: leave it to the synthesis instead.
    mapping = dict(joint_map.joints)
    for side in ("left", "right"):
        wrist = points_all[0, names.index(mapping[f"{side}_wrist"])]
        for role in (f"{side}_hand", f"{side}_thumb"):
            if role in mapping and np.linalg.norm(points_all[0, names.index(mapping[role])] - wrist) < 1e-6:
                del mapping[role]
    joint_map = JointMap(joints=mapping, spine=joint_map.spine)
    if scale is None:  # hips, knees and ankles are mapped directly, so frame 0 in file units gives the leg
        first_frame = {name: points_all[:1, k] for k, name in enumerate(names)}
        leg = leg_length(map_to_myo28(first_frame, joint_map))
        if not leg > 1e-9:  # no length to compare with a leg's: the log in guess_unit would be -inf
            raise MyoError(f"{path}: the legs have no length at frame 0, so their unit cannot be told; pass --scale")
        scale = guess_unit(leg)
    points = {name: points_all[:, k] * scale for k, name in enumerate(names)}
    times = np.arange(len(values)) * frame_time
    return [
        SourceClip(
            name=path.stem, positions=map_to_myo28(points, joint_map), times=times,
            group=path.stem, source=f"bvh:{rig}",
        )
    ]  # fmt: skip
