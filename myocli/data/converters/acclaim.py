"""Acclaim ASF/AMC (HDM05, CMU) into myo28.

Every AMC clip is read with its own actor's skeleton (.asf), found in this order: `--skeleton`,
the `skeleton` column of a labels.csv sidecar, then by name beside the clip or in a sibling
`asf/` folder (`HDM_bd_*.amc` -> `HDM_bd.asf`, CMU's `01_01.amc` -> `01.asf`).

Forward kinematics (checked on HDM05 and CMU): R_root = Rz Ry Rx from the root's rotation
values; per bone C = Rz(az) Ry(ay) Rx(ax) from its ASF `axis` and M = Rz Ry Rx from its AMC
values (missing DOFs are 0); R_b = R_parent C M C^T and the bone's end is
p_b = p_parent + R_b (direction * length). Lengths in ASF units (x 0.0254 / `:units length`
gives metres).

Joint mapping (points are bone ends, `root` is the root position):

| myo28 | source | myo28 | source |
|---|---|---|---|
| pelvis | root | neck | lowerneck |
| left_hip | lhipjoint | head | upperneck (base of the skull) |
| left_knee | lfemur | left_shoulder | lclavicle |
| left_ankle | ltibia | left_elbow | lhumerus |
| left_foot (MTP) | lfoot | left_wrist | lwrist (HDM05's forearm is two bones) |
| spine polyline | root lowerback upperback thorax lowerneck | left_hand | lhand |
| | | left_thumb | lthumb |

Right side likewise. Synthesised: heels, spine1..3, collars (see retarget.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from myocli.data.converters.checks import LIMIT, describe, first_bad
from myocli.data.retarget import JointMap, SourceClip, map_to_myo28
from myocli.errors import MyoError
from myocli.rotations import euler_to_matrix

EXTENSIONS = (".amc",)
SKELETON_EXTENSIONS = (".asf",)
AMC_FPS = 120.0
#: Frame rates read as mocap; a damaged `fps` (labels.csv, --source-fps) outside them would make
#: the resampled clip millions of frames long, or none.
FPS_RANGE = (1.0, 100_000.0)
_ROOT_DOFS = {"tx", "ty", "tz", "rx", "ry", "rz"}

_SIDES = {"hip": "{s}hipjoint", "knee": "{s}femur", "ankle": "{s}tibia", "foot": "{s}foot",
          "shoulder": "{s}clavicle", "elbow": "{s}humerus", "wrist": "{s}wrist", "hand": "{s}hand",
          "thumb": "{s}thumb"}  # fmt: skip
JOINT_MAP = JointMap(
    joints={
        "pelvis": "root", "neck": "lowerneck", "head": "upperneck",
        **{f"left_{k}": v.format(s="l") for k, v in _SIDES.items()},
        **{f"right_{k}": v.format(s="r") for k, v in _SIDES.items()},
    },
    spine=("root", "lowerback", "upperback", "thorax", "lowerneck"),
)  # fmt: skip


@dataclass
class _Bone:
    name: str
    parent: str
    direction: np.ndarray
    length: float
    axis: np.ndarray  # degrees, XYZ
    dofs: list[str]


@dataclass
class Skeleton:
    path: Path
    bones: dict[str, _Bone]  # in parent-before-child order
    metres_per_unit: float
    degrees: bool
    root_order: list[str]
    root_axis: str


def _numbers(words: list[str], count: int) -> np.ndarray:
    """Exactly `count` usable numbers (a ValueError, reported with the line, when not)."""
    values = np.array(words[:count], dtype=np.float64)
    if len(values) != count or first_bad(values) is not None:
        raise ValueError(f"expected {count} finite numbers within +-{LIMIT:g}")
    return values


def read_asf(path: Path) -> Skeleton:
    """Parse an ASF skeleton file."""
    if not path.is_file():
        raise MyoError(f"{path}: skeleton file not found")
    lines = path.read_text(encoding="latin-1").splitlines()
    bones: dict[str, _Bone] = {}
    hierarchy: list[tuple[str, list[str]]] = []
    length_unit, degrees = 1.0, True
    root_order, root_axis = ["tx", "ty", "tz", "rx", "ry", "rz"], "xyz"
    section, current = "", None
    try:
        for raw in lines:
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith(":"):
                section = line.split()[0][1:].lower()
                continue
            words = line.split()
            key = words[0].lower()
            if section == "units":
                if key == "length":
                    length_unit = _numbers(words[1:], 1)[0]
                    if not 1e-6 <= length_unit <= 1e6:  # 0 divides by zero, 1e-300 overflows the metres
                        raise ValueError("the length unit must lie between 1e-6 and 1e6 (CMU's is 0.45)")
                elif key == "angle":
                    degrees = words[1].lower().startswith("deg")
            elif section == "root":
                if key == "order":
                    root_order = [w.lower() for w in words[1:]]
                elif key == "axis":
                    root_axis = words[1].lower()
            elif section == "bonedata":
                if key == "begin":
                    current = _Bone("", "", np.zeros(3), 0.0, np.zeros(3), [])
                elif key == "end":
                    bones[current.name] = current
                    current = None
                elif key == "name":
                    current.name = words[1]
                elif key == "direction":
                    current.direction = _numbers(words[1:], 3)
                elif key == "length":
                    current.length = _numbers(words[1:], 1)[0]
                elif key == "axis":
                    current.axis = _numbers(words[1:], 3)
                    if words[4].upper() != "XYZ":
                        raise MyoError(f"{path}: bone {current.name} uses axis order {words[4]}; only XYZ is supported")
                elif key == "dof":
                    current.dofs = [w.lower() for w in words[1:]]
            elif section == "hierarchy" and key not in ("begin", "end"):
                hierarchy.append((words[0], words[1:]))
    except (IndexError, ValueError, AttributeError) as exc:
        raise MyoError(f"{path}: malformed ASF skeleton near {line!r} ({exc})") from exc
    if sorted(root_order) != sorted(_ROOT_DOFS):
        raise MyoError(f"{path}: the root's order is {' '.join(root_order)!r}; it must list TX TY TZ RX RY RZ once each")
    parent_of = {child: parent for parent, children in hierarchy for child in children}
    ordered: dict[str, _Bone] = {}
    frontier = ["root"]
    while frontier:  # breadth-first from the root so parents come first
        name = frontier.pop(0)
        for child, parent in parent_of.items():
            if parent == name:
                if child not in bones:
                    raise MyoError(f"{path}: the hierarchy names bone {child!r} that has no bonedata")
                if child == "root" or child in ordered:  # a loop would walk forever
                    raise MyoError(f"{path}: the hierarchy reaches bone {child!r} twice; it must be a tree under the root")
                bones[child].parent = parent
                ordered[child] = bones[child]
                frontier.append(child)
    for bone in ordered.values():
        bad = [d for d in bone.dofs if d not in ("rx", "ry", "rz")]
        if bad:
            raise MyoError(f"{path}: bone {bone.name} has DOFs {bad}; only rotations rx ry rz are supported")
    if not ordered:
        raise MyoError(f"{path}: no bones under the root; is this an ASF skeleton?")
    return Skeleton(path, ordered, 0.0254 / length_unit, degrees, root_order, root_axis)


def read_amc(path: Path, skeleton: Skeleton) -> dict[str, np.ndarray]:
    """Parse an AMC clip into {bone or 'root': values (T, n)} in the skeleton's DOF order."""
    text = path.read_text(encoding="latin-1")  # HDM05 headers hold a non-UTF-8 byte
    body_lines = []
    degrees = skeleton.degrees
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith(":"):
            degrees = {":DEGREES": True, ":RADIANS": False}.get(stripped.upper(), degrees)
            continue
        body_lines.append(stripped)
    if not body_lines or not body_lines[0].isdigit():
        raise MyoError(f"{path}: no frames found; an AMC body starts with a frame number line")
    widths = {"root": len(skeleton.root_order)} | {b.name: len(b.dofs) for b in skeleton.bones.values() if b.dofs}
    # Read the first frame's bone order, then check every frame has exactly that layout.
    order = []
    for line in body_lines[1:]:
        if line.isdigit():
            break
        order.append(line.split()[0])
    missing = [name for name in widths if name not in order]
    unknown = [name for name in order if name not in widths]
    if missing or unknown:
        raise MyoError(f"{path}: frame 1 lacks bones {missing} and has unknown bones {unknown} for skeleton {skeleton.path.name}")
    per_frame = 1 + len(order)
    if len(body_lines) % per_frame:
        _raise_bad_frame(path, body_lines, order, per_frame)
    frames = len(body_lines) // per_frame
    grid = np.array(body_lines, dtype=object).reshape(frames, per_frame)
    values = {}
    for k, name in enumerate(order, start=1):
        words = [row.split() for row in grid[:, k]]  # split once: parsing dominates conversion time
        if any(len(w) != widths[name] + 1 or w[0] != name for w in words):
            _raise_bad_frame(path, body_lines, order, per_frame)
        try:
            values[name] = np.array([w[1:] for w in words], dtype=np.float64)
        except ValueError as exc:
            raise MyoError(f"{path}: a {name} line holds something that is not a number ({exc})") from exc
        bad = first_bad(values[name])
        if bad is not None:  # named here, at its source frame: after mapping it may spread to every frame
            frame = grid[bad[0], 0]
            raise MyoError(f"{path}: frame {frame} has {describe(values[name][bad])} for bone {name}; the clip is damaged")
    values["__degrees__"] = np.array(degrees)
    return values


