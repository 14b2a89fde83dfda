"""The simulated myo28 humanoid: an MJCF model generated from the joint core (skeleton.py).

One MuJoCo body per myo28 joint that has children, placed at the joint's rest offset, so the
model follows the joint table when it changes. Each bone is a capsule from its joint to its
child; the head is a sphere; each foot is a flat box sole from the heel to the toe tips, on the floor.

- Degrees of freedom: a free root (the pelvis) and hinges about the body's x, y, z axes
  (MuJoCo frame: x forward, y left, z up), three for ball-like joints, one (about y) for knees
  and elbows. spine2, the collars and the wrists are rigid: their motion is small in mocap and
  every extra degree of freedom makes the controller harder to learn.
- Masses: fractions of the body mass per segment (Dempster's table as adjusted by de Leva,
  1996), spread over each body's capsules by length.
- Joint limits: generous human ranges, mirrored for the right side.
- Actuators: MuJoCo position servos, one per hinge, with stiffness kp and damping kv (a PD
  controller integrated implicitly, stable at a 5 ms step); the action is the PD target angle.
- Feet: a box sole rests on four corners where a capsule rocks on a line, and the ankle servos
  are a third as stiff as the knee's, so a loaded sole settles flat on the floor instead of
  tapping it. With capsule soles and ankles as stiff as the knees, the tracked CMU walk's feet
  tapped and slid; with these, a controller learns the whole walk in a third of the steps (3M
  against 10M) and skates no more (0.36-0.45 against 0.46; benchmarks/RESULTS.md).
- The sole reaches the toe tips, 6.5 cm past the ball of the foot (the myo28 toe joint), a foot 15%
  of stature long as de Leva's tables give. Pitched toes-down at push-off it pivots on the toes, so
  the ball rises off the floor before the foot leaves it, as a real foot's does (tested); a sole
  ending just past the ball pivots on the ball and keeps it down. A walker trained from scratch on
  these soles follows the CMU walk with foot skating 0.054 against 0.29 on the shorter ones, and
  46 mm of joint error against 77-85 mm (benchmarks/RESULTS.md).

Self-collision is off (contype 1, conaffinity 0 for the body; the floor collides with both),
which keeps contacts to feet-floor and the fall itself, and the step cheap.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

import numpy as np

from myocli import skeleton as sk
from myocli.axes import from_mujoco, to_mujoco

TIMESTEP = 0.005  # seconds per physics step
BODY_MASS_KG = 70.0
FOOT_RADIUS = 0.025  # half the sole's thickness (and the heel strut's radius): the body stands this much above the joint line
SOLE_HALF_WIDTH = 0.04  # metres: a foot 8 cm wide
TOE_LENGTH = 0.065  # metres from the ball (the MTP joint) to the toe tips
# Floor contact. MuJoCo's contact is soft: with its defaults (time constant 0.02 s, impedance
# 0.9-0.95) a foot landing at 1 m/s sank up to 2 cm into the floor. So it is made as stiff as the
# 5-ms step resolves (MuJoCo clamps the time constant at two steps), and what give is left happens
# in a 5-mm layer on the floor, like a shoe's sole: the floor pushes from 5 mm out (its contact
# margin), so a landing compresses the layer instead of sinking the foot below the floor, and a
# standing foot rests on it, 5 mm up. (Measured in benchmarks/RESULTS.md: with 3 mm the hardest
# landings of generated walks still reached 5 mm below the floor.)
CONTACT_SOLREF = f"{2 * TIMESTEP:g} 1"
CONTACT_SOLIMP = "0.95 0.99 0.001"
CONTACT_MARGIN = 0.005  # metres

# Mass fraction of the segment each body carries (sums to 1 over all bodies, left and right).
MASS_FRACTIONS = {
    "pelvis": 0.142, "spine1": 0.070, "spine2": 0.069, "spine3": 0.196, "neck": 0.081,
    "left_collar": 0.010, "left_hip": 0.100, "left_knee": 0.0465, "left_ankle": 0.0145,
    "left_shoulder": 0.028, "left_elbow": 0.016, "left_wrist": 0.006,
}  # fmt: skip

# Capsule radius of the bone that ends at each child joint (metres).
BONE_RADIUS = {
    "left_hip": 0.07, "spine1": 0.08, "left_knee": 0.06, "spine2": 0.08, "left_ankle": 0.045,
    "spine3": 0.085, "neck": 0.06, "left_collar": 0.045, "head": 0.05, "left_shoulder": 0.045,
    "left_elbow": 0.04, "left_wrist": 0.035, "left_hand": 0.03, "left_thumb": 0.02,
}  # fmt: skip
HEAD_RADIUS = 0.10

# Hinged joints: axes (of x, y, z) with their ranges in degrees, for the left side and the
# trunk; the right side mirrors them (x and z ranges negated). Also PD stiffness kp (N m/rad),
# damping kv = kp / 10, and the force limit (N m).
HINGES: dict[str, tuple[dict[str, tuple[float, float]], float, float]] = {
    "spine1": ({"x": (-40, 40), "y": (-50, 60), "z": (-45, 45)}, 1000, 400),
    "spine3": ({"x": (-40, 40), "y": (-50, 60), "z": (-45, 45)}, 800, 300),
    "neck": ({"x": (-50, 50), "y": (-60, 70), "z": (-70, 70)}, 200, 60),
    "left_hip": ({"x": (-40, 80), "y": (-140, 40), "z": (-60, 60)}, 1500, 400),
    "left_knee": ({"y": (-5, 160)}, 1500, 400),
    "left_ankle": ({"x": (-40, 40), "y": (-55, 55), "z": (-40, 40)}, 500, 300),  # compliant: module docstring
    "left_shoulder": ({"x": (-60, 180), "y": (-180, 90), "z": (-100, 100)}, 300, 120),
    "left_elbow": ({"y": (-160, 5)}, 200, 80),
}

# The myo28 joints whose position the tracking reward checks as end effectors.
END_EFFECTORS = sk.END_EFFECTORS


def _mirror_name(name: str) -> str:
    return name.replace("left_", "right_") if name.startswith("left_") else name


def _by_side(table: dict, name: str):
    """A table entry for `name`, looking its left counterpart up for a right_ joint."""
    return table.get(name.replace("right_", "left_"))


@dataclass(frozen=True)
class Hinge:
    joint: int  # myo28 joint index whose local rotation it follows
    axis: int  # 0, 1, 2 for x, y, z (MuJoCo frame)
    low: float  # radians
    high: float
    kp: float
    force: float

    @property
    def name(self) -> str:
        return f"{sk.JOINT_NAMES[self.joint]}_{'xyz'[self.axis]}"


def tree_order(j: int = 0) -> list[int]:
    """Joints depth first, children in index order: the order of MuJoCo's bodies, qpos and actuators."""
    return [j] + [k for c in sk.CHILDREN[j] for k in tree_order(c)]


