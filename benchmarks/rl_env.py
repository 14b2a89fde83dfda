"""Environment speed: the myo28 tracking environment against raw MuJoCo stepping of the same model
and against Gymnasium's Humanoid-v5, on one process.

    python benchmarks/rl_env.py --data datasets/cmu_walk.h5 [--seconds 5]

An environment step is one control step: FRAME_SKIP physics steps (5 x 5 ms), then the
reward, the per-joint error and the observation. "raw" is mujoco.mj_step(nstep=FRAME_SKIP)
on one MjData with the same controls, nothing else; the goal is the tracking environment
within 2x of it. Humanoid-v5 is measured through gymnasium.make with random actions.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np


def _rate(step, seconds: float, per_call: int) -> float:
    step()  # warm up
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        step()
        count += per_call
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="myo28 .h5 with the clip(s) to track")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--num-envs", type=int, nargs="+", default=[1, 16])
    args = parser.parse_args()

    import gymnasium as gym

    from myocli.gl import load_mujoco
    from myocli.rl import humanoid as hu
    from myocli.rl.env import TrackingEnv
    from myocli.rl.train import load_references

    mujoco = load_mujoco()
    references, _ = load_references(Path(args.data), [])
    results = {}
    for n in args.num_envs:
        env = TrackingEnv(references, n, seed=0)
        env.reset(seed=0)
        actions = np.zeros((n, env.num_hinges))
        results[f"tracking env x{n}"] = _rate(lambda env=env, actions=actions: env.step(actions), args.seconds, n)

    model = hu.load_model()
    data = mujoco.MjData(model)
    frame_skip = int(round(references[0].dt / model.opt.timestep))
    data.qpos[:] = references[0].qpos[0]
    data.ctrl[:] = references[0].qpos[0, 7:]

    def raw_step() -> None:
        mujoco.mj_step(model, data, nstep=frame_skip)
        if data.qpos[2] < 0.4:  # keep it standing-ish: restart when fallen, as an episode would
            data.qpos[:], data.qvel[:] = references[0].qpos[0], 0.0

    results["raw mj_step (same model, same frame skip)"] = _rate(raw_step, args.seconds, 1)

    humanoid = gym.make("Humanoid-v5")
    humanoid.reset(seed=0)
    sampler = np.random.default_rng(0)

    def gym_step() -> None:
        _, _, terminated, truncated, _ = humanoid.step(sampler.uniform(-0.4, 0.4, humanoid.action_space.shape))
        if terminated or truncated:
            humanoid.reset()

    results["Gymnasium Humanoid-v5"] = _rate(gym_step, args.seconds, 1)
    raw = results["raw mj_step (same model, same frame skip)"]
    report = {
        "machine": f"{platform.processor() or platform.machine()}, {platform.system()}",
        "steps_per_second": {k: round(v) for k, v in results.items()},
        "tracking_over_raw": {k: round(raw / v, 2) for k, v in results.items() if k.startswith("tracking")},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
