"""The simulated humanoid, the tracking environment, PPO's pieces and the `myo rl` commands, on real clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_clean_failure, myo

from myocli import skeleton as sk
from myocli.gl import load_mujoco
from myocli.rl import humanoid as hu
from myocli.rl import reference as rf
from myocli.rl.env import BALLS, FEET, PLANTED_HEIGHT, TrackingEnv, TrackingOptions
from myocli.rl.policy import Agent, PolicyConfig
from myocli.rl.ppo import PPOConfig, TrainingState, compute_gae, ppo_losses, train

mujoco = load_mujoco()


@pytest.fixture(scope="module")
def walk_reference(cmu_walk_h5):
    from myocli.data.h5 import read_dataset

    sequence = read_dataset(cmu_walk_h5)[0]
    return rf.build(sequence.motion, 20.0, sequence.name)


def _standing_data(model):
    data = mujoco.MjData(model)
    data.qpos[:3] = hu.to_mujoco(sk.rest_pose()[0])
    data.qpos[2] += hu.FOOT_RADIUS
    data.qpos[3] = 1.0
    return data


def _hinge(name: str) -> int:
    """The column of a hinge (e.g. "left_knee_y") in qpos[7:], ctrl and the policy's actions."""
    return [h.name for h in hu.HINGE_LIST].index(name)


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
    data.qpos[7 + _hinge("left_knee_y")] = 1.0
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
    ankle = _hinge("left_ankle_y")
    foot = model.geom_bodyid[sole]
    assert sk.JOINT_NAMES[hu.HINGE_LIST[ankle].joint] == model.body(foot).name
    data.qpos[7 + ankle] = np.radians(30)  # toes down
    mujoco.mj_kinematics(model, data)
    floor = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_GEOM, "floor")
    lowest = mujoco.mj_geomDistance(model, data, floor, sole, 1.0, None)  # the sole's lowest point (signed)
    ball = data.site_xpos[hu.site_ids(model)[sk.JOINT_INDEX["left_foot"]], 2]
    assert ball - lowest - hu.FOOT_RADIUS > 0.03  # metres risen above a flat sole's ball


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
    angles[:, _hinge("spine1_z")] = 0.0  # the solver gives trunk twist to spine3
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


def _short_legged(clip: np.ndarray) -> np.ndarray:
    """The clip (T, 28, 3) with thigh and shin 7% shorter, 2.8 cm each (a generated walk's: 2.2 and 3.1 cm)."""
    from myocli.motion.floor import on_floor

    bones = clip[:, 1:] - clip[:, sk.PARENTS[1:]]
    lengths = sk.CANONICAL_BONE_LENGTHS.copy()
    legs = [b - 1 for b in (sk.JOINT_INDEX[n] for n in ("left_knee", "right_knee", "left_ankle", "right_ankle"))]
    lengths[legs] *= 0.93
    return on_floor(sk.chain_from_directions(clip[:, 0], bones / np.linalg.norm(bones, axis=-1, keepdims=True), lengths))


def test_reference_of_short_legs_keeps_the_feet_on_the_floor(walk_reference):
    """A generator's decoded motion has legs centimetres shorter than myo28's. Hung from the clip's
    hips, the humanoid's longer legs would reach 5 cm into the floor, and the contact would throw the
    body up at the first step; the reference raises the root so its feet are as high as the clip's."""
    short = _short_legged(walk_reference.positions[::2])  # back to 20 fps
    reference = rf.build(short, 20.0, "short legs")
    posed = _lowest_foot_point(reference)
    assert np.abs(posed - _lowest_foot_point(walk_reference)).mean() < 0.005 and posed.min() > -0.02
    # Hung from the clip's hips, the humanoid's feet would reach below the clip's by the legs' missing length.
    unraised = posed - (reference.qpos[:, 2] - rf.hinge_targets(reference.positions)[0][:, 2])
    assert (unraised - reference.positions[:, list(sk.FOOT_CONTACT_JOINTS), 1].min(1)).mean() < -0.04


