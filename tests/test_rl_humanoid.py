"""The simulated myo28 humanoid (rl/humanoid.py): standing, the floor, its joint table, its feet, and
floor contact measured by MuJoCo and pybullet alike (rl/contact_check.py)."""

from __future__ import annotations

import numpy as np
from rl_helpers import hinge

from myocli import skeleton as sk
from myocli.gl import load_mujoco
from myocli.rl import humanoid as hu

mujoco = load_mujoco()


def _standing_data(model):
    data = mujoco.MjData(model)
    data.qpos[:3] = hu.to_mujoco(sk.rest_pose()[0])
    data.qpos[2] += hu.FOOT_RADIUS
    data.qpos[3] = 1.0
    return data


def test_humanoid_stands_under_pd_and_falls_without_it():
    model = hu.load_model()
    standing = _standing_data(model)
    start = standing.qpos[2]
    mujoco.mj_step(model, standing, nstep=int(5.0 / model.opt.timestep))  # targets stay 0: the rest pose
    assert abs(standing.qpos[2] - start) < 0.03 and np.linalg.norm(standing.qpos[:2]) < 0.05

    model.actuator_gainprm[:, 0] = 0.0  # actuators off
    model.actuator_biasprm[:] = 0.0
    limp = _standing_data(model)
    mujoco.mj_step(model, limp, nstep=int(5.0 / model.opt.timestep))
    assert limp.qpos[2] < 0.5


def test_humanoid_lands_on_the_floor_without_sinking_into_it():
    """A 10-cm drop on to the feet (1.4 m/s at impact): the floor's contact layer (humanoid.py) takes
    it above the floor, where MuJoCo's default contact let the soles sink a centimetre; standing, the
    soles rest on the layer."""
    model = hu.load_model()
    data = _standing_data(model)
    data.qpos[2] += 0.10
    feet = hu.site_ids(model)[list(sk.FOOT_CONTACT_JOINTS)]
    lowest = []  # the lowest heel or ball on the joint line, each physics step
    for _ in range(int(1.0 / model.opt.timestep)):
        mujoco.mj_step(model, data)
        lowest.append(hu.joint_positions(data.site_xpos[feet])[:, 1].min())
    assert min(lowest) >= 0.0
    assert 0.0 < lowest[-1] <= hu.CONTACT_MARGIN


def test_humanoid_follows_the_joint_table():
    model = hu.load_model()
    assert model.nu == len(hu.HINGE_LIST) == model.nq - 7
    assert abs(model.body_subtreemass[1] - hu.BODY_MASS_KG) < 1e-3
    data = _standing_data(model)
    mujoco.mj_kinematics(model, data)
    np.testing.assert_allclose(hu.joint_positions(data.site_xpos[hu.site_ids(model)]), sk.rest_pose(), atol=1e-9)
    # Knees bend backwards: a positive knee angle moves the ankle behind the knee.
    data.qpos[7 + hinge("left_knee_y")] = 1.0
    mujoco.mj_kinematics(model, data)
    ankle = hu.joint_positions(data.site_xpos[hu.site_ids(model)])[sk.JOINT_INDEX["left_ankle"]]
    knee = hu.joint_positions(data.site_xpos[hu.site_ids(model)])[sk.JOINT_INDEX["left_knee"]]
    assert ankle[2] < knee[2] - 0.2  # myo28 +Z is forward


def test_humanoid_feet_reach_the_toe_tips():
    """Each sole runs from behind the heel to the toe tips, about 15% of stature (de Leva's foot
    length), so a foot pitched toes-down at push-off pivots on its toes and the ball of the foot
    (the myo28 toe joint) rises off the floor, as a real foot's does: 3.8 cm above where it stands
    on a flat sole at 30 degrees, where a sole ending just past the ball lifted it 1.8 cm."""
    model = hu.load_model()
    data = _standing_data(model)
    mujoco.mj_kinematics(model, data)
    sole = next(g for g in range(model.ngeom) if model.geom_type[g] == mujoco.mjtGeom.mjGEOM_BOX)
    stature = data.geom_xpos[:, 2].max() + hu.HEAD_RADIUS - (data.geom_xpos[sole, 2] - hu.FOOT_RADIUS)
    assert 0.14 < 2 * model.geom_size[sole, 0] / stature < 0.16
    ankle = hinge("left_ankle_y")
    foot = model.geom_bodyid[sole]
    assert sk.JOINT_NAMES[hu.HINGE_LIST[ankle].joint] == model.body(foot).name
    data.qpos[7 + ankle] = np.radians(30)  # toes down
    mujoco.mj_kinematics(model, data)
    floor = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    lowest = mujoco.mj_geomDistance(model, data, floor, sole, 1.0, None)  # the sole's lowest point (signed)
    ball = data.site_xpos[hu.site_ids(model)[sk.JOINT_INDEX["left_foot"]], 2]
    assert ball - lowest - hu.FOOT_RADIUS > 0.03  # metres risen above a flat sole's ball


def test_pybullet_agrees_with_mujoco_on_floor_contact(walk_reference):
    """The real walk's poses, as they are, sunk 2 cm and lifted 10 cm: both engines measure the same."""
    from myocli.rl.contact_check import floor_contact

    poses = walk_reference.qpos
    as_is = floor_contact(poses)
    np.testing.assert_allclose(as_is.pybullet_mm, as_is.mujoco_mm, atol=0.5)
    assert as_is.summary()["touching_agreement"] > 0.99
    assert (as_is.mujoco_mm < 1.0).any(axis=1).sum() >= 10  # feet on the floor: the touching agreement means something
    sunk = floor_contact(poses - np.r_[0, 0, 0.02, np.zeros(poses.shape[1] - 3)])
    near = as_is.mujoco_mm.min(axis=1) < 25  # frames whose lowest capsule stays within the 50-mm search when sunk
    for engine in ("mujoco_mm", "pybullet_mm"):
        lowest, sunk_lowest = getattr(as_is, engine).min(axis=1), getattr(sunk, engine).min(axis=1)
        np.testing.assert_allclose(sunk_lowest[near], lowest[near] - 20.0, atol=0.5)
    assert sunk.summary()["pybullet_penetration_mm"] > as_is.summary()["pybullet_penetration_mm"] + 3
    lifted = floor_contact(poses + np.r_[0, 0, 0.10, np.zeros(poses.shape[1] - 3)]).summary()
    assert lifted["mujoco_penetration_mm"] == lifted["pybullet_penetration_mm"] == 0
