"""DeepMimic `humanoid3d` clips (pybullet_data's and DeepMimic's own) into myo28.

A clip is JSON `{"Loop": ..., "Frames": [[44 numbers], ...]}`; each frame holds its duration
dt, the root position (metres, Y up), the root quaternion (w, x, y, z, world), then local
quaternions of chest and neck, right hip, right knee angle, right ankle quaternion, right
shoulder quaternion, right elbow angle, and the same for the left side. Knees and elbows turn
about their local z axis.

The humanoid faces +X at rest with its right side at +Z; its joint offsets are those of
DeepMimic's humanoid3d character (pybullet's humanoid.urdf at 0.25 scale).

Joint mapping: pelvis = root; hips, knees, ankles, shoulders, elbows, wrists and the neck are
the humanoid's joints; the spine polyline is root -> chest -> neck. The humanoid has no toes,
heels, hands, thumbs or head joint: those are points on its bodies, placed at the myo28 rest
offsets in the frame of the body that carries them (ball of the foot and heel on the ankle,
knuckle and thumb on the wrist, head on the neck). Collars and spine1..3 are synthesised
(see retarget.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from myocli import skeleton as sk
from myocli.data.converters.checks import describe, first_bad
from myocli.data.retarget import JointMap, SourceClip, map_to_myo28
from myocli.errors import MyoError
from myocli.rotations import axis_rotation, quaternion_to_matrix

EXTENSIONS = (".txt", ".json")
FRAME_SIZE = 44
#: Frame durations read as motion (10 kHz to 1 fps; DeepMimic's clips use 1/120 to 1/16 s). A damaged
#: duration outside them would make the resampled clip, or a looped cycle, millions of frames long.
DURATION_RANGE = (1e-4, 1.0)

# From myo28 axes (x left, y up, z forward) to the humanoid's rest axes (x forward, y up, z right).
_MYO_TO_HUMANOID = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])

# name: (parent, offset from the parent in the humanoid's rest frame, metres, kind, first column)
_JOINTS = {
    "root": (None, (0.0, 0.0, 0.0), "root", 4),
    "chest": ("root", (0.0, 0.236151, 0.0), "sphere", 8),
    "neck": ("chest", (0.0, 0.223894, 0.0), "sphere", 12),
    "right_hip": ("root", (0.0, 0.0, 0.084887), "sphere", 16),
    "right_knee": ("right_hip", (0.0, -0.421546, 0.0), "hinge", 20),
    "right_ankle": ("right_knee", (0.0, -0.40987, 0.0), "sphere", 21),
    "right_shoulder": ("chest", (-0.02405, 0.24350, 0.18311), "sphere", 25),
    "right_elbow": ("right_shoulder", (0.0, -0.274788, 0.0), "hinge", 29),
    "right_wrist": ("right_elbow", (0.0, -0.258947, 0.0), "fixed", None),
    "left_hip": ("root", (0.0, 0.0, -0.084887), "sphere", 30),
    "left_knee": ("left_hip", (0.0, -0.421546, 0.0), "hinge", 34),
    "left_ankle": ("left_knee", (0.0, -0.40987, 0.0), "sphere", 35),
    "left_shoulder": ("chest", (-0.02405, 0.24350, -0.18311), "sphere", 39),
    "left_elbow": ("left_shoulder", (0.0, -0.274788, 0.0), "hinge", 43),
    "left_wrist": ("left_elbow", (0.0, -0.258947, 0.0), "fixed", None),
}

# Points on the humanoid's bodies: name: (body joint, myo28 joint whose rest offset places it).
_BODY_POINTS = {
    f"{side}_{point}": (f"{side}_{body}", f"{side}_{point}")
    for side in ("left", "right")
    for point, body in (("foot", "ankle"), ("heel", "ankle"), ("hand", "wrist"), ("thumb", "wrist"))
} | {"head": ("neck", "head")}

JOINT_MAP = JointMap(
    joints={"pelvis": "root", "neck": "neck", "head": "head"}
    | {f"{side}_{j}": f"{side}_{j}" for side in ("left", "right")
       for j in ("hip", "knee", "ankle", "foot", "heel", "shoulder", "elbow", "wrist", "hand", "thumb")},
    spine=("root", "chest", "neck"),
)  # fmt: skip


def looks_like_clip(path: Path) -> bool:
    """Cheap test used when scanning folders: JSON whose first key block mentions Frames."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            start = handle.read(512)
    except OSError:
        return False
    return start.lstrip().startswith("{") and '"Frames"' in start