def test_track_reports_the_pose_the_policy_was_asked_to_follow(walk_reference):
    """What a replay asked of the body (the humanoid's pose of the input, `TrackResult.asked`, at the
    input's frame rate) is there to be measured beside the input and the simulation: the pose of a
    walk with a generator's shorter legs skates more than the walk itself (myo28's longer legs
    hang the swing toe lower), so some of a replay's skating is asked for."""
    from myocli.motion.metrics import foot_skating_ratio
    from myocli.rl.track import track

    short = _short_legged(walk_reference.positions[::2])
    config = PolicyConfig(observation_dim=TrackingEnv([walk_reference]).single_observation_space.shape[0], action_dim=len(hu.HINGE_LIST))
    result = track(Agent(config).eval(), config, short, 20.0)
    posed = hu.joint_positions(rf.build(short, 20.0).sites)[::2]
    np.testing.assert_allclose(result.asked, posed, atol=1e-9)
    assert foot_skating_ratio(result.asked, 20.0) > foot_skating_ratio(short, 20.0) + 0.02
    assert track(Agent(config).eval(), config, short[::2], 10.0).asked.shape == short[::2].shape


def _lowest_foot_point(reference) -> np.ndarray:
    """Height (T,) of the humanoid's lowest heel or ball in its pose of the reference, feet on the joint line."""
    return hu.joint_positions(reference.sites)[:, list(sk.FOOT_CONTACT_JOINTS), 1].min(1)


def test_reference_stands_a_drifting_or_hovering_clip_on_the_floor_but_keeps_a_jump(walk_reference):
    """The CMU walk's floor rises 5 cm over its 2.8 s and a generated walk's stance foot hovers 1-4 cm
    up; a simulated foot needs the floor under it, so the reference stands the lowest foot point on
    it. A jump's flight is not a hover and keeps its height."""
    clip = walk_reference.positions[::2]
    lowest = clip[:, list(sk.FOOT_CONTACT_JOINTS), 1].min(1)
    assert lowest[:5].mean() < 0.01 and lowest[-10:].mean() > 0.04  # the capture's floor drifts up
    on_floor = _lowest_foot_point(walk_reference)
    assert np.abs(on_floor).mean() < 0.015 and np.abs(on_floor[-20:]).mean() < 0.01
    hovering = clip + [0.0, 0.03, 0.0]
    assert np.abs(_lowest_foot_point(rf.build(hovering, 20.0)) - on_floor).max() < 1e-3
    hop = clip.copy()
    hop[20:28, :, 1] += 0.15  # 0.4 s off the floor
    in_flight = _lowest_foot_point(rf.build(hop, 20.0))[2 * 22 : 2 * 26]
    assert in_flight.min() > 0.12


def test_reference_refuses_nan():
    motion = sk.rest_pose()[None].repeat(5, 0)
    motion[2, 3, 1] = np.nan
    with pytest.raises(Exception, match="NaN"):
        rf.build(motion, 20.0, "bad")


def test_tracking_env_rewards_errors_terminates_and_restores(walk_reference):
    env = TrackingEnv([walk_reference], num_envs=3, seed=0)
    observation, _ = env.reset(seed=0)
    assert observation.shape == (3, env.single_observation_space.shape[0]) and np.isfinite(observation).all()
    assert len(set(env.step_index.tolist())) > 1  # random start frames

    _, reward, terminated, truncated, info = env.step(np.zeros((3, env.num_hinges)))
    assert info["joint_error"].shape == (3, sk.NUM_JOINTS)
    assert np.all((reward > 0.3) & (reward <= 1.0))  # near the reference: most of every term
    assert not terminated.any()

    saved = env.get_state()
    actions = np.random.default_rng(1).uniform(-1, 1, (3, env.num_hinges))
    first = env.step(actions)
    env.set_state(saved)
    second = env.step(actions)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])

    # Driving every joint to the end of its range throws the body off the reference: episodes end.
    env.start_at(0, 0)
    ended = np.zeros(3, dtype=bool)
    for _ in range(40):
        _, _, terminated, truncated, info = env.step(np.ones((3, env.num_hinges)))
        ended |= terminated
        if terminated.any():
            assert info["final_obs"].shape == observation.shape and info["_final_obs"][terminated].all()
    assert ended.all()


