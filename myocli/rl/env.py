"""The motion-tracking environment: N copies of the humanoid, each following a reference clip.

A Gymnasium vector environment (same-step autoreset: a finished copy starts its next
episode at once, and its last observation is in `info["final_obs"]`).

- Episodes start at a random frame of a random clip (reference state initialisation, as
  DeepMimic does), the body posed and moving as the reference is there.
- Action: a PD target offset per hinge, in [-1, 1] times ACTION_SCALE radians, added to the
  reference's angles for the next step: an untrained policy already follows the clip
  kinematically, and learning only has to keep the body upright.
- Reward: DeepMimic's tracking terms, each exp(-k * error), weighted 0.5 pose, 0.05 velocity,
  0.15 end effectors, 0.2 root, 0.1 centre of mass (docs/physics.md, "The environment"). An optional sixth,
  `feet` (weight `feet_weight`, 0 by default), asks for the heels' and balls' heights and for
  still feet where the reference's are on the floor or the body's own are below 5 cm: the
  end-effector term barely notices a swing foot 2 cm too low, and a foot that shuffles, slides
  or swings that low is what foot skating measures.
- Termination: the mean distance between the simulated and reference joints exceeds
  `terminate_distance` (the body has strayed, usually by falling). Truncation: the clip ends.
- `follow_root`: after each step the reference is slid along the floor so its root stands over
  the body's, so the body is asked for the clip's pose, heading, height and speed but not its
  place on the floor. A generated motion whose feet slide cannot be followed to the place: a
  planted foot holds, so the body falls behind, and with a fixed reference it would count as
  strayed and chase the clip off balance.
- `info["joint_error"]`: per-joint distance (N, 28) in metres, every step.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space

from myocli import rotations
from myocli import skeleton as sk
from myocli.gl import load_mujoco
from myocli.motion.metrics import SKATING_SPEED_M_S
from myocli.rl import humanoid as hu
from myocli.rl.reference import Reference

mujoco = load_mujoco()

ACTION_SCALE = 0.5  # radians of PD-target offset at action 1
REWARD_WEIGHTS = {"pose": 0.5, "velocity": 0.05, "end_effector": 0.15, "root": 0.2, "com": 0.1}
REWARD_SCALES = {"pose": 2.0, "velocity": 0.1, "end_effector": 40.0, "root": 5.0, "com": 10.0, "feet": 300.0}
FEET = list(sk.FOOT_CONTACT_JOINTS)  # heels and balls
PLANTED_HEIGHT = 0.03  # metres: a reference foot point below this (on the joint line) stands on the floor
SLIP_COST = 0.02  # (m/s)^2 of a planted foot point's speed count as this many m^2 of height error
BALLS = [FEET.index(j) for j in sk.TOE_JOINTS]  # the foot points the skating ratio watches, among FEET
SKATE_GATE_M = 0.005  # metres: the smooth step from 'below 5 cm' (1) to 'above' (0) is about this wide
SKATE_MAX_EXCESS = 2.0  # m/s: a ball's speed above 0.5 m/s counts up to this much (a bound on one step's penalty)


@dataclass
class TrackingOptions:
    terminate_distance: float = 0.3  # metres, mean over the 28 joints
    random_start: bool = True
    autoreset: bool = True  # False (evaluation): a finished copy stays as it ended
    follow_root: bool = False  # slide the reference along the floor with the body (module docstring)
    feet_weight: float = 0.0  # weight of the feet term of the reward (module docstring)
    skate_weight: float = 0.0  # weight of the skating penalty (module docstring)


def tracking_options(model: dict, **evaluation) -> TrackingOptions:
    """The options a tracking policy was trained with, from its model config (PolicyConfig as a dict);
    `evaluation` overrides the rest (random_start=False, autoreset=False to replay one motion)."""
    # Every option a config names is taken from it; one an older policy's config lacks keeps its default.
    names = {option.name for option in fields(TrackingOptions)}
    return TrackingOptions(**{key: value for key, value in model.items() if key in names} | evaluation)


def _heading_frames(root_rotations: np.ndarray) -> np.ndarray:
    """Rotations (N, 3, 3) about z that undo each root's heading: world -> heading frame.
    The heading is the direction of the root's x axis (forward) on the floor."""
    heading = np.arctan2(root_rotations[:, 1, 0], root_rotations[:, 0, 0])
    c, s = np.cos(heading), np.sin(heading)
    frames = np.zeros((len(heading), 3, 3))  # Rz(-heading), filled in place: this runs every step
    frames[:, 0, 0], frames[:, 0, 1], frames[:, 1, 0], frames[:, 1, 1], frames[:, 2, 2] = c, s, -s, c, 1.0
    return frames