def _raise_bad_frame(path: Path, lines: list[str], order: list[str], per_frame: int) -> None:
    """Find the first frame that breaks the layout and say which bone is wrong."""
    i = 0
    while i < len(lines):
        frame = lines[i]
        for k, name in enumerate(order, start=1):
            line = lines[i + k] if i + k < len(lines) else ""
            if line.split()[:1] != [name]:
                raise MyoError(f"{path}: frame {frame} is missing bone {name!r} (found {line[:40]!r}); the clip is damaged")
        i += per_frame
    raise MyoError(f"{path}: frames do not all hold {per_frame - 1} bone lines; the clip is damaged")


def forward_kinematics(skeleton: Skeleton, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Bone end points {name: (T, 3)} in metres, plus 'root'.

    All local rotations are built in one vectorised call (numpy call overhead, not
    arithmetic, dominates at a few hundred frames per clip); only the walk down the
    hierarchy is a Python loop, two array operations per bone.
    """
    degrees = bool(values["__degrees__"])
    root = values["root"]
    frames = len(root)
    bones = list(skeleton.bones.values())
    column = {name: k for k, name in enumerate(skeleton.root_order)}
    # angles[j] holds (rx, ry, rz) of joint j; joint 0 is the root, joint b + 1 is bones[b].
    angles = np.zeros((len(bones) + 1, frames, 3))
    angles[0] = root[:, [column["rx"], column["ry"], column["rz"]]]
    for j, bone in enumerate(bones, 1):
        dof_values = values.get(bone.name)
        for k, dof in enumerate(bone.dofs):
            if dof_values is not None:
                angles[j, :, "xyz".index(dof[1])] = dof_values[:, k]
    # ASF "axis XYZ" means R = Rz Ry Rx of (x, y, z), for the root's motion and every bone's axis.
    local = euler_to_matrix(angles[..., ::-1], "zyx", degrees)
    axes = euler_to_matrix(np.array([bone.axis for bone in bones])[:, ::-1], "zyx", degrees=True)
    local[1:] = axes[:, None] @ local[1:] @ axes.transpose(0, 2, 1)[:, None]

    index = {"root": 0} | {bone.name: j for j, bone in enumerate(bones, 1)}
    rotations = np.empty_like(local)
    rotations[0] = local[0]
    points = np.empty((len(bones) + 1, frames, 3))
    points[0] = root[:, [column["tx"], column["ty"], column["tz"]]]
    for j, bone in enumerate(bones, 1):
        parent = index[bone.parent]
        rotations[j] = rotations[parent] @ local[j]
        points[j] = points[parent] + rotations[j] @ (bone.direction * bone.length)
    points *= skeleton.metres_per_unit
    return {name: points[j] for name, j in index.items()}


def read(path: Path, skeleton_path: Path, fps: float = AMC_FPS) -> list[SourceClip]:
    if not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:  # also refuses NaN
        raise MyoError(f"{path}: source frame rate {fps:g} is not a mocap rate ({FPS_RANGE[0]:g} to {FPS_RANGE[1]:g} fps)")
    skeleton = read_asf(skeleton_path)
    points = forward_kinematics(skeleton, read_amc(path, skeleton))
    missing = [p for p in set(JOINT_MAP.joints.values()) | set(JOINT_MAP.spine) if p not in points]
    if missing:
        raise MyoError(f"{skeleton_path}: bones {sorted(missing)} are missing; myo reads the Vicon/CMU ASF bone set")
    frames = len(points["root"])
    return [
        SourceClip(
            name=path.stem, positions=map_to_myo28(points, JOINT_MAP), times=np.arange(frames) / fps,
            group=path.stem, source="amc",
        )
    ]  # fmt: skip


def skeleton_candidates(path: Path) -> list[Path]:
    """Where a clip's own .asf usually lies: `HDM_bd_x.amc` -> HDM_bd.asf, `01_01.amc` -> 01.asf."""
    parts = path.stem.split("_")
    stems = ["_".join(parts[:n]) for n in range(len(parts) - 1, 0, -1)]
    folders = [path.parent, path.parent.parent / "asf", path.parent / "asf", path.parent.parent]
    return [folder / f"{stem}{ext}" for folder in folders for stem in stems for ext in (".asf", ".ASF")]