def read_frames(path: Path) -> tuple[np.ndarray, bool]:
    """The frames and whether the clip is a cycle (DeepMimic's `"Loop": "wrap"`)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        frames = np.array(data["Frames"], dtype=np.float64)
    # ValueError covers UnicodeDecodeError and JSONDecodeError; OverflowError is an integer beyond
    # float64 (JSON allows them); RecursionError is brackets nested thousands deep.
    except (KeyError, TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise MyoError(f"{path}: not a DeepMimic clip (JSON with a 'Frames' list of equal-length rows): {exc}") from exc
    if frames.ndim != 2 or frames.shape[1] != FRAME_SIZE:
        width = frames.shape[1] if frames.ndim == 2 else "uneven"
        raise MyoError(
            f"{path}: frames hold {width} values, a humanoid3d clip has {FRAME_SIZE}; "
            "only DeepMimic humanoid3d clips are supported (not laikago or other characters)"
        )
    bad = first_bad(frames)
    if bad is not None:  # named here, at its source frame: after mapping it may spread to every frame
        raise MyoError(f"{path}: frame {bad[0]} has {describe(frames[bad])} in column {bad[1]}; the clip is damaged")
    return frames, data.get("Loop") == "wrap"


def forward_kinematics(frames: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """World positions and rotations of the humanoid's joints, {name: (T, 3)} and {name: (T, 3, 3)}."""
    positions, rotations = {}, {}
    for name, (parent, offset, kind, column) in _JOINTS.items():
        if kind == "root":
            positions[name] = frames[:, 1:4]
            rotations[name] = quaternion_to_matrix(frames[:, column : column + 4])
            continue
        if kind == "sphere":
            local = quaternion_to_matrix(frames[:, column : column + 4])
        elif kind == "hinge":
            local = axis_rotation("z", frames[:, column])
        else:
            local = np.eye(3)
        positions[name] = positions[parent] + rotations[parent] @ np.array(offset)
        rotations[name] = rotations[parent] @ local
    return positions, rotations


def repeat_cycle(positions: np.ndarray, times: np.ndarray, root_rotations: np.ndarray, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """A cyclic clip played on until it lasts at least `seconds`, as DeepMimic plays a wrapping clip.

    The last frame is the next cycle's first pose, moved and turned: each repeat is the cycle
    carried by the floor-plane motion (a turn about Y and a shift) that takes the first frame's
    root and heading to the last frame's, so a walk walks on and a curved path keeps curving."""
    period = times[-1] - times[0]
    repeats = int(np.ceil(seconds / period)) if period > 0 else 1
    if repeats <= 1:
        return positions, times
    facing = root_rotations[[0, -1]] @ np.array([1.0, 0.0, 0.0])  # the humanoid faces +X
    turn = np.arctan2(facing[1, 0], facing[1, 2]) - np.arctan2(facing[0, 0], facing[0, 2])
    rotation = axis_rotation("y", np.array([turn]))[0]
    start, end = positions[0, 0] * [1, 0, 1], positions[-1, 0] * [1, 0, 1]  # the root on the floor
    cycle, pieces, stamps = positions[:-1], [], []
    for k in range(repeats):
        pieces.append(cycle)
        stamps.append(times[:-1] + k * period)
        cycle = (cycle - start) @ rotation.T + end
    last = cycle[:1]  # the pose that closes the final repeat
    return np.concatenate([*pieces, last]), np.concatenate([*stamps, [times[0] + repeats * period]])


def read(path: Path, loop_seconds: float = 0.0) -> list[SourceClip]:
    """The clip; one the source marks as a cycle is repeated up to `loop_seconds` (0: as it is)."""
    frames, cyclic = read_frames(path)
    if len(frames) < 2:
        raise MyoError(f"{path}: {len(frames)} frame(s); a motion needs at least two")
    positions, rotations = forward_kinematics(frames)
    for point, (body, myo_joint) in _BODY_POINTS.items():
        offset = _MYO_TO_HUMANOID @ sk.REST_OFFSETS[sk.JOINT_INDEX[myo_joint]]
        positions[point] = positions[body] + rotations[body] @ offset
    # Frame i starts at the sum of the durations before it (the last duration is often 0).
    durations = frames[:-1, 0]
    outside = np.flatnonzero((durations < DURATION_RANGE[0]) | (durations > DURATION_RANGE[1]))
    if outside.size:
        frame = int(outside[0])
        raise MyoError(
            f"{path}: frame {frame} lasts {durations[frame]:g} s (a frame before the last lasts "
            f"{DURATION_RANGE[0]:g} to {DURATION_RANGE[1]:g} s); the clip's timing is damaged"
        )
    times = np.concatenate([[0.0], np.cumsum(durations)])
    mapped = map_to_myo28(positions, JOINT_MAP)
    if cyclic and loop_seconds > 0:
        mapped, times = repeat_cycle(mapped, times, rotations["root"], loop_seconds)
    return [
        SourceClip(
            name=path.stem, positions=mapped, times=times,
            group=path.stem, source="deepmimic",
        )
    ]  # fmt: skip