def _rotation_6d(root_rotations: np.ndarray) -> np.ndarray:
    """The first two columns of each rotation matrix (N, 6): a continuous orientation code."""
    return root_rotations[:, :, :2].reshape(len(root_rotations), 6)


def _quaternion_angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation angle (N,) between unit quaternions a and b (N, 4)."""
    dot = np.abs((a * b).sum(-1)).clip(0.0, 1.0)
    return 2 * np.arccos(dot)


class TrackingEnv(gym.vector.VectorEnv):
    metadata = {"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP}

    def __init__(self, references: list[Reference], num_envs: int = 1, options: TrackingOptions | None = None, seed: int | None = None):
        self.model = hu.load_model()
        self.references = references
        self.options = options or TrackingOptions()
        self.num_envs = num_envs
        self.datas = [mujoco.MjData(self.model) for _ in range(num_envs)]
        self.dt = references[0].dt
        if any(abs(r.dt - self.dt) > 1e-9 for r in references):
            raise ValueError("every reference must have the same control step")
        self.frame_skip = int(round(self.dt / self.model.opt.timestep))
        self.site_ids = hu.site_ids(self.model)
        self.clip = np.zeros(num_envs, dtype=np.int64)
        self.step_index = np.zeros(num_envs, dtype=np.int64)
        self.start_index = np.zeros(num_envs, dtype=np.int64)
        self.previous_com = np.zeros((num_envs, 3))
        self.previous_feet = np.zeros((num_envs, len(FEET), 3))
        self.root_offset = np.zeros((num_envs, 2))  # how far each copy's reference is slid along the floor (follow_root)
        self.rng = np.random.default_rng(seed)
        self.num_hinges = self.model.nu
        # Clips are drawn in proportion to the starts they offer.
        starts = np.array([max(len(r) - 1, 1) for r in references], dtype=np.float64)
        self.clip_weights = starts / starts.sum()
        self.last_index = np.array([len(r) - 1 for r in references])
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (self.num_hinges,), np.float32)
        size = len(self._observe_one_size())
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (size,), np.float32)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.observation_space = batch_space(self.single_observation_space, num_envs)

    # -- state ------------------------------------------------------------------------------

    def _observe_one_size(self) -> np.ndarray:
        self._place(0, 0, 0)
        return self._observe(np.array([0]))[0]

    def _place(self, env: int, clip: int, index: int) -> None:
        reference, data = self.references[clip], self.datas[env]
        mujoco.mj_resetData(self.model, data)
        data.qpos[:] = reference.qpos[index]
        data.qvel[:] = reference.qvel[index]
        mujoco.mj_forward(self.model, data)
        self.clip[env], self.step_index[env], self.start_index[env] = clip, index, index
        self.previous_com[env] = data.subtree_com[1]
        self.previous_feet[env] = data.site_xpos[self.site_ids[FEET]]
        self.root_offset[env] = 0.0

    def _reset_one(self, env: int) -> None:
        clip = int(self.rng.choice(len(self.references), p=self.clip_weights))
        last_start = max(len(self.references[clip]) - 2, 0)
        index = int(self.rng.integers(0, last_start + 1)) if self.options.random_start else 0
        self._place(env, clip, index)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        for env in range(self.num_envs):
            self._reset_one(env)
        every = np.arange(self.num_envs)
        return self._observe(every), {}

    def start_at(self, clip: int = 0, index: int = 0):
        """Reset every copy to one clip and frame (evaluation); returns the observation."""
        for env in range(self.num_envs):
            self._place(env, clip, index)
        return self._observe(np.arange(self.num_envs))

    # -- what the policy sees --------------------------------------------------------------------

    def _reference(self, envs: np.ndarray, ahead: int, *fields: str) -> list[np.ndarray]:
        """Fields of each copy's reference (qpos, qvel, sites, com, root_rotation) at its step + `ahead`,
        positions slid along the floor by the copy's root offset."""
        rows = np.clip(self.step_index[envs] + ahead, 0, self.last_index[self.clip[envs]])
        picked = [(self.references[c], i) for c, i in zip(self.clip[envs], rows, strict=True)]
        gathered = []
        for field in fields:
            values = np.stack([getattr(reference, field)[i] for reference, i in picked])
            if field in ("qpos", "sites", "com"):  # the first two numbers of a qpos row are the root's x, y too
                values[..., :2] += self.root_offset[envs].reshape(len(envs), *[1] * (values.ndim - 2), 2)
            gathered.append(values)
        return gathered

    def _bodies(self, envs: np.ndarray) -> dict[str, np.ndarray]:
        """The simulated state of the copies `envs`, gathered once per step for reward and observation."""
        return {
            "qpos": np.stack([self.datas[e].qpos for e in envs]),
            "qvel": np.stack([self.datas[e].qvel for e in envs]),
            "sites": np.stack([self.datas[e].site_xpos[self.site_ids] for e in envs]),
            "com": np.stack([self.datas[e].subtree_com[1] for e in envs]),
        }

    def _observe(self, envs: np.ndarray, bodies: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """Body state and the next reference pose, in the root's heading frame."""
        bodies = bodies or self._bodies(envs)
        qpos, qvel, sites = bodies["qpos"], bodies["qvel"], bodies["sites"]
        ref_qpos, ref_sites, ref_root_rotation = self._reference(envs, 1, "qpos", "sites", "root_rotation")
        root_rotations = rotations.quaternion_to_matrix(qpos[:, 3:7])
        frames = _heading_frames(root_rotations)
        root = qpos[:, None, :3]
        local_sites = np.einsum("nij,nkj->nki", frames, sites - root)
        local_ref_sites = np.einsum("nij,nkj->nki", frames, ref_sites - root)
        progress = (self.step_index[envs] + 1) / (self.last_index[self.clip[envs]] + 1)
        observation = np.concatenate([
            qpos[:, 2:3],
            _rotation_6d(root_rotations),
            np.einsum("nij,nj->ni", frames, qvel[:, :3]),
            qvel[:, 3:6],
            qpos[:, 7:],
            0.1 * qvel[:, 6:],
            local_sites.reshape(len(envs), -1),
            ref_qpos[:, 7:] - qpos[:, 7:],
            (local_ref_sites - local_sites).reshape(len(envs), -1),
            ref_qpos[:, 2:3],
            _rotation_6d(ref_root_rotation),
            progress[:, None],
        ], axis=1)  # fmt: skip
        return observation.astype(np.float32)

    # -- stepping ------------------------------------------------------------------------------

    def step(self, actions: np.ndarray):
        actions = np.clip(np.asarray(actions, dtype=np.float64), -1.0, 1.0)
        every = np.arange(self.num_envs)
        targets = self._reference(every, 1, "qpos")[0][:, 7:] + ACTION_SCALE * actions
        for env, data in enumerate(self.datas):
            data.ctrl[:] = targets[env]
            mujoco.mj_step(self.model, data, nstep=self.frame_skip)
        self.step_index += 1
        bodies = self._bodies(every)
        reward, terms, joint_error = self._reward(every, bodies)
        terminated = joint_error.mean(1) > self.options.terminate_distance
        if self.options.follow_root:  # the next reference pose is slid to stand where the body now is
            self.root_offset += bodies["qpos"][:, :2] - self._reference(every, 0, "qpos")[0][:, :2]
        truncated = ~terminated & (self.step_index >= self.last_index[self.clip])
        observation = self._observe(every, bodies)
        info = {"joint_error": joint_error, **{f"reward_{k}": v for k, v in terms.items()}}
        done = terminated | truncated
        if done.any() and self.options.autoreset:
            info["final_obs"] = observation.copy()
            info["_final_obs"] = done.copy()
            info["episode_steps"] = np.where(done, self.step_index - self.start_index, 0)
            for env in np.flatnonzero(done):
                self._reset_one(env)
            observation[done] = self._observe(np.flatnonzero(done))
        return observation, reward.astype(np.float32), terminated, truncated, info

    def _reward(self, envs: np.ndarray, bodies: dict[str, np.ndarray]) -> tuple[np.ndarray, dict, np.ndarray]:
        """DeepMimic's tracking reward against the reference at the current step, and the per-joint error."""
        ref_qpos, ref_qvel, ref_sites, ref_com = self._reference(envs, 0, "qpos", "qvel", "sites", "com")
        ref_com_velocity = (ref_com - self._reference(envs, -1, "com")[0]) / self.dt
        qpos, qvel, sites, com = bodies["qpos"], bodies["qvel"], bodies["sites"], bodies["com"]
        com_velocity = (com - self.previous_com[envs]) / self.dt
        self.previous_com[envs] = com
        feet, ref_feet = sites[:, FEET], ref_sites[:, FEET]
        feet_speed = ((feet - self.previous_feet[envs])[..., :2] ** 2).sum(-1) / self.dt**2
        # Heights on the joint line (the sole's centre less its half thickness), as myo28 motions give them.
        height, ref_height = feet[..., 2] - hu.FOOT_RADIUS, ref_feet[..., 2] - hu.FOOT_RADIUS
        skating = _skating(np.maximum(height, self.previous_feet[envs][..., 2] - hu.FOOT_RADIUS)[:, BALLS],
                           np.sqrt(feet_speed[:, BALLS]))
        self.previous_feet[envs] = feet
        on_floor = (ref_height < PLANTED_HEIGHT) | (height < sk.FOOT_CONTACT_HEIGHT_M)  # module docstring
        effectors = list(hu.END_EFFECTORS)
        relative = sites[:, effectors] - qpos[:, None, :3]
        ref_relative = ref_sites[:, effectors] - ref_qpos[:, None, :3]
        errors = {
            "pose": ((qpos[:, 7:] - ref_qpos[:, 7:]) ** 2).sum(1),
            "velocity": ((qvel[:, 6:] - ref_qvel[:, 6:]) ** 2).sum(1),
            "end_effector": ((relative - ref_relative) ** 2).sum((1, 2)),
            "root": ((qpos[:, :3] - ref_qpos[:, :3]) ** 2).sum(1) + 0.1 * _quaternion_angle(qpos[:, 3:7], ref_qpos[:, 3:7]) ** 2
            + 0.01 * ((qvel[:, :3] - ref_qvel[:, :3]) ** 2).sum(1) + 0.001 * ((qvel[:, 3:6] - ref_qvel[:, 3:6]) ** 2).sum(1),
            "com": ((com_velocity - ref_com_velocity) ** 2).sum(1),
            "feet": ((height - ref_height) ** 2).sum(1) + SLIP_COST * (on_floor * feet_speed).sum(1),
        }  # fmt: skip
        terms = {k: np.exp(-REWARD_SCALES[k] * e) for k, e in errors.items()}
        weights = REWARD_WEIGHTS | {"feet": self.options.feet_weight}
        reward = sum(weights[k] * terms[k] for k in terms) - self.options.skate_weight * skating
        terms["skate"] = skating  # logged beside the terms (as reward_skate), though it is a cost
        joint_error = np.linalg.norm(sites - ref_sites, axis=-1)
        return reward, terms, joint_error

    def body_positions(self) -> np.ndarray:
        """Every copy's joints now, as myo28 positions (N, 28, 3)."""
        return hu.joint_positions(np.stack([d.site_xpos[self.site_ids] for d in self.datas]))

    # -- checkpointing the environment (for --resume) ---------------------------------------------

    def get_state(self) -> dict:
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        size = mujoco.mj_stateSize(self.model, spec)
        physics = np.empty((self.num_envs, size))
        for env, data in enumerate(self.datas):
            mujoco.mj_getState(self.model, data, physics[env], spec)
        return {"physics": physics, "clip": self.clip.copy(), "step_index": self.step_index.copy(),
                "start_index": self.start_index.copy(), "previous_com": self.previous_com.copy(),
                "previous_feet": self.previous_feet.copy(),
                "root_offset": self.root_offset.copy(), "rng": self.rng.bit_generator.state}  # fmt: skip

    def copy_state(self, source: int) -> None:
        """Every copy takes copy `source`'s state, physics and bookkeeping alike (a search around a
        policy goes on from the copy it kept: rl/track.py)."""
        state = self.get_state()
        for key, value in state.items():
            if key != "rng":  # (one generator for all copies: not per copy)
                state[key] = np.repeat(value[source : source + 1], self.num_envs, axis=0)
        self.set_state(state)

    def set_state(self, state: dict) -> None:
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        for env, data in enumerate(self.datas):
            mujoco.mj_setState(self.model, data, np.asarray(state["physics"][env], dtype=np.float64), spec)
            mujoco.mj_forward(self.model, data)
        for key in ("clip", "step_index", "start_index", "previous_com"):
            getattr(self, key)[:] = state[key]
        self.root_offset[:] = state.get("root_offset", 0.0)  # states saved before these were kept have none
        self.previous_feet[:] = state.get("previous_feet", self.previous_feet)
        self.rng.bit_generator.state = state["rng"]


def _skating(height: np.ndarray, speed: np.ndarray) -> np.ndarray:
    """The skating penalty's cost (N,): summed over the balls of the feet, each ball's speed above
    0.5 m/s (at most SKATE_MAX_EXCESS), times a smooth 'below 5 cm' of its higher height over the step."""
    low = 1.0 / (1.0 + np.exp((height - sk.FOOT_CONTACT_HEIGHT_M) / SKATE_GATE_M))
    return (low * np.clip(speed - SKATING_SPEED_M_S, 0.0, SKATE_MAX_EXCESS)).sum(-1)


def joint_error_floor(reference: Reference) -> np.ndarray:
    """Per-joint distance (T, 28) between the clip and the pose the humanoid can take of it."""
    return np.linalg.norm(hu.joint_positions(reference.sites) - reference.positions, axis=-1)

