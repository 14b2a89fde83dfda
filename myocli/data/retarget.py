"""From a source skeleton's joint positions to a normalised myo28 motion.

Two steps, shared by every converter:

1. `map_to_myo28` picks, for each myo28 joint, the source point that feeds it (a `JointMap`,
   declared by each converter) and synthesises the joints the source lacks, calibrated on the
   canonical rest pose so the result agrees with the myo28 table:
   - spine1..3 lie on the source's spine polyline (pelvis -> ... -> neck) at the arc-length
     fractions they have in the rest pose;
   - a collar lies on the neck -> shoulder line where the rest pose puts it;
   - heels, hands and thumbs the source lacks are rigidly attached to a frame built from two
     source vectors (heel: ankle->ball and ankle->knee; hand and thumb: elbow->wrist and the
     hip axis), with their rest-pose coordinates in that frame.
2. `normalise` resamples to the target frame rate, rebuilds every bone at its canonical length
   along the source's bone direction (HumanML3D's uniform skeleton; the root trajectory is
   scaled by the leg-length ratio so strides match the new legs), puts the lowest foot point of
   the clip on the floor, turns the body to face +Z at frame 0 and moves the root to the origin
   (the resampling and the placing are motion/timing.py's and motion/floor.py's, shared with the
   generators and the simulated humanoid).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from myocli import skeleton as sk
from myocli.errors import MyoError
from myocli.motion.floor import place_on_floor_facing_forward
from myocli.motion.timing import resample

J = sk.JOINT_INDEX

#: Joints a converter must always provide (everything else can be synthesised).
REQUIRED_JOINTS = (
    "pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_foot", "right_foot", "neck", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)  # fmt: skip


@dataclass(frozen=True)
class JointMap:
    """Which source point feeds each myo28 joint.

    `joints` maps a myo28 joint name to a source point name and must cover REQUIRED_JOINTS;
    `spine` is the source polyline from the pelvis to the neck along which spine1..3 are placed
    unless `joints` names them. Any other joint left out is synthesised (see module docstring).
    """

    joints: dict[str, str]
    spine: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        missing = [name for name in REQUIRED_JOINTS if name not in self.joints]
        unknown = [name for name in self.joints if name not in J]
        if missing or unknown:
            raise ValueError(f"JointMap: missing {missing}, unknown {unknown}")


@dataclass
class SourceClip:
    """One clip as a converter read it: myo28-ordered positions in the source's proportions."""

    name: str
    positions: np.ndarray  # (T, 28, 3) metres, Y up
    times: np.ndarray  # (T,) seconds, increasing
    captions: list[str] = field(default_factory=list)
    group: str = ""  # clips cut from one recording share a group (kept in one split)
    source: str = ""  # format or dataset it came from
    license: str = ""


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-9)


