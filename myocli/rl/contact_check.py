"""A second opinion on floor contact: the humanoid's shapes against the floor, by MuJoCo and by PyBullet.

The skating and penetration figures of myocli/motion/metrics.py read joint positions only.
The simulated body touches the floor with its shapes (capsules, and a box sole per foot), so
`myo rl eval` also measures, for every simulated frame, how far each body's shapes are from the
floor, twice: with MuJoCo's collision detection (the engine that simulated it) and with
PyBullet's, on the same MJCF loaded into PyBullet (its MJCF importer builds the same shapes and
hinges). Agreement says the figures are the geometry's, not one engine's; a disagreement would
show a body the two engines build differently.

- penetration: depth of the deepest shape below the floor, per frame (0 when clear), in mm;
- touching: which bodies are within TOUCH_MM of the floor (its 5-mm contact layer and 1 mm more,
  humanoid.py), per frame; the agreement is the share of (frame, body) pairs both engines call the same.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from myocli import rotations
from myocli import skeleton as sk
from myocli.rl import humanoid as hu

TOUCH_MM = 1000 * hu.CONTACT_MARGIN + 1.0  # a shape this close to the floor touches it (rests on its contact layer)
SEARCH_M = 0.05  # distances are asked for within this margin; anything farther is "clear"


@dataclass
class FloorContact:
    mujoco_mm: np.ndarray  # (T, B) each body's signed distance to the floor, mm (SEARCH_M when farther)
    pybullet_mm: np.ndarray  # (T, B) the same by PyBullet
    bodies: list[str]  # the B bodies that carry shapes

    def summary(self) -> dict:
        touching_mj, touching_pb = self.mujoco_mm < TOUCH_MM, self.pybullet_mm < TOUCH_MM
        return {
            "mujoco_penetration_mm": round(float(_penetration(self.mujoco_mm).mean()), 2),
            "pybullet_penetration_mm": round(float(_penetration(self.pybullet_mm).mean()), 2),
            "largest_difference_mm": round(float(np.abs(self.mujoco_mm - self.pybullet_mm).max()), 2),
            "touching_agreement": round(float((touching_mj == touching_pb).mean()), 4),
        }


def _penetration(distances_mm: np.ndarray) -> np.ndarray:
    return np.maximum(-distances_mm.min(axis=1), 0.0)


def _mujoco_distances(model, qpos: np.ndarray) -> tuple[np.ndarray, list[str]]:
    from myocli.gl import load_mujoco

    mujoco = load_mujoco()
    data = mujoco.MjData(model)
    floor = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    geoms = [g for g in range(model.ngeom) if g != floor]
    body_ids = sorted({int(model.geom_bodyid[g]) for g in geoms})
    names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, b) for b in body_ids]
    columns = [body_ids.index(int(model.geom_bodyid[g])) for g in geoms]
    distances = np.full((len(qpos), len(body_ids)), SEARCH_M)
    for t, pose in enumerate(qpos):
        data.qpos[:] = pose
        mujoco.mj_kinematics(model, data)
        for g, column in zip(geoms, columns, strict=True):
            distance = mujoco.mj_geomDistance(model, data, floor, g, SEARCH_M, None)
            distances[t, column] = min(distances[t, column], distance)
    return 1000 * distances, names


def _pybullet_distances(model, qpos: np.ndarray, bodies: list[str]) -> np.ndarray:
    from myocli.gl import load_mujoco, load_pybullet

    mujoco, pybullet = load_mujoco(), load_pybullet()
    client = pybullet.connect(pybullet.DIRECT)
    try:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "humanoid.xml"
            # PyBullet's importer gives the root link a free base itself and warns at <freejoint>.
            path.write_text(hu.mjcf().replace('<freejoint name="root"/>', ""))
            floor, body = pybullet.loadMJCF(str(path), physicsClientId=client)
        joint_count = pybullet.getNumJoints(body, physicsClientId=client)
        info = [pybullet.getJointInfo(body, j, physicsClientId=client) for j in range(joint_count)]
        # PyBullet names a joint as the MJCF does and a link after the body whose shapes it carries.
        qpos_address = {mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j): int(model.jnt_qposadr[j]) for j in range(model.njnt)}
        hinges = [(j, qpos_address[i[1].decode()]) for j, i in enumerate(info) if i[1].decode() in qpos_address]
        column_of_link = {j: bodies.index(i[12].decode()) for j, i in enumerate(info) if i[12].decode() in bodies}
        column_of_link[-1] = bodies.index(sk.JOINT_NAMES[0])  # the base link is the root body
        # PyBullet places a base by its centre of mass, MuJoCo by its body frame.
        base_inertial = np.array(pybullet.getDynamicsInfo(body, -1, physicsClientId=client)[3])
        distances = np.full((len(qpos), len(bodies)), SEARCH_M)
        for t, pose in enumerate(qpos):
            w, x, y, z = pose[3:7]  # MuJoCo's order; PyBullet's is x y z w
            rotation = rotations.quaternion_to_matrix(pose[3:7])
            pybullet.resetBasePositionAndOrientation(body, (pose[:3] + rotation @ base_inertial).tolist(), [x, y, z, w], physicsClientId=client)
            for joint, address in hinges:
                pybullet.resetJointState(body, joint, pose[address], physicsClientId=client)
            for point in pybullet.getClosestPoints(body, floor, SEARCH_M, physicsClientId=client):
                column = column_of_link[point[3]]
                distances[t, column] = min(distances[t, column], point[8])
        return 1000 * distances
    finally:
        pybullet.disconnect(client)


def floor_contact(qpos: np.ndarray) -> FloorContact:
    """Both engines' floor distances for the humanoid posed at each row of `qpos` (T, nq)."""
    qpos = np.asarray(qpos, dtype=np.float64)
    model = hu.load_model()  # MuJoCo's copy; PyBullet builds its own from the same MJCF
    mujoco_mm, bodies = _mujoco_distances(model, qpos)
    return FloorContact(mujoco_mm, _pybullet_distances(model, qpos, bodies), bodies)