def _hinges() -> tuple[Hinge, ...]:
    hinges = []
    for j in tree_order():
        name = sk.JOINT_NAMES[j]
        entry = _by_side(HINGES, name)
        if entry is None:
            continue
        ranges, kp, force = entry
        for axis_name, (low, high) in ranges.items():
            axis = "xyz".index(axis_name)
            if name.startswith("right_") and axis != 1:  # mirror: rotations about x and z change sign
                low, high = -high, -low
            hinges.append(Hinge(j, axis, np.radians(low), np.radians(high), kp, force))
    return tuple(hinges)


HINGE_LIST = _hinges()
#: The myo28 joints that move (each with 1 or 3 hinges), in body order.
MOVING_JOINTS = tuple(dict.fromkeys(h.joint for h in HINGE_LIST))
#: HINGE_COLUMNS[j]: the positions in HINGE_LIST (and in qpos[7:], ctrl) of joint j's hinges.
HINGE_COLUMNS: dict[int, list[int]] = {j: [i for i, h in enumerate(HINGE_LIST) if h.joint == j] for j in MOVING_JOINTS}


def _fmt(values) -> str:
    return " ".join(f"{v:.5g}" for v in values)


def _body_xml(j: int, indent: str) -> list[str]:
    name = sk.JOINT_NAMES[j]
    offset = to_mujoco(sk.REST_OFFSETS[j]) if j else np.zeros(3)
    lines = [f'{indent}<body name="{name}" pos="{_fmt(offset)}">']
    inner = indent + "  "
    if j == 0:
        lines.append(f'{inner}<freejoint name="root"/>')
    for hinge in (h for h in HINGE_LIST if h.joint == j):
        axis = np.eye(3)[hinge.axis]
        lines.append(f'{inner}<joint name="{hinge.name}" type="hinge" axis="{_fmt(axis)}" '
                     f'range="{hinge.low:.5f} {hinge.high:.5f}"/>')  # fmt: skip
    mass = BODY_MASS_KG * _by_side(MASS_FRACTIONS, name)
    geoms = []  # (xml without mass, length)
    ends = [c for c in sk.CHILDREN[j] if c not in (sk.JOINT_INDEX["left_foot"], sk.JOINT_INDEX["right_foot"])]
    for c in ends:
        child = to_mujoco(sk.REST_OFFSETS[c])
        if sk.JOINT_NAMES[c].endswith("heel"):  # the foot: heel to toe tips, on the floor
            ball = to_mujoco(sk.REST_OFFSETS[c - 12])  # left_heel 22 -> left_foot 10
            ball[2] = child[2]  # a flat sole at the heel's height, so the rest pose stands level
            back, front = child - [FOOT_RADIUS, 0, 0], ball + [TOE_LENGTH, 0, 0]  # from behind the heel to the toe tips
            half_length = np.linalg.norm(front - back) / 2
            geoms.append((f'type="box" pos="{_fmt((back + front) / 2)}" size="{half_length:.5g} {SOLE_HALF_WIDTH} {FOOT_RADIUS}"', 0.2))
            geoms.append((f'type="capsule" fromto="0 0 0 {_fmt(child)}" size="{FOOT_RADIUS}"', 0.05))
            continue
        radius = _by_side(BONE_RADIUS, sk.JOINT_NAMES[c])
        geoms.append((f'type="capsule" fromto="0 0 0 {_fmt(child)}" size="{radius}"', float(np.linalg.norm(child))))
        if sk.JOINT_NAMES[c] == "head":
            geoms.append((f'type="sphere" pos="{_fmt(child + [0.02, 0, 0.03])}" size="{HEAD_RADIUS}"', 0.3))
    total = sum(length for _, length in geoms)
    for xml, length in geoms:
        lines.append(f'{inner}<geom {xml} mass="{mass * length / total:.5g}"/>')
    for c in sk.CHILDREN[j]:  # a site on every myo28 joint the body carries, for positions and rewards
        if not sk.CHILDREN[c]:
            lines.append(f'{inner}<site name="{sk.JOINT_NAMES[c]}" pos="{_fmt(to_mujoco(sk.REST_OFFSETS[c]))}"/>')
    lines.append(f'{inner}<site name="{name}" pos="0 0 0"/>')
    for c in sk.CHILDREN[j]:
        if sk.CHILDREN[c]:
            lines += _body_xml(c, inner)
    lines.append(f"{indent}</body>")
    return lines