def _frames(primary: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Orthonormal frames (..., 3, 3) whose columns are primary, reference made orthogonal, cross."""
    e1 = _unit(primary)
    e2 = _unit(reference - np.sum(reference * e1, axis=-1, keepdims=True) * e1)
    return np.stack([e1, e2, np.cross(e1, e2)], axis=-1)


# A rigid attachment: joint = anchor + frame(axis, reference) @ local, `local` from the rest pose.
# Each vector is (from_joint, to_joint) in myo28 names.
_ATTACHMENTS: dict[str, tuple[str, tuple[str, str], tuple[str, str]]] = {
    "left_heel": ("left_ankle", ("left_ankle", "left_foot"), ("left_ankle", "left_knee")),
    "right_heel": ("right_ankle", ("right_ankle", "right_foot"), ("right_ankle", "right_knee")),
    "left_hand": ("left_wrist", ("left_elbow", "left_wrist"), ("right_hip", "left_hip")),
    "right_hand": ("right_wrist", ("right_elbow", "right_wrist"), ("right_hip", "left_hip")),
    "left_thumb": ("left_wrist", ("left_elbow", "left_wrist"), ("right_hip", "left_hip")),
    "right_thumb": ("right_wrist", ("right_elbow", "right_wrist"), ("right_hip", "left_hip")),
}
_SPINE = ("spine1", "spine2", "spine3")
_COLLARS = {"left_collar": "left_shoulder", "right_collar": "right_shoulder"}


def _vector(positions: np.ndarray, pair: tuple[str, str]) -> np.ndarray:
    return positions[..., J[pair[1]], :] - positions[..., J[pair[0]], :]


def _rest_calibration() -> tuple[np.ndarray, dict[str, float], dict[str, np.ndarray]]:
    """Where the rest pose puts the synthesised joints, in the terms used to place them."""
    rest = sk.rest_pose(floor=False)
    neck_height = rest[J["neck"], 1] - rest[J["pelvis"], 1]
    spine_fractions = np.array([(rest[J[n], 1] - rest[J["pelvis"], 1]) / neck_height for n in _SPINE])
    collar_fractions = {}
    for collar, shoulder in _COLLARS.items():
        line = rest[J[shoulder]] - rest[J["neck"]]
        collar_fractions[collar] = float(np.dot(rest[J[collar]] - rest[J["neck"]], line) / np.dot(line, line))
    local = {}
    for joint, (anchor, axis, ref) in _ATTACHMENTS.items():
        frame = _frames(_vector(rest, axis), _vector(rest, ref))
        local[joint] = frame.T @ (rest[J[joint]] - rest[J[anchor]])
    return spine_fractions, collar_fractions, local


_SPINE_FRACTIONS, _COLLAR_FRACTIONS, _ATTACHMENT_LOCAL = _rest_calibration()


def _points_along(polyline: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Points at arc-length fractions of a polyline (T, K, 3) -> (T, len(fractions), 3).

    Segment lengths are averaged over frames (mocap bones are rigid), so every frame uses the
    same segment and blend for a fraction: no per-frame loop.
    """
    lengths = np.linalg.norm(np.diff(polyline, axis=1), axis=-1)
    # Average over the finite frames only: a NaN in one source frame would otherwise make every
    # frame's spine NaN, and normalise would report it at frame 0 instead of where it is.
    finite = np.isfinite(lengths).all(axis=1)
    seg = (lengths[finite] if finite.any() else lengths).mean(axis=0)
    cumulative = np.concatenate([[0.0], np.cumsum(seg)])
    targets = fractions * cumulative[-1]
    index = np.clip(np.searchsorted(cumulative, targets, side="right") - 1, 0, len(seg) - 1)
    blend = (targets - cumulative[index]) / np.maximum(seg[index], 1e-9)
    start, end = polyline[:, index], polyline[:, index + 1]
    return start + blend[None, :, None] * (end - start)


def map_to_myo28(points: dict[str, np.ndarray], joint_map: JointMap) -> np.ndarray:
    """myo28 positions (T, 28, 3) from named source points {name: (T, 3)}, synthesising the rest."""
    first = next(iter(points.values()))
    positions = np.full((first.shape[0], sk.NUM_JOINTS, 3), np.nan)
    for joint, point in joint_map.joints.items():
        positions[:, J[joint]] = points[point]
    if not all(name in joint_map.joints for name in _SPINE):
        polyline = np.stack([points[p] for p in joint_map.spine], axis=1)
        along = _points_along(polyline, _SPINE_FRACTIONS)
        for k, name in enumerate(_SPINE):
            if name not in joint_map.joints:
                positions[:, J[name]] = along[:, k]
    for collar, shoulder in _COLLARS.items():
        if collar not in joint_map.joints:
            neck = positions[:, J["neck"]]
            positions[:, J[collar]] = neck + _COLLAR_FRACTIONS[collar] * (positions[:, J[shoulder]] - neck)
    for joint, (anchor, axis, ref) in _ATTACHMENTS.items():
        if joint not in joint_map.joints:
            frame = _frames(_vector(positions, axis), _vector(positions, ref))
            positions[:, J[joint]] = positions[:, J[anchor]] + frame @ _ATTACHMENT_LOCAL[joint]
    return positions


def leg_length(positions: np.ndarray) -> float:
    """Mean hip->knee->ankle length over both legs and all frames."""
    legs = [("left_hip", "left_knee", "left_ankle"), ("right_hip", "right_knee", "right_ankle")]
    total = 0.0
    for hip, knee, ankle in legs:
        total += np.linalg.norm(positions[:, J[knee]] - positions[:, J[hip]], axis=-1).mean()
        total += np.linalg.norm(positions[:, J[ankle]] - positions[:, J[knee]], axis=-1).mean()
    return total / 2.0


CANONICAL_LEG_LENGTH = float(np.linalg.norm(sk.REST_OFFSETS[J["left_knee"]]) + np.linalg.norm(sk.REST_OFFSETS[J["left_ankle"]]))


def canonical_proportions(positions: np.ndarray) -> np.ndarray:
    """Keep each bone's direction, take its length from the myo28 table; scale the root path."""
    scale = CANONICAL_LEG_LENGTH / max(leg_length(positions), 1e-9)
    bones = positions[:, 1:] - positions[:, sk.PARENTS[1:]]
    norms = np.linalg.norm(bones, axis=-1, keepdims=True)
    rest_directions = sk.REST_OFFSETS[1:] / sk.CANONICAL_BONE_LENGTHS[:, None]
    # A source bone of zero length has no direction: fall back to the rest direction.
    directions = np.where(norms > 1e-6, bones / np.maximum(norms, 1e-12), rest_directions)
    return sk.chain_from_directions(positions[:, 0] * scale, directions)


def normalise(
    clip: SourceClip, fps: float = 20.0, keep_proportions: bool = False
) -> np.ndarray:
    """The full retarget of one clip: resample, canonical proportions, floor, facing, origin."""
    positions = clip.positions
    if not np.all(np.isfinite(positions)):
        frame = int(np.argwhere(~np.isfinite(positions))[0][0])
        raise MyoError(f"{clip.name}: the source motion has NaN or Inf at frame {frame}; fix or drop that clip")
    if len(clip.times) != len(positions) or np.any(np.diff(clip.times) <= 0):
        raise MyoError(f"{clip.name}: frame times are not increasing; the file's frame timing is damaged")
    if len(positions) < 2:
        raise MyoError(f"{clip.name}: has {len(positions)} frame(s); a motion needs at least two")
    positions = resample(positions, clip.times, fps)
    if len(positions) < 2:
        raise MyoError(f"{clip.name}: shorter than two frames at {fps:g} fps; nothing to convert")
    if not keep_proportions:
        positions = canonical_proportions(positions)
    return place_on_floor_facing_forward(positions).astype(np.float32)