def test_copy_state_sends_every_copy_on_from_one(walk_reference):
    """A search around a policy goes on from the copy it kept: after `copy_state(k)` every copy is in
    copy k's state and, given the same actions, moves as it does."""
    env = TrackingEnv([walk_reference], num_envs=3, options=TrackingOptions(follow_root=True, random_start=False, autoreset=False))
    env.start_at(0, 10)
    actions = np.random.default_rng(0).uniform(-0.5, 0.5, (3, env.num_hinges))
    for _ in range(3):  # the copies part ways
        env.step(actions)
    assert not np.allclose(env.datas[0].qpos, env.datas[2].qpos)
    kept = env.datas[2].qpos.copy(), env.datas[2].qvel.copy(), env.root_offset[2].copy()
    env.copy_state(2)
    for data in env.datas:
        np.testing.assert_array_equal(data.qpos, kept[0])
        np.testing.assert_array_equal(data.qvel, kept[1])
    np.testing.assert_array_equal(env.root_offset, np.repeat(kept[2][None], 3, axis=0))
    observation, reward, *_ = env.step(np.repeat(actions[:1], 3, axis=0))
    assert (observation == observation[0]).all() and (reward == reward[0]).all()


def test_track_search_chooses_among_copies_and_keeps_the_simulation_whole(walk_reference):
    """`track(search=N)`: without noise every copy does what the policy alone does, so the search
    gives the policy's own replay step for step (the copying and stitching lose nothing); with the
    policy's noise it gives another motion, the same one for the same seed."""
    from myocli.rl.track import track

    walk = walk_reference.positions[::2]
    config = PolicyConfig(observation_dim=TrackingEnv([walk_reference]).single_observation_space.shape[0], action_dim=len(hu.HINGE_LIST),
                          follow_root=True, init_log_std=np.log(0.2))  # fmt: skip
    torch.manual_seed(0)
    agent = Agent(config).eval()
    alone = track(agent, config, walk, 20.0)
    searched = track(agent, config, walk, 20.0, search=4, seed=3)
    again = track(agent, config, walk, 20.0, search=4, seed=3)
    np.testing.assert_array_equal(searched.positions, again.positions)
    assert searched.positions.shape != alone.positions.shape or not np.allclose(searched.positions, alone.positions)
    with torch.no_grad():
        agent.actor_logstd.fill_(-np.inf)  # no noise: every copy is the policy alone
    still = track(agent, config, walk, 20.0, search=4, seed=3)
    # (to a micrometre: the policy's float32 layers round a batch of four a little differently from one)
    np.testing.assert_allclose(still.positions, alone.positions, rtol=0, atol=1e-6)
    np.testing.assert_allclose(still.qpos, alone.qpos, rtol=0, atol=1e-6)
    assert still.fell_at == alone.fell_at and alone.fell_at is not None  # (an untrained policy strays: the stop is stitched too)


def test_following_the_root_lets_the_body_fall_behind_a_sliding_clip(walk_reference):
    """A generated walk's feet may slide, so its root runs away from a body whose planted feet hold.
    Tracked in place, the body counts as strayed; with follow_root the reference slides along with
    the body, and only the pose, heading, height and speed are asked for."""
    clip = walk_reference.positions[::2]
    slide = np.maximum(np.arange(len(clip)) - 3, 0) / 20.0 * 1.5  # sideways at 1.5 m/s from the fourth frame
    reference = rf.build(clip + slide[:, None, None] * [1.0, 0.0, 0.0], 20.0, "sliding")
    for follow in (False, True):
        env = TrackingEnv([reference], 1, TrackingOptions(random_start=False, autoreset=False, follow_root=follow))
        env.start_at(0, 0)
        ended = [env.step(np.zeros((1, env.num_hinges)))[2][0] for _ in range(20)]  # 0.5 s
        assert any(ended) != follow
        if follow:  # the reference now stands where the body does
            root = env._reference(np.array([0]), 0, "qpos")[0][0, :2]
            np.testing.assert_allclose(root, env.datas[0].qpos[:2], atol=1e-9)


