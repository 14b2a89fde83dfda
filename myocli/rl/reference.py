"""A myo28 motion as the simulated humanoid's reference: joint angles, velocities and the poses they give.

The clip is resampled to the controller's rate, turned into joint rotations by the inverse
kinematics the BVH export uses (motion/ik.py), and each moving joint's rotation relative to
its parent body becomes hinge angles (x, then y, then z: MuJoCo applies a body's joints in
the order they are declared). Rigid joints (spine2, collars, wrists) pass their rotation on
to the next moving joint below them, so the limbs keep their world orientation. Angles are
unwrapped over time and clipped to the joint ranges.

The reward compares the simulation with the reference *as the humanoid can pose it*: the
sites and centre of mass of the reference angles (forward kinematics in MuJoCo). The
original positions are kept for reporting the error a user sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from myocli import rotations
from myocli import skeleton as sk
from myocli.axes import TO_MUJOCO, to_mujoco
from myocli.errors import MyoError
from myocli.motion import ik
from myocli.motion.stats import over_centred_window
from myocli.motion.timing import change_fps
from myocli.rl import humanoid as hu

CONTROL_STEPS_PER_FRAME = 2  # the controller acts twice per motion frame (40 Hz for 20 fps)
FOOT_SMOOTHING_S = 0.1  # about this many seconds (an odd number of control steps) average the root's foot-height correction
FLOOR_WINDOW_S = 1.0  # the clip's floor at a step: its lowest foot point within this span around it


@dataclass
class Reference:
    name: str
    qpos: np.ndarray  # (T, nq) root position, root quaternion (w x y z), hinge angles
    qvel: np.ndarray  # (T, nv)
    sites: np.ndarray  # (T, 28, 3) MuJoCo frame: myo28 joints of the reference pose
    com: np.ndarray  # (T, 3) centre of mass of the reference pose
    root_rotation: np.ndarray  # (T, 3, 3) the root's rotation (of qpos's quaternion), MuJoCo frame
    positions: np.ndarray  # (T, 28, 3) myo28 frame: the clip itself, resampled
    dt: float  # seconds between control steps

    def __len__(self) -> int:
        return len(self.qpos)


def _hinge_angles(local: np.ndarray) -> np.ndarray:
    """Local rotations (T, 3, 3), MuJoCo frame -> intrinsic x-y-z angles (T, 3): R = Rx(a) Ry(b) Rz(c)."""
    a = np.arctan2(-local[:, 1, 2], local[:, 2, 2])
    b = np.arcsin(np.clip(local[:, 0, 2], -1.0, 1.0))
    c = np.arctan2(-local[:, 0, 1], local[:, 0, 0])
    return np.stack([a, b, c], -1)


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def _hinge_plane_frame(world: np.ndarray, upper: np.ndarray, lower: np.ndarray, flexion_sign: float) -> np.ndarray:
    """A hip's (shoulder's) rotation (T, 3, 3) that keeps the limb's direction and turns the
    body's y axis onto the knee's (elbow's) bending axis, so a one-hinge knee can follow.
    A nearly straight limb has no bending plane: its twist from IK (`world`) is kept."""
    along = _unit(upper)
    bend = np.cross(upper, lower) * flexion_sign
    strength = np.clip(np.linalg.norm(bend, axis=-1, keepdims=True) / (np.linalg.norm(upper, axis=-1, keepdims=True)
                       * np.linalg.norm(lower, axis=-1, keepdims=True) * np.sin(np.radians(15))), 0.0, 1.0)  # fmt: skip
    y = strength * _unit(bend) + (1 - strength) * world[:, :, 1]
    y = _unit(y - (y * along).sum(-1, keepdims=True) * along)
    z = -along  # the rest limb points down the body's -z
    return np.stack([np.cross(y, z), y, z], axis=-1)


def _flexion_sign(column: int) -> float:
    """+1 for a hinge that bends towards positive angles (knees), -1 otherwise (elbows)."""
    hinge = hu.HINGE_LIST[column]
    return 1.0 if hinge.low + hinge.high > 0 else -1.0


def hinge_targets(positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """myo28 positions (T, 28, 3) -> root position (T, 3) and rotation (T, 3, 3) in the MuJoCo
    frame, and the hinge angles (T, n_hinges) in HINGE_LIST order.

    Joints are solved parent first, each relative to the body rotation its parent actually
    got (after clipping to the joint ranges), so the joints below make up for what a parent
    could not do."""
    world = TO_MUJOCO @ ik.world_rotations(positions) @ TO_MUJOCO.T  # into the MuJoCo frame
    points = to_mujoco(positions)
    body = world.copy()  # the simulated bodies' rotations, filled in parent-first
    angles = np.zeros((len(positions), len(hu.HINGE_LIST)))
    for j in hu.tree_order()[1:]:
        columns = hu.HINGE_COLUMNS.get(j, [])
        parent = body[:, sk.PARENTS[j]]
        if not columns:  # rigid: turns with its parent
            body[:, j] = parent
            continue
        axes = "".join("xyz"[hu.HINGE_LIST[i].axis] for i in columns)
        if len(columns) == 1:  # knee or elbow: the angle between the two bones about the bending axis
            child = sk.CHILDREN[j][0]
            upper, lower = points[:, j] - points[:, sk.PARENTS[j]], points[:, child] - points[:, j]
            cosine = (_unit(upper) * _unit(lower)).sum(-1)
            sign = _flexion_sign(columns[0])
            solved = sign * np.arccos(np.clip(cosine, -1.0, 1.0))[:, None]
        else:
            target = world[:, j]
            knee = next((c for c in sk.CHILDREN[j] if len(hu.HINGE_COLUMNS.get(c, [])) == 1), None)  # a one-hinge child
            if knee is not None:
                ankle = sk.CHILDREN[knee][0]
                sign = _flexion_sign(hu.HINGE_COLUMNS[knee][0])
                target = _hinge_plane_frame(world[:, j], points[:, knee] - points[:, j], points[:, ankle] - points[:, knee], sign)
            solved = np.unwrap(_hinge_angles(np.swapaxes(parent, -1, -2) @ target), axis=0)
        low = np.array([hu.HINGE_LIST[i].low for i in columns])
        high = np.array([hu.HINGE_LIST[i].high for i in columns])
        angles[:, columns] = np.clip(solved, low, high)
        body[:, j] = parent @ rotations.euler_to_matrix(angles[:, columns], axes, degrees=False)
    # The clip's hips need not sit where the canonical pelvis puts them (converters keep each
    # bone's source direction): place the pelvis so the simulated hips land on the clip's, as
    # the legs carry the contacts.
    hips = [sk.JOINT_INDEX["left_hip"], sk.JOINT_INDEX["right_hip"]]
    rest_hips = to_mujoco(sk.REST_OFFSETS[hips])  # (2, 3)
    root_position = (points[:, hips] - np.einsum("tij,hj->thi", world[:, 0], rest_hips)).mean(1)
    root_position[:, 2] += hu.FOOT_RADIUS
    return root_position, world[:, 0], angles


def build(positions: np.ndarray, fps: float, name: str = "motion", model=None) -> Reference:
    """The reference of a myo28 motion (T, 28, 3) at `fps` frames per second."""
    from myocli.gl import load_mujoco

    mujoco = load_mujoco()

    positions = sk.as_joints(np.asarray(positions, dtype=np.float64))
    if not np.isfinite(positions).all():
        raise MyoError(f"{name}: the motion contains NaN or Inf; the humanoid cannot track it")
    if len(positions) < 2:
        raise MyoError(f"{name}: {len(positions)} frame(s); tracking needs at least 2")
    model = model if model is not None else hu.load_model()
    positions = change_fps(positions, fps, fps * CONTROL_STEPS_PER_FRAME)
    dt = 1.0 / (fps * CONTROL_STEPS_PER_FRAME)
    root_position, root_rotation, angles = hinge_targets(positions)
    frames = len(positions)
    qpos = np.zeros((frames, model.nq))
    qpos[:, :3] = root_position
    for t in range(frames):
        mujoco.mju_mat2Quat(qpos[t, 3:7], root_rotation[t].reshape(-1))
    qpos[:, 7:] = angles
    data = mujoco.MjData(model)
    site_ids = hu.site_ids(model)
    sites = np.empty((frames, sk.NUM_JOINTS, 3))
    com = np.empty((frames, 3))
    for t in range(frames):
        data.qpos[:] = qpos[t]
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        sites[t] = data.site_xpos[site_ids]
        com[t] = data.subtree_com[1]
    # Raising the root lifts every site and the centre of mass by as much: no second pass needed.
    lift = _foot_height_correction(hu.joint_positions(sites), positions, int(round(FOOT_SMOOTHING_S / dt)), int(round(FLOOR_WINDOW_S / dt)))
    qpos[:, 2] += lift
    sites[..., 2] += lift[:, None]
    com[:, 2] += lift
    qvel = np.zeros((frames, model.nv))
    for t in range(frames - 1):
        mujoco.mj_differentiatePos(model, qvel[t], dt, qpos[t], qpos[t + 1])
    qvel[-1] = qvel[-2]
    return Reference(name, qpos, qvel, sites, com, rotations.quaternion_to_matrix(qpos[:, 3:7]), positions, dt)


def _foot_height_correction(posed: np.ndarray, positions: np.ndarray, window: int, floor_window: int) -> np.ndarray:
    """How far (T,) to raise the root so the humanoid's lowest foot point stands where the clip's
    does above the clip's own floor.

    The root is placed from the clip's hips, so legs shorter than myo28's (a generator's decoded
    motion shrinks them by centimetres) would leave the humanoid's canonical legs reaching into the
    floor, and the contact would throw the body up. And a clip's floor need not be at height 0:
    a capture's floor drifts (CMU 02_01 rises 5 cm over its 2.8 s) and a generated walk's stance
    foot hovers 1-4 cm up, where a simulated foot would find no floor. The clip's floor is taken
    as the lowest foot point within `floor_window` steps around each step (a gait cycle; a jump's
    flight, shorter than that, keeps its height). Both motions are in the myo28 frame, feet on
    the joint line; the correction is averaged over about `window` steps so a change of supporting
    foot does not jolt the root. A clip with myo28's proportions on a level floor gets (close to) zero."""
    feet = list(sk.FOOT_CONTACT_JOINTS)
    lowest = positions[:, feet, 1].min(1)
    floor = over_centred_window(lowest, 2 * (floor_window // 2) + 1, np.min)  # odd windows: centred on each step
    return over_centred_window(lowest - floor - posed[:, feet, 1].min(1), 2 * (window // 2) + 1)
