"""Gymnasium's Humanoid-v5, N copies, whose episodes can be saved and restored for `--resume`.

`myo rl train --env humanoid-v5` runs the PPO learner on the standard benchmark so its
returns compare with published ones. A resumed run should go on with the very episodes
the interrupted one was in, as the tracking environment does (rl/env.py), rather than
restart them: a restart cuts every episode short once, which shows in the logged returns.

The state of a copy is its MuJoCo integration state, the step count of its time limit, its
random generator (which draws the initial-state noise of its next episodes), and the body
centres of mass MuJoCo last computed: Humanoid-v5 reads them for its forward reward before
stepping, and they are those of the last physics substep's start, not of the saved pose.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from myocli.gl import load_mujoco

mujoco = load_mujoco()

ENV_ID = "Humanoid-v5"


def _time_limit(env: gym.Env) -> gym.wrappers.TimeLimit:
    while not isinstance(env, gym.wrappers.TimeLimit):
        env = env.env
    return env


class HumanoidEnvs(gym.vector.SyncVectorEnv):
    def __init__(self, num_envs: int):
        super().__init__(
            [lambda: gym.wrappers.ClipAction(gym.make(ENV_ID)) for _ in range(num_envs)],
            autoreset_mode=gym.vector.AutoresetMode.SAME_STEP,
        )

    def get_state(self) -> dict:
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        physics, centres = [], []
        for env in self.envs:
            model, data = env.unwrapped.model, env.unwrapped.data
            state = np.empty(mujoco.mj_stateSize(model, spec))
            mujoco.mj_getState(model, data, state, spec)
            physics.append(state)
            centres.append(data.xipos.copy())
        return {
            "physics": np.stack(physics),
            "body_centres": np.stack(centres),
            "elapsed_steps": np.array([_time_limit(env)._elapsed_steps for env in self.envs]),
            "rng": [env.unwrapped.np_random.bit_generator.state for env in self.envs],
        }

    def set_state(self, state: dict) -> None:
        # A reset first puts every wrapper in its after-reset state (Gymnasium refuses a step
        # before a reset); then the saved episode replaces the fresh one.
        self.reset(seed=0)
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        saved = zip(self.envs, state["physics"], state["body_centres"], state["elapsed_steps"], state["rng"], strict=True)
        for env, physics, centres, elapsed, rng in saved:
            model, data = env.unwrapped.model, env.unwrapped.data
            mujoco.mj_setState(model, data, np.asarray(physics, dtype=np.float64), spec)
            mujoco.mj_forward(model, data)
            data.xipos[:] = centres
            _time_limit(env)._elapsed_steps = int(elapsed)
            env.unwrapped.np_random.bit_generator.state = rng