def test_feet_reward_asks_for_foot_heights_and_still_planted_feet(walk_reference):
    env = TrackingEnv([walk_reference], 1, TrackingOptions(random_start=False, autoreset=False, feet_weight=0.3))
    step = int(np.argmax(_lowest_foot_point(walk_reference) < 0.01))  # a foot on the floor
    env.start_at(0, step)  # the body exactly in the reference's pose, still
    one = np.array([0])

    def feet_term(shift_feet=(0.0, 0.0, 0.0)):
        bodies = env._bodies(one)
        bodies["sites"][:, FEET] += shift_feet
        env.previous_feet[:] = env.datas[0].site_xpos[env.site_ids[FEET]]
        return env._reward(one, bodies)[1]["feet"][0]

    assert feet_term() == pytest.approx(1.0)
    assert feet_term((0.0, 0.0, 0.02)) < 0.7  # every foot point 2 cm too high
    # 1 cm in one 25-ms step is 0.4 m/s: penalised where the reference's foot is on the floor...
    planted = walk_reference.sites[step, FEET, 2] - hu.FOOT_RADIUS < PLANTED_HEIGHT
    assert 0 < planted.sum() < len(FEET)
    assert feet_term(np.where(planted[:, None], [0.01, 0.0, 0.0], 0.0)) < 0.5
    # ...and where the body carries its swing foot below 5 cm (foot skating's height), not above it.
    swing_height = env.datas[0].site_xpos[env.site_ids[FEET], 2] - hu.FOOT_RADIUS

    def swing_at(height, slide):
        shift = np.zeros((len(FEET), 3))
        shift[~planted, 0], shift[~planted, 2] = slide, height - swing_height[~planted]
        return feet_term(shift)

    assert swing_at(0.02, 0.01) < 0.5 * swing_at(0.02, 0.0)
    assert swing_at(0.10, 0.01) == pytest.approx(swing_at(0.10, 0.0))


def test_skating_penalty_costs_a_low_fast_ball_of_the_foot_by_its_excess_speed(walk_reference):
    """The penalty is the skating ratio's event made smooth: a ball of the foot below 5 cm moving
    faster than 0.5 m/s costs its speed above that, linearly; high or slow balls cost nothing."""
    from myocli.motion import metrics

    env = TrackingEnv([walk_reference], 1, TrackingOptions(random_start=False, autoreset=False, skate_weight=2.0))
    env.start_at(0, 20)
    one = np.array([0])
    balls = np.array(FEET)[BALLS]

    def step_with_balls_at(height, speed):
        """Reward, cost and the myo28 motion of two frames, both balls at `height` (joint line) moving `speed` m/s."""
        bodies = env._bodies(one)
        bodies["sites"][0, balls, 2] = height + hu.FOOT_RADIUS
        before = bodies["sites"][0].copy()
        before[balls, 0] -= speed * env.dt
        env.previous_feet[0] = before[FEET]
        reward, terms, _ = env._reward(one, bodies)
        frames = hu.joint_positions(np.stack([before, bodies["sites"][0]]))
        return reward[0], terms["skate"][0], frames

    _, cost, frames = step_with_balls_at(0.01, 1.5)
    assert cost == pytest.approx(2 * (1.5 - 0.5), rel=1e-3)  # two balls, 1 m/s above the limit each
    assert metrics.skating_toes(frames, 1 / env.dt).all()  # the ratio counts the same step
    for height, speed in ((0.10, 1.5), (0.01, 0.4)):
        _, cost, frames = step_with_balls_at(height, speed)
        assert cost == pytest.approx(0.0, abs=1e-4) and not metrics.skating_toes(frames, 1 / env.dt).any()
    # Linear in speed (no saturation), and the reward falls by the weight times the cost.
    slower, faster = step_with_balls_at(0.01, 2.0), step_with_balls_at(0.01, 2.5)
    assert faster[1] - slower[1] == pytest.approx(2 * 0.5, rel=1e-3)
    assert slower[0] - faster[0] == pytest.approx(2.0 * (faster[1] - slower[1]), rel=1e-3)


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


