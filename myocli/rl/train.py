"""Train a PPO controller (`myo rl train`) and register it as rl/NAME.

Two environments share the learner (rl/ppo.py, training the policy of rl/policy.py):
- tracking: the myo28 humanoid following clips of a dataset (rl/env.py), the real job;
- humanoid-v5: Gymnasium's standard Humanoid, to compare the learner with published PPO.

The run's home, run.json and the resume checks are the shared ones (train/runs.py). The
training state (policy, optimizer, counters, random generators and, for tracking, every
simulated copy's physics state) is saved every --save-every iterations and on Ctrl-C or
SIGTERM, so `--resume` continues the same run. The Accelerator (train/accelerator.py)
picks the device and writes TensorBoard logs; one process steps all environment copies
(simulation on the CPU is the cost, so the way to scale is --num-envs, not --gpus).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from myocli import registry
from myocli.errors import MyoError
from myocli.train import runs

KIND = "rl"
ENVS = ("tracking", "humanoid-v5")
DEBUG_STEPS = 2
MAX_EVAL_CLIPS = 8


@dataclass
class RLRun:
    name: str
    data: Path | None = None
    clips: list[str] = field(default_factory=list)
    env: str = "tracking"
    config: str | None = None  # default: the preset named after the environment
    init: str | None = None  # a tracking policy to start from (rl/NAME), instead of random weights
    train_overrides: dict = field(default_factory=dict)
    max_minutes: float = 0.0
    save_every: int = 20  # iterations
    log_every: int = 1
    resume: bool = False
    keep_state: bool = False
    debug: bool = False


def _settings(run: RLRun, fps: float | None = None) -> dict:
    from myocli.config import load_config
    from myocli.rl.policy import PolicyConfig
    from myocli.rl.ppo import PPOConfig

    config, source = load_config(KIND, run.config or run.env)
    try:
        model = PolicyConfig.from_dict(config["model"] | {"env": run.env})
        train = PPOConfig.from_dict(config["train"] | run.train_overrides)
    except MyoError as exc:
        raise MyoError(f"--config {run.config or run.env}: {exc}") from exc
    for name, value in (("feet_weight", model.feet_weight), ("skate_weight", model.skate_weight)):
        if value < 0:
            raise MyoError(f"--config {run.config or run.env}: {name} {value:g} would reward feet that slide; give 0 (off) or more")
    if train.batch_size % train.num_minibatches:
        raise MyoError(f"--num-envs {train.num_envs} x num_steps {train.num_steps} does not split into {train.num_minibatches} minibatches")
    if run.debug:
        train.total_steps = train.batch_size * DEBUG_STEPS
    settings = {"model": model.to_dict(), "train": train.to_dict(), "env": run.env, "clips": run.clips, "config_source": source}
    if run.init:
        settings["init"] = _init_policy(run, model, fps)[0]
    return settings


def _init_policy(run: RLRun, model, fps: float | None = None) -> tuple[dict, object]:
    """The policy --init names, checked against this run (and the data's frame rate, when
    known): ({name, sha256[, other_humanoid]}, its state dict)."""
    from myocli.rl import humanoid as hu
    from myocli.rl.track import load_policy

    if run.env != "tracking":
        raise MyoError(f"--init applies to the tracking environment; --env {run.env} starts from random weights")
    try:
        # A policy for another build of the humanoid (its contact or masses changed, say) is a fair
        # start for fine-tuning on this one, as long as it moves the same hinges.
        ref, config, agent = load_policy(run.init, other_humanoid=True)
    except MyoError as exc:
        raise MyoError(f"--init {run.init}: {exc}") from exc
    # (the observation size is known once the environment is built: at the start of training)
    if config.action_dim != len(hu.HINGE_LIST) or (model.observation_dim and config.observation_dim != model.observation_dim):
        raise MyoError(f"--init {ref.label} was trained for a humanoid with {config.action_dim} hinges and "
                       f"{config.observation_dim} observations, not this one; train from scratch (leave out --init)")  # fmt: skip
    if config.hidden != model.hidden:
        raise MyoError(f"--init {ref.label}: its network is {config.hidden} wide, this run's config {model.hidden}; "
                       "use the config it was trained with")  # fmt: skip
    if fps is not None and abs(config.fps - fps) > 1e-6:  # the control rate is a multiple of the motion's
        raise MyoError(f"--init {ref.label} acts at {config.fps:g} fps motion but {run.data} is at {fps:g} fps; "
                       f"convert the data with --fps {config.fps:g}")  # fmt: skip
    sha = registry.read_manifest(ref.path)["files"][registry.WEIGHTS]["sha256"]
    record = {"name": ref.label, "sha256": sha} | ({"other_humanoid": True} if config.humanoid_sha256 != hu.fingerprint() else {})
    return record, agent.state_dict()


def load_references(data: Path, clips: list[str], fps: float | None = None):
    """The references of the chosen clips (every clip when none is named) of a myo28 dataset."""
    from myocli.data.h5 import read_dataset
    from myocli.rl import reference as rf

    runs.require_file("--data", data)
    dataset = read_dataset(data)  # checks shapes, NaN/Inf and lengths, naming the bad sequence
    chosen = [dataset.named(clip, data, "--clip") for clip in clips] if clips else dataset.sequences
    chosen = [s for s in chosen if len(s) >= 2]
    if not chosen:
        raise MyoError(f"{data}: no sequence with at least 2 frames to track")
    return [rf.build(s.motion, fps or dataset.fps, s.name) for s in chosen], dataset.fps


def preflight(run: RLRun) -> None:
    """Bad input fails here, before a run directory exists."""
    if run.env not in ENVS:
        raise MyoError(f"--env {run.env!r}: choose one of {', '.join(ENVS)}")
    if run.env == "tracking" and run.data is None:
        again = "; --resume goes on with the command that started the run, so give its --data and --clip again" if run.resume else ""
        raise MyoError(f"--data is needed to train a tracking controller (a myo28 .h5 from `myo data convert`){again}")
    if run.env != "tracking" and (run.data is not None or run.clips):
        raise MyoError(f"--env {run.env}: --data and --clip apply to the tracking environment only")
    fps = load_references(run.data, run.clips)[1] if run.data is not None else None
    if run.resume:
        started_from = {"init": runs.started_from("--init", run.init, KIND)} if run.init else {}
        runs.check_resume(KIND, run.name, run.train_overrides, started_from)
    else:
        _settings(run, fps)


def make_envs(settings: dict, references, seed: int):
    """The vector environment of a run."""
    from myocli.rl.env import TrackingEnv, tracking_options
    from myocli.rl.gym_humanoid import HumanoidEnvs

    num_envs = settings["train"]["num_envs"]
    if settings["env"] == "tracking":
        return TrackingEnv(references, num_envs, tracking_options(settings["model"]), seed=seed)
    return HumanoidEnvs(num_envs)


# -- the training state, saved without pickles ----------------------------------------------------


def save_state(state_dir: Path, state, envs) -> None:
    """Into a fresh folder, then swapped in for the old one: a crash never leaves a mix.

    Not the shared loop's state (Accelerate's save_state of model, optimizer and samplers): a PPO run must
    also keep what is in flight between iterations (every simulated copy's physics, the episodes' returns
    so far, the reward scaler), which Accelerate knows nothing of, and it runs in one process without
    Accelerate's data loaders. It shares the loop's swap-in (train/loop.swap_in, recover_swap), its
    signal handling (StopSignals) and its interrupt error (TrainingInterrupted)."""
    import torch
    from safetensors.torch import save_file

    from myocli.train.loop import swap_in

    fresh = state_dir.with_name(state_dir.name + ".saving")
    shutil.rmtree(fresh, ignore_errors=True)
    fresh.mkdir(parents=True)
    tensors = {f"agent.{k}": v.detach().contiguous() for k, v in state.agent.state_dict().items()}
    tensors["torch_rng"] = torch.get_rng_state()
    save_file(tensors, str(fresh / "agent.safetensors"))
    torch.save(state.optimizer.state_dict(), fresh / "optimizer.pt")
    arrays = {"next_obs": state.next_obs, "next_done": state.next_done, "episode_returns": state.episode_returns,
              "episode_lengths": state.episode_lengths}  # fmt: skip
    progress = {"iteration": state.iteration, "global_step": state.global_step, "recent": state.recent,
                "numpy_rng": _jsonable(np.random.get_state())}  # fmt: skip
    if state.reward_scaler is not None:
        arrays["scaler_returns"] = state.reward_scaler.returns
        progress["scaler"] = [float(state.reward_scaler.rms.mean), float(state.reward_scaler.rms.var), float(state.reward_scaler.rms.count)]
    env_state = envs.get_state()  # every environment of a run can be saved
    progress["env_rng"] = env_state.pop("rng")
    arrays |= {f"env.{k}": v for k, v in env_state.items()}
    np.savez(fresh / "arrays.npz", **arrays)
    (fresh / "progress.json").write_text(json.dumps(progress) + "\n")
    swap_in(fresh, state_dir)


def _jsonable(numpy_state: tuple) -> list:
    return [numpy_state[0], numpy_state[1].tolist(), *numpy_state[2:]]


def load_state(state_dir: Path, state, envs) -> None:
    import torch
    from safetensors.torch import load_file

    from myocli.train.loop import recover_swap

    recover_swap(state_dir)
    if not (state_dir / "progress.json").is_file():
        raise MyoError(f"{state_dir}: the saved training state is incomplete and cannot be resumed")
    tensors = load_file(str(state_dir / "agent.safetensors"))
    torch.set_rng_state(tensors.pop("torch_rng"))
    state.agent.load_state_dict({k.removeprefix("agent."): v for k, v in tensors.items()})
    state.optimizer.load_state_dict(torch.load(state_dir / "optimizer.pt", weights_only=True))
    progress = json.loads((state_dir / "progress.json").read_text())
    with np.load(state_dir / "arrays.npz", allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    state.iteration, state.global_step = progress["iteration"], progress["global_step"]
    state.recent = [tuple(r) for r in progress["recent"]]
    name, keys, *rest = progress["numpy_rng"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))
    state.next_obs, state.next_done = arrays["next_obs"], arrays["next_done"]
    state.episode_returns, state.episode_lengths = arrays["episode_returns"], arrays["episode_lengths"]
    if "scaler" in progress:  # the caller made state.reward_scaler
        mean, var, count = progress["scaler"]
        state.reward_scaler.rms.mean.fill_(mean), state.reward_scaler.rms.var.fill_(var), state.reward_scaler.rms.count.fill_(count)
        state.reward_scaler.returns = arrays["scaler_returns"]
    if "env_rng" in progress:
        envs.set_state({k.removeprefix("env."): v for k, v in arrays.items() if k.startswith("env.")} | {"rng": progress["env_rng"]})
    else:  # a Humanoid-v5 state saved by an older myo, without its episodes: start fresh ones
        state.next_obs, _ = envs.reset(seed=progress["iteration"])
        state.next_done = np.zeros(len(state.next_done))
        state.episode_returns[:], state.episode_lengths[:] = 0, 0


# -- the run --------------------------------------------------------------------------------------


def evaluate_clips(agent, policy_config, references) -> dict:
    """Each clip tracked from its first frame with the deterministic policy."""
    from myocli.rl import reference as rf
    from myocli.rl.track import track

    results = {}
    for reference in references[:MAX_EVAL_CLIPS]:
        positions = reference.positions[:: rf.CONTROL_STEPS_PER_FRAME]  # back to the clip's own frames
        results[reference.name] = track(agent, policy_config, positions, policy_config.fps, reference.name).summary()
    fractions = [r["tracked_fraction"] for r in results.values()]
    errors = [r["mean_joint_error_mm"] for r in results.values()]
    return {"clips": results, "mean_tracked_fraction": round(float(np.mean(fractions)), 4),
            "mean_joint_error_mm": round(float(np.mean(errors)), 1)}  # fmt: skip


def train_rl(run: RLRun) -> dict:
    import torch
    from accelerate import PartialState

    from myocli.rl import humanoid as hu
    from myocli.rl.policy import Agent, PolicyConfig
    from myocli.rl.ppo import PPOConfig, ReturnScaler, TrainingState, train
    from myocli.train.accelerator import make_accelerator, peak_gpu_memory_mib
    from myocli.train.loop import StopSignals, TrainingInterrupted, progress_bar

    trained_on = runs.trained_on({"data": run.data}, run.debug, 1)
    ref, settings = runs.open_run(KIND, run.name, run.resume, lambda: _settings(run), trained_on, run.train_overrides, PartialState())
    config = PPOConfig.from_dict(settings["train"])
    references, fps = (load_references(run.data, settings["clips"]) if settings["env"] == "tracking" else (None, 20.0))
    envs = make_envs(settings, references, config.seed)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    # The networks are small and the simulation is the cost: one torch thread is as fast, and two runs on
    # one 2-core machine with torch's default threads crawled at 150 steps/s each instead of 2.8k (spin-waits).
    torch.set_num_threads(1)
    model_values = settings["model"] | {
        "observation_dim": int(np.prod(envs.single_observation_space.shape)),
        "action_dim": int(np.prod(envs.single_action_space.shape)),
        "humanoid_sha256": hu.fingerprint() if settings["env"] == "tracking" else "",
        "fps": fps,
    }
    policy_config = PolicyConfig.from_dict(model_values)
    agent = Agent(policy_config)
    if "init" in settings and not run.resume:  # a resumed run has its own weights in the state
        init, weights = _init_policy(replace(run, init=settings["init"]["name"]), policy_config, fps)
        if init["sha256"] != settings["init"]["sha256"]:
            raise MyoError(f"--init {init['name']} changed since this run was set up; give it again")
        if init.get("other_humanoid"):
            sys.stderr.write(f"note: {init['name']} was trained for another build of the humanoid; fine-tuning it on this one\n")
        agent.load_state_dict(weights)
    optimizer = torch.optim.Adam(agent.parameters(), lr=config.learning_rate, eps=1e-5)
    state = TrainingState(agent, optimizer)
    state_dir = ref.path / registry.STATE
    accelerator = make_accelerator("no", 1, log_dir=ref.path / "logs")
    accelerator.init_trackers("rl")
    with runs.removed_if_nothing_saved(ref, PartialState()):
        if run.resume:
            state.reward_scaler = ReturnScaler(config.num_envs, config.gamma) if config.normalize_reward else None
            load_state(state_dir, state, envs)
        started = time.perf_counter()
        progress, task, interactive = progress_bar(accelerator, config.iterations, state.iteration, f"rl {settings['env']}")
        last_logs: dict = {}

        def log(values: dict, step: int) -> None:
            last_logs.clear()
            last_logs.update({k: float(v) for k, v in values.items()})
            accelerator.log(last_logs, step=step)
            stats = (f"return {values['charts/episodic_return']:.1f}  len {values['charts/episodic_length']:.0f}  "
                     f"{values['charts/steps_per_second']:.0f} steps/s")  # fmt: skip
            progress.update(task, completed=state.iteration, stats=stats)
            if not interactive and state.iteration % run.log_every == 0:
                sys.stderr.write(f"iteration {state.iteration}/{config.iterations} step {step}: {stats}\n")

        def on_iteration(current) -> None:
            if current.iteration % run.save_every == 0:
                save_state(state_dir, current, envs)

        with progress, StopSignals() as signals:
            over_time = lambda: run.max_minutes > 0 and time.perf_counter() - started > run.max_minutes * 60  # noqa: E731
            train(envs, state, config, log, lambda: signals.received is not None or over_time(), on_iteration)
            save_state(state_dir, state, envs)
            if signals.received is not None:
                import signal

                raise TrainingInterrupted(f"interrupted by {signal.Signals(signals.received).name} at step {state.global_step}; "
                                          f"the training state is saved in {state_dir}; run the same command with --resume to go on",
                                          signals.received)  # fmt: skip
        seconds = time.perf_counter() - started
        metrics = {"train": last_logs}
        if settings["env"] == "tracking":
            metrics["tracking"] = evaluate_clips(agent.eval(), policy_config, references)
        training = settings["train"] | {"steps_done": state.global_step, "iterations_done": state.iteration,
                                        "stopped_early": state.iteration < config.iterations, "seconds": round(seconds, 1),
                                        "peak_gpu_memory_mib": peak_gpu_memory_mib(),
                                        "config_source": settings["config_source"], "debug": run.debug, "env": settings["env"],
                                        "clips": [r.name for r in references] if references else []}  # fmt: skip
        registry.save(ref, policy_config.to_dict(), agent.state_dict(), training=training,
                      dataset=runs.fingerprints(settings, {"data": run.data}), metrics=metrics,
                      parents=([settings["init"]] if "init" in settings else []) + runs.parents(settings))  # fmt: skip
    if not run.keep_state:
        shutil.rmtree(state_dir, ignore_errors=True)
    accelerator.end_training()
    return {"checkpoint": ref.label, "path": str(ref.path), "steps": state.global_step, "seconds": round(seconds, 1), "metrics": metrics}
