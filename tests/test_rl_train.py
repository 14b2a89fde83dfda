"""Training a controller (rl/train.py): resuming to the same weights, and the `myo rl` commands and
`myo generate --physics` end to end on a real walk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_clean_failure, myo

from myocli import skeleton as sk
from myocli.rl import humanoid as hu
from myocli.rl.env import TrackingEnv, TrackingOptions
from myocli.rl.policy import Agent, PolicyConfig
from myocli.rl.ppo import PPOConfig, TrainingState, train


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
    from myocli.rl.replay import DEFAULT_PHYSICS_SEARCH, default_physics_search

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