def test_gae_matches_its_definition():
    rng = np.random.default_rng(0)
    rewards, values = torch.tensor(rng.normal(size=(5, 2)), dtype=torch.float32), torch.tensor(rng.normal(size=(5, 2)), dtype=torch.float32)
    dones = torch.zeros(5, 2)
    dones[3, 1] = 1.0  # the observation at step 3 of copy 1 began a new episode
    next_value, next_done = torch.tensor([0.5, -0.2]), torch.zeros(2)
    gamma = 0.9
    # lambda = 0: one-step TD errors.
    advantages, returns = compute_gae(rewards, values, dones, next_value, next_done, gamma, 0.0)
    following = torch.cat([values[1:], next_value[None]])
    nonterminal = 1.0 - torch.cat([dones[1:], next_done[None]])
    np.testing.assert_allclose(advantages, rewards + gamma * following * nonterminal - values, atol=1e-6)
    np.testing.assert_allclose(returns, advantages + values, atol=1e-6)
    # lambda = 1: discounted return to the end of the episode (bootstrapped at the rollout's end) minus the value.
    advantages, _ = compute_gae(rewards, values, dones, next_value, next_done, gamma, 1.0)
    for copy in range(2):
        for t in range(5):
            total, discount, step = 0.0, 1.0, t
            while True:
                total += discount * rewards[step, copy].item()
                discount *= gamma
                step += 1
                if step == 5:
                    total += discount * next_value[copy].item()
                    break
                if dones[step, copy]:
                    break
            assert advantages[t, copy].item() == pytest.approx(total - values[t, copy].item(), abs=1e-5)


def test_ppo_losses_clip_the_ratio_and_the_value():
    config = PPOConfig(norm_adv=False, clip_coef=0.2, ent_coef=0.0, vf_coef=0.5)
    old = torch.zeros(4)
    new = torch.log(torch.tensor([1.0, 1.1, 1.5, 0.5])).requires_grad_()
    advantages = torch.tensor([1.0, 1.0, 1.0, -1.0])
    value, old_value, returns = torch.tensor([1.0, 2.0, 0.0, 0.0], requires_grad=True), torch.zeros(4), torch.tensor([1.0, 1.0, 0.0, 0.0])
    losses = ppo_losses(new, old, advantages, value, old_value, returns, torch.zeros(4), config)
    # Ratios 1.5 (advantage +) and 0.5 (advantage -) are clipped: they add a constant and no gradient.
    assert losses["policy_loss"].item() == pytest.approx(-(1.0 + 1.1 + 1.2 - 0.8) / 4)
    assert losses["clip_fraction"].item() == pytest.approx(0.5)
    losses["loss"].backward()
    assert new.grad[2] == 0 and new.grad[3] == 0 and new.grad[0] != 0
    # Value 2.0 against old 0.0 is clipped to 0.2: the larger of the two errors counts.
    expected_value = 0.5 * np.mean([max((1.0 - 1) ** 2, (0.2 - 1) ** 2), max((2.0 - 1) ** 2, (0.2 - 1) ** 2), 0.0, 0.0])
    assert losses["value_loss"].item() == pytest.approx(expected_value)


@pytest.mark.parametrize("env_name", ["tracking", "humanoid-v5"])
def test_ppo_resumes_to_the_same_weights(env_name, walk_reference, tmp_path):
    """Train, save the state, go on; load the state into fresh objects, go on: the same policy,
    and the episodes in progress at the save go on rather than restart (their returns match)."""
    from myocli.rl.gym_humanoid import HumanoidEnvs
    from myocli.rl.ppo import ReturnScaler
    from myocli.rl.train import load_state, save_state

    # Humanoid-v5 with CleanRL's reward scaling: its running statistics are saved too.
    config = PPOConfig(total_steps=4 * 64, num_envs=2, num_steps=32, num_minibatches=2, update_epochs=2,
                       normalize_reward=env_name == "humanoid-v5")  # fmt: skip

    def fresh():
        torch.manual_seed(0)
        np.random.seed(0)
        env = TrackingEnv([walk_reference], 2, TrackingOptions(), seed=0) if env_name == "tracking" else HumanoidEnvs(2)
        agent = Agent(PolicyConfig(observation_dim=env.single_observation_space.shape[0], action_dim=env.single_action_space.shape[0]))
        return env, TrainingState(agent, torch.optim.Adam(agent.parameters(), lr=3e-4, eps=1e-5))

    env, state = fresh()
    # Save at the first iteration (of 4) with every copy's episode in progress, so resuming must carry them on.
    train(env, state, config, lambda *_: None, lambda: state.iteration >= 3 or (state.iteration >= 1 and state.episode_lengths.min() > 0))
    saved_at = state.iteration
    assert state.episode_lengths.min() > 0 and saved_at < 4  # episodes in progress, and iterations left to run
    save_state(tmp_path / "state", state, env)
    train(env, state, config, lambda *_: None)
    straight = {k: v.clone() for k, v in state.agent.state_dict().items()}
    straight_recent, straight_lengths = list(state.recent), state.episode_lengths.copy()

    env, state = fresh()
    state.reward_scaler = ReturnScaler(2, config.gamma) if config.normalize_reward else None
    load_state(tmp_path / "state", state, env)
    assert state.iteration == saved_at
    train(env, state, config, lambda *_: None)
    for key, value in state.agent.state_dict().items():
        torch.testing.assert_close(value, straight[key], rtol=0, atol=0)
    assert state.recent == straight_recent and np.array_equal(state.episode_lengths, straight_lengths)


