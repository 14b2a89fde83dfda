"""Replaying a motion under a policy (rl/track.py): what the body was asked to follow, and the search
among copies of the simulation."""

from __future__ import annotations

import numpy as np
import torch
from rl_helpers import short_legged

from myocli.rl import humanoid as hu
from myocli.rl import reference as rf
from myocli.rl.env import TrackingEnv
from myocli.rl.policy import Agent, PolicyConfig


def test_track_reports_the_pose_the_policy_was_asked_to_follow(walk_reference):
    """What a replay asked of the body (the humanoid's pose of the input, `TrackResult.asked`, at the
    input's frame rate) is there to be measured beside the input and the simulation: the pose of a
    walk with a generator's shorter legs skates more than the walk itself (myo28's longer legs
    hang the swing toe lower), so some of a replay's skating is asked for."""
    from myocli.motion.metrics import foot_skating_ratio
    from myocli.rl.track import track

    short = short_legged(walk_reference.positions[::2])
    config = PolicyConfig(observation_dim=TrackingEnv([walk_reference]).single_observation_space.shape[0], action_dim=len(hu.HINGE_LIST))
    result = track(Agent(config).eval(), config, short, 20.0)
    posed = hu.joint_positions(rf.build(short, 20.0).sites)[::2]
    np.testing.assert_allclose(result.asked, posed, atol=1e-9)
    assert foot_skating_ratio(result.asked, 20.0) > foot_skating_ratio(short, 20.0) + 0.02
    assert track(Agent(config).eval(), config, short[::2], 10.0).asked.shape == short[::2].shape


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
