"""A myo28 motion as the humanoid's reference (rl/reference.py): joint angles that pose the body like
the clip, its feet on the floor, on real clips."""

from __future__ import annotations

import numpy as np
import pytest
from rl_helpers import hinge, lowest_foot_point, short_legged

from myocli import skeleton as sk
from myocli.gl import load_mujoco
from myocli.rl import humanoid as hu
from myocli.rl import reference as rf

mujoco = load_mujoco()


def _pose(model, data, root_position, root_rotation, angles):
    data.qpos[:3] = root_position
    mujoco.mju_mat2Quat(data.qpos[3:7], root_rotation.reshape(-1))
    data.qpos[7:] = angles
    mujoco.mj_kinematics(model, data)
    return hu.joint_positions(data.site_xpos[hu.site_ids(model)])


def test_reference_round_trips_any_pose_the_humanoid_can_take():
    """Hinge angles -> simulated joint positions -> the reference solver -> the same positions,
    and the same angles wherever positions determine them (legs, arms; not the neck's twist
    or how the trunk's twist splits between spine1 and spine3)."""
    model, rng = hu.load_model(), np.random.default_rng(0)
    low = np.array([h.low for h in hu.HINGE_LIST])
    high = np.array([h.high for h in hu.HINGE_LIST])
    angles = np.clip(rng.normal(0.0, 0.35, (6, model.nu)), low + 0.05, high - 0.05)
    for j in hu.MOVING_JOINTS:  # knees and elbows well bent, so their bending plane is defined
        columns = [i for i, h in enumerate(hu.HINGE_LIST) if h.joint == j]
        if len(columns) == 1:
            angles[:, columns[0]] = np.sign(low[columns[0]] + high[columns[0]]) * rng.uniform(0.5, 1.2, 6)
    angles[:, hinge("spine1_z")] = 0.0  # the solver gives trunk twist to spine3
    data = mujoco.MjData(model)
    positions = np.stack([_pose(model, data, [0, 0, 1.0], np.eye(3), row) for row in angles])
    roots, rotations, solved = rf.hinge_targets(positions)
    again = np.stack([_pose(model, data, *frame) for frame in zip(roots, rotations, solved, strict=True)])
    np.testing.assert_allclose(again, positions, atol=1e-6)
    limbs = [i for i, h in enumerate(hu.HINGE_LIST) if "spine" not in h.name and "neck" not in h.name]
    np.testing.assert_allclose(solved[:, limbs], angles[:, limbs], atol=1e-6)


def test_reference_of_a_real_walk_poses_the_humanoid_close_to_the_clip(walk_reference):
    error = np.linalg.norm(hu.joint_positions(walk_reference.sites) - walk_reference.positions, axis=-1)
    assert error.mean() < 0.045  # rigid spine2, collars and wrists, joint ranges
    feet = hu.joint_positions(walk_reference.sites)[:, list(sk.FOOT_CONTACT_JOINTS), 1]
    assert feet.min() > -0.01  # the simulated feet do not start in the floor
    assert walk_reference.qpos.shape == (len(walk_reference), 7 + len(hu.HINGE_LIST))


def test_reference_of_short_legs_keeps_the_feet_on_the_floor(walk_reference):
    """A generator's decoded motion has legs centimetres shorter than myo28's. Hung from the clip's
    hips, the humanoid's longer legs would reach 5 cm into the floor, and the contact would throw the
    body up at the first step; the reference raises the root so its feet are as high as the clip's."""
    short = short_legged(walk_reference.positions[::2])  # back to 20 fps
    reference = rf.build(short, 20.0, "short legs")
    posed = lowest_foot_point(reference)
    assert np.abs(posed - lowest_foot_point(walk_reference)).mean() < 0.005 and posed.min() > -0.02
    # Hung from the clip's hips, the humanoid's feet would reach below the clip's by the legs' missing length.
    unraised = posed - (reference.qpos[:, 2] - rf.hinge_targets(reference.positions)[0][:, 2])
    assert (unraised - reference.positions[:, list(sk.FOOT_CONTACT_JOINTS), 1].min(1)).mean() < -0.04


def test_reference_stands_a_drifting_or_hovering_clip_on_the_floor_but_keeps_a_jump(walk_reference):
    """The CMU walk's floor rises 5 cm over its 2.8 s and a generated walk's stance foot hovers 1-4 cm
    up; a simulated foot needs the floor under it, so the reference stands the lowest foot point on
    it. A jump's flight is not a hover and keeps its height."""
    clip = walk_reference.positions[::2]
    lowest = clip[:, list(sk.FOOT_CONTACT_JOINTS), 1].min(1)
    assert lowest[:5].mean() < 0.01 and lowest[-10:].mean() > 0.04  # the capture's floor drifts up
    on_floor = lowest_foot_point(walk_reference)
    assert np.abs(on_floor).mean() < 0.015 and np.abs(on_floor[-20:]).mean() < 0.01
    hovering = clip + [0.0, 0.03, 0.0]
    assert np.abs(lowest_foot_point(rf.build(hovering, 20.0)) - on_floor).max() < 1e-3
    hop = clip.copy()
    hop[20:28, :, 1] += 0.15  # 0.4 s off the floor
    in_flight = lowest_foot_point(rf.build(hop, 20.0))[2 * 22 : 2 * 26]
    assert in_flight.min() > 0.12


def test_reference_refuses_nan():
    motion = sk.rest_pose()[None].repeat(5, 0)
    motion[2, 3, 1] = np.nan
    with pytest.raises(Exception, match="NaN"):
        rf.build(motion, 20.0, "bad")
