"""The motion-tracking environment (rl/env.py): its reward terms, termination, and copies of its state."""

from __future__ import annotations

import numpy as np
import pytest
from rl_helpers import lowest_foot_point

from myocli import skeleton as sk
from myocli.rl import humanoid as hu
from myocli.rl import reference as rf
from myocli.rl.env import BALLS, FEET, PLANTED_HEIGHT, TrackingEnv, TrackingOptions


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
    step = int(np.argmax(lowest_foot_point(walk_reference) < 0.01))  # a foot on the floor
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