@pytest.fixture(scope="module")
def policy_home(cmu_walk_h5, tmp_path_factory) -> dict:
    """A registry holding rl/t, trained for two PPO iterations on the walk."""
    home = {"MYO_HOME": str(tmp_path_factory.mktemp("home"))}
    result = myo("rl", "train", "--data", str(cmu_walk_h5), "--name", "t", "--debug", "--json", env=home)
    assert result.returncode == 0, result.stderr
    return home | {"summary": result.stdout}


def test_rl_train_and_eval(cmu_walk_h5, policy_home, tmp_path):
    home = {"MYO_HOME": policy_home["MYO_HOME"]}
    summary = json.loads(policy_home["summary"])
    assert summary["checkpoint"] == "rl/t@1" and summary["steps"] > 0
    clip = summary["metrics"]["tracking"]["clips"]["02_01"]
    assert 0 < clip["tracked_fraction"] <= 1 and len(clip["joint_error_mm"]) == sk.NUM_JOINTS
    assert (Path(summary["path"]) / "logs").is_dir()  # TensorBoard

    result = myo("rl", "eval", "rl/t", "--motion", f"{cmu_walk_h5}:0", "--json", "-o", str(tmp_path / "sim.npy"), env=home)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    simulated = np.load(tmp_path / "sim.npy")
    assert simulated.shape[1:] == (sk.NUM_JOINTS, 3) and np.isfinite(simulated).all()
    assert report["mean_joint_error_mm"] > 0 and report["seconds"] == pytest.approx(56 / 20, abs=0.1)
    # (each figure is rounded for the report: compare to the rounding)
    assert report["tracked_fraction"] == pytest.approx(1.0 if report["fell_at_seconds"] is None else report["fell_at_seconds"] / report["seconds"], abs=1e-3)
    contact = report["floor_contact"]  # the simulated body's shapes, by MuJoCo and by PyBullet
    assert contact["mujoco_penetration_mm"] == pytest.approx(contact["pybullet_penetration_mm"], abs=0.5)
    assert contact["touching_agreement"] > 0.95
    # --search: copies tried around the policy every 0.1 s, the choice recorded with the figures
    searched = myo("rl", "eval", "rl/t", "--motion", f"{cmu_walk_h5}:0", "--json", "--search", "3", env=home)
    assert searched.returncode == 0, searched.stderr
    assert report["search"] == 1 and json.loads(searched.stdout)["search"] == 3