@cache
def mjcf() -> str:
    """The humanoid and a floor as an MJCF document."""
    actuators = [
        f'    <position name="{h.name}" joint="{h.name}" kp="{h.kp}" kv="{h.kp / 10:g}" '
        f'ctrlrange="{h.low:.5f} {h.high:.5f}" forcerange="{-h.force} {h.force}"/>'
        for h in HINGE_LIST
    ]
    body = _body_xml(0, "    ")
    return "\n".join([
        '<mujoco model="myo28-humanoid">',
        '  <compiler angle="radian" autolimits="true"/>',
        f'  <option timestep="{TIMESTEP}" integrator="implicitfast"/>',
        '  <default>',
        '    <joint damping="2" armature="0.02" limited="true"/>',
        f'    <geom contype="1" conaffinity="0" friction="1.0 0.05 0.01" solref="{CONTACT_SOLREF}" solimp="{CONTACT_SOLIMP}" rgba="0.75 0.75 0.78 1"/>',
        '    <site size="0.01" rgba="1 0 0 0"/>',
        '  </default>',
        '  <worldbody>',
        f'    <geom name="floor" type="plane" size="50 50 0.1" margin="{CONTACT_MARGIN}" contype="1" conaffinity="1" rgba="0.6 0.6 0.62 1"/>',
        *body,
        '  </worldbody>',
        '  <actuator>',
        *actuators,
        '  </actuator>',
        '</mujoco>',
    ])  # fmt: skip


def fingerprint() -> str:
    """sha256 of the model: a policy trained on one humanoid refuses another."""
    return hashlib.sha256(mjcf().encode()).hexdigest()


def load_model():
    """A compiled mujoco.MjModel of the humanoid."""
    from myocli.gl import load_mujoco

    mujoco = load_mujoco()

    return mujoco.MjModel.from_xml_string(mjcf())


def site_ids(model) -> np.ndarray:
    """MuJoCo site index of each myo28 joint, in myo28 order."""
    from myocli.gl import load_mujoco

    mujoco = load_mujoco()

    return np.array([mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, n) for n in sk.JOINT_NAMES])


def joint_positions(site_xpos: np.ndarray) -> np.ndarray:
    """Simulated site positions (..., 28, 3), MuJoCo frame -> a myo28 motion (feet on the joint line)."""
    positions = from_mujoco(site_xpos)
    positions[..., 1] -= FOOT_RADIUS
    return positions