@pytest.mark.slow  # 20-50 s of training on two cores: in CI's second step
def test_rl_train_from_another_policy(cmu_walk_h5, policy_home):
    from safetensors.torch import load_file

    home = {"MYO_HOME": policy_home["MYO_HOME"]}
    result = myo("rl", "train", "--data", str(cmu_walk_h5), "--name", "wider", "--init", "rl/t", "--config", "generated", "--debug", "--keep-state",
                 "--json", env=home)  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary, start = json.loads(result.stdout), json.loads(policy_home["summary"])
    # The preset for generated motions is saved with the policy, and a replay uses it.
    config = json.loads((Path(summary["path"]) / "config.json").read_text())
    assert config["follow_root"] is True and config["feet_weight"] > 0 and config["skate_weight"] > 0
    replay = myo("rl", "eval", "rl/wider", "--motion", f"{cmu_walk_h5}:0", "--json", env=home)
    assert replay.returncode == 0 and json.loads(replay.stdout)["reference_followed_root"] is True, replay.stderr
    manifest = json.loads((Path(summary["path"]) / "manifest.json").read_text())
    assert manifest["parents"][0]["name"] == "rl/t@1"
    # The observation statistics went on from rl/t's: its count plus this run's observations.
    before = load_file(Path(start["path"]) / "model.safetensors")["obs_rms.count"]
    after = load_file(Path(summary["path"]) / "model.safetensors")["obs_rms.count"]
    assert float(after) == pytest.approx(float(before) + summary["steps"], abs=1)
    assert_clean_failure(myo("rl", "train", "--env", "humanoid-v5", "--name", "h", "--init", "rl/t", env=home), "--init", "tracking")
    # --resume goes on with the command that started the run; another --init is refused by name.
    other_start = myo("rl", "train", "--data", str(cmu_walk_h5), "--name", "wider", "--init", "rl/wider", "--resume", "--debug", env=home)
    assert_clean_failure(other_start, "--resume continues a run with its own settings", "rl/wider@1", "init")
    resumed = myo("rl", "train", "--data", str(cmu_walk_h5), "--name", "wider", "--init", "rl/t", "--config", "generated", "--debug", "--resume",
                  "--json", env=home)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["checkpoint"] == "rl/wider@2"
    # ...and a larger --total-steps trains a kept run on to that count.
    longer = myo("rl", "train", "--data", str(cmu_walk_h5), "--name", "wider", "--total-steps", str(3 * summary["steps"]), "--debug", "--resume", "--json",
                  env=home)  # fmt: skip
    assert longer.returncode == 0, longer.stderr
    assert json.loads(longer.stdout)["steps"] == 3 * summary["steps"]
    assert_clean_failure(myo("rl", "train", "--data", str(cmu_walk_h5), "--name", "m", "--init", "rl/missing", env=home), "rl/missing")
    assert not (Path(home["MYO_HOME"]) / "rl" / "h").exists() and not (Path(home["MYO_HOME"]) / "rl" / "m").exists()


def test_rl_train_fine_tunes_a_policy_of_another_build_of_the_humanoid(cmu_walk_h5, policy_home, monkeypatch):
    """A changed body (contact, masses) refuses old policies for replay, but --init may start from them;
    one that moves other hinges is refused."""
    from myocli import registry

    home = {"MYO_HOME": policy_home["MYO_HOME"]}
    monkeypatch.setenv("MYO_HOME", home["MYO_HOME"])
    _, values, tensors, _ = registry.load("rl/t", "rl", "ppo-policy")
    registry.save(registry.new_version("rl", "older"), values | {"humanoid_sha256": "0" * 64}, tensors)
    assert_clean_failure(myo("rl", "eval", "rl/older", "--motion", f"{cmu_walk_h5}:0", env=home), "rl/older", "another humanoid")
    result = myo("rl", "train", "--data", str(cmu_walk_h5), "--name", "newer", "--init", "rl/older", "--debug", "--json", env=home)
    assert result.returncode == 0, result.stderr
    assert "rl/older@1 was trained for another build of the humanoid" in result.stderr
    manifest = json.loads((Path(json.loads(result.stdout)["path"]) / "manifest.json").read_text())
    assert manifest["parents"][0]["name"] == "rl/older@1" and manifest["parents"][0]["other_humanoid"] is True
    assert manifest["config"]["humanoid_sha256"] == hu.fingerprint()
    fewer = values | {"humanoid_sha256": "0" * 64, "action_dim": 30}
    registry.save(registry.new_version("rl", "fewer"), fewer, Agent(PolicyConfig.from_dict(fewer)).state_dict())
    assert_clean_failure(myo("rl", "train", "--data", str(cmu_walk_h5), "--name", "f", "--init", "rl/fewer", env=home), "rl/fewer@1", "30 hinges")
    assert not (Path(home["MYO_HOME"]) / "rl" / "f").exists()


def test_rl_bad_inputs(cmu_walk_h5, policy_home, tmp_path, monkeypatch):
    home = {"MYO_HOME": policy_home["MYO_HOME"]}
    assert_clean_failure(myo("rl", "train", "--data", str(cmu_walk_h5), "--clip", "nope", "--name", "u", env=home), "'nope'", "02_01")
    # --resume reruns the run's own command: without its --data it is told so
    assert_clean_failure(myo("rl", "train", "--name", "t", "--resume", env=home), "--data", "--resume")
    negative = tmp_path / "negative.yaml"
    negative.write_text("model:\n  feet_weight: -1\n")
    assert_clean_failure(myo("rl", "train", "--data", str(cmu_walk_h5), "--config", str(negative), "--name", "u", env=home), "feet_weight")
    negative.write_text("model:\n  skate_weight: -1\n")
    assert_clean_failure(myo("rl", "train", "--data", str(cmu_walk_h5), "--config", str(negative), "--name", "u", env=home), "skate_weight")
    assert not (Path(home["MYO_HOME"]) / "rl" / "u").exists()
    bad = tmp_path / "nan.npy"
    motion = np.repeat(sk.rest_pose()[None], 10, 0).astype(np.float32)
    motion[4, 2, 0] = np.nan
    np.save(bad, motion)
    assert_clean_failure(myo("rl", "eval", "rl/t", "--motion", str(bad), "-o", str(tmp_path / "out.npy"), env=home), "NaN")
    assert not (tmp_path / "out.npy").exists()
    no_copies = myo("rl", "eval", "rl/t", "--motion", f"{cmu_walk_h5}:0", "--search", "0", "-o", str(tmp_path / "out.npy"), env=home)
    assert no_copies.returncode == 2 and "--search" in no_copies.stderr and not (tmp_path / "out.npy").exists()  # a usage error

    # A policy made for another skeleton is refused by name.
    from myocli import registry

    monkeypatch.setenv("MYO_HOME", home["MYO_HOME"])
    other = registry.new_version("rl", "other")
    config = PolicyConfig(skeleton="smpl22", observation_dim=3, action_dim=2).to_dict()
    registry.save(other, config, Agent(PolicyConfig(observation_dim=3, action_dim=2)).state_dict())
    assert_clean_failure(myo("rl", "eval", "rl/other", "--motion", f"{cmu_walk_h5}:0", env=home), "smpl22")


def test_generate_physics_writes_the_simulated_motion_beside(cmu_walk_h5, policy_home, tmp_path):
    home = {"MYO_HOME": policy_home["MYO_HOME"]}
    result = myo("ssm", "train", "--data", str(cmu_walk_h5), "--name", "g", "--debug", env=home)
    assert result.returncode == 0, result.stderr
    stem = tmp_path / "walks"
    result = myo("generate", "a person walks", "--model", "ssm/g", "--seconds", "2", "--physics", "rl/t", "-o", str(stem), "--json", env=home)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)["samples"][0]
    kinematic, simulated = np.load(f"{stem}_0.npy"), np.load(f"{stem}_0_physics.npy")
    assert record["physics_npy"] == f"{stem}_0_physics.npy" and simulated.shape[1:] == (sk.NUM_JOINTS, 3)
    assert 1 <= len(simulated) <= len(kinematic)
    physics = record["physics"]
    assert physics["policy"] == "rl/t@1" and physics["penetration_mm_simulated"] >= 0
    # rl/t has no skating penalty in its reward, so it replays alone unless told to search
    from myocli.cli.generate import DEFAULT_PHYSICS_SEARCH, default_physics_search

    assert physics["search"] == 1 and default_physics_search(PolicyConfig(skate_weight=1.0)) == DEFAULT_PHYSICS_SEARCH
    # The simulated body cannot sink into the floor the way a kinematic motion can.
    assert physics["penetration_mm_simulated"] < 10
    assert 0 <= physics["floor_contact_simulated"]["mujoco_penetration_mm"] < 30
    # A missing policy fails before anything is generated.
    result = myo("generate", "a person walks", "--model", "ssm/g", "--physics", "rl/missing", "-o", str(tmp_path / "x"), env=home)
    assert_clean_failure(result, "rl/missing")
    assert not list(tmp_path.glob("x_*"))
    searched = myo("generate", "a person walks", "--model", "ssm/g", "--seconds", "1", "--physics", "rl/t", "--physics-search", "3", "-o",
                   str(tmp_path / "s"), "--json", env=home)  # fmt: skip
    assert searched.returncode == 0 and json.loads(searched.stdout)["samples"][0]["physics"]["search"] == 3, searched.stderr
    # The search's size without a replay to search is a slip: said so before anything is generated.
    lone = myo("generate", "a person walks", "--model", "ssm/g", "--physics-search", "4", "-o", str(tmp_path / "y"), env=home)
    assert lone.returncode == 2 and "--physics rl/NAME" in lone.stderr and not list(tmp_path.glob("y_*"))
