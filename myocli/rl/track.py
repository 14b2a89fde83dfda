"""Run a trained tracking policy on a motion: the simulated motion, per-joint error, time before falling.

Shared by `myo rl eval`, `myo generate --physics` and the trainer's own end-of-run check.

With `search` above 1 the policy proposes and simulation chooses, in the manner of sampling-based
control (SAMCON, Liu et al. 2010) with the learned policy as the proposal: every 0.1 s, `search`
copies of the body go on from its state, one under the policy's own actions and the others with
noise added, and the copy whose tracking reward over those steps plus the critic's value of where
it ended is highest is kept. The reward is the one the policy was trained on (with its skating
penalty and feet term, if it was trained with them); every frame is still MuJoCo stepping the
body's own actuators.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from myocli import skeleton as sk
from myocli.errors import MyoError

SEARCH_SECONDS = 0.1  # between choices: 4 control steps for a policy of 20-fps motions
SEARCH_NOISE = 2.0  # each tried copy's action noise, in units of the policy's own standard deviation
# The presets' discount, with which the critic learned its values; a policy trained with another
# (or with reward normalisation, whose values are in other units) is scored a little off.
SEARCH_DISCOUNT = 0.95


@dataclass
class TrackResult:
    positions: np.ndarray  # (T, 28, 3) the simulated motion at the input's frame rate, myo28 frame
    joint_error: np.ndarray  # (28,) mean distance per joint to the input motion while standing, metres
    # (for a policy that follows the root: to the input slid along the floor to stand over the body)
    fell_at: float | None  # seconds into the motion when the body strayed past the threshold, or None
    seconds: float  # length of the motion
    floor_error: np.ndarray  # (28,) the same error for the reference pose the humanoid can take (its kinematic floor)
    qpos: np.ndarray  # (T', nq) the simulated humanoid's state at each motion frame of the policy's rate
    asked: np.ndarray  # (T, 28, 3) the humanoid's pose of the input that the policy followed, input frame rate
    followed_root: bool = False  # the reference slid along the floor with the body (a follow_root policy)

    @property
    def mean_error_mm(self) -> float:
        return float(self.joint_error.mean() * 1000)

    def floor_contact(self) -> dict:
        """The simulated body's shapes against the floor, by MuJoCo and by PyBullet (rl/contact_check.py)."""
        from myocli.rl.contact_check import floor_contact

        return floor_contact(self.qpos).summary()

    def contact_figures(self, kinematic: np.ndarray, fps: float) -> dict:
        """Foot skating ratio and penetration of the input motion and of the simulated one, over the
        frames simulated: a body that fell is compared up to its fall, like for like."""
        from myocli.motion import metrics

        figures = {}
        for stage, motion in (("kinematic", np.asarray(kinematic)[: len(self.positions)]), ("simulated", self.positions)):
            figures[f"skating_ratio_{stage}"] = round(float(metrics.foot_skating_ratio(motion, fps)), 4)
            figures[f"penetration_mm_{stage}"] = round(float(metrics.penetration_mm(motion)), 4)
        return figures

    def summary(self) -> dict:
        return {
            "seconds": round(self.seconds, 3),
            "fell": self.fell_at is not None,
            "fell_at_seconds": None if self.fell_at is None else round(self.fell_at, 3),
            "tracked_fraction": round(1.0 if self.fell_at is None else self.fell_at / self.seconds, 4),
            "mean_joint_error_mm": round(self.mean_error_mm, 1),
            "reference_followed_root": self.followed_root,
            "kinematic_floor_mm": round(float(self.floor_error.mean() * 1000), 1),
            "joint_error_mm": {name: round(float(e) * 1000, 1) for name, e in zip(sk.JOINT_NAMES, self.joint_error, strict=True)},
        }


def load_policy(spec: str, other_humanoid: bool = False):
    """(ref, PolicyConfig, Agent) of a tracking policy, refusing one made for another humanoid
    (unless `other_humanoid`: a start for fine-tuning on this one, `myo rl train --init`)."""
    from myocli import registry
    from myocli.rl import humanoid as hu
    from myocli.rl.policy import Agent, PolicyConfig

    def check(ref, config):
        if config.env != "tracking":
            raise MyoError(f"{ref.label} is a {config.env} policy; tracking a motion needs one trained with `myo rl train --data`")
        if config.humanoid_sha256 != hu.fingerprint() and not other_humanoid:
            raise MyoError(f"{ref.label} was trained for another humanoid model (the myo28 joint table or the body changed "
                           f"since); train it again with this myo, or fine-tune it here with `myo rl train --init {ref.label}`")  # fmt: skip

    loaded = registry.from_pretrained(spec, "rl", PolicyConfig, lambda config, ref: Agent(config), check)
    return loaded.ref, loaded.config, loaded.model


def track(agent, config, positions: np.ndarray, fps: float, name: str = "motion",
          search: int = 1, seed: int = 0) -> TrackResult:  # fmt: skip
    """Simulate the humanoid following `positions` (T, 28, 3) at `fps` under the policy, from its first
    frame; `search` > 1 tries that many copies every 0.1 s (`_try_copies`) and keeps the best (module
    docstring), with the noise drawn from `seed`."""
    from myocli.axes import from_mujoco
    from myocli.motion.timing import change_fps
    from myocli.rl import humanoid as hu
    from myocli.rl import reference as rf
    from myocli.rl.env import TrackingEnv, joint_error_floor, tracking_options

    positions = sk.as_joints(np.asarray(positions, dtype=np.float64))
    if not np.isfinite(positions).all():
        raise MyoError(f"{name}: the motion contains NaN or Inf; the humanoid cannot track it")
    source_fps = fps
    if abs(fps - config.fps) > 1e-6:  # the policy acts at the rate it was trained at
        positions = change_fps(positions, fps, config.fps)
    reference = rf.build(positions, config.fps, name)
    options = tracking_options(config.to_dict(), random_start=False, autoreset=False)
    env = TrackingEnv([reference], search, options)
    observation = env.start_at(0, 0)
    noise = SEARCH_NOISE * agent.actor_logstd.detach().exp().numpy()
    rng = np.random.default_rng(seed)
    poses, states, fell_at = [env.body_positions()[0]], [env.datas[0].qpos.copy()], None
    offsets = [np.zeros(2)]  # where along the floor the reference stood at each step (follow_root)
    step, last = 0, len(reference) - 1
    segment = max(1, round(SEARCH_SECONDS / reference.dt))
    while step < last:
        tried = _try_copies(env, agent, observation, min(segment, last - step), noise, rng)
        # A copy still up beats any that strayed, and of those the one that lasted longest; then the
        # score. Ties go to copy 0, the policy's own actions: without noise this is the policy alone.
        best = max(range(search), key=lambda c: (tried.upright[c], tried.lasted[c], tried.score[c]))
        offsets += [o[best] for o in tried.offsets[: tried.lasted[best]]]
        poses += [p[best] for p in tried.poses[: tried.lasted[best]]]
        states += [q[best] for q in tried.qpos[: tried.lasted[best]]]
        step += tried.lasted[best]
        if not tried.upright[best]:
            fell_at = step * reference.dt
            break
        if search > 1:  # every copy goes on from the one kept
            env.copy_state(best)
        observation = np.repeat(tried.observation[best : best + 1], search, axis=0)
    simulated = np.stack(poses)[:: rf.CONTROL_STEPS_PER_FRAME]  # back to motion frames
    slid = from_mujoco(np.pad(np.stack(offsets), ((0, 0), (0, 1))))[:: rf.CONTROL_STEPS_PER_FRAME]
    error = np.linalg.norm(simulated - (positions[: len(simulated)] + slid[:, None]), axis=-1).mean(0)
    asked = hu.joint_positions(reference.sites)[:: rf.CONTROL_STEPS_PER_FRAME]
    if abs(source_fps - config.fps) > 1e-6:
        simulated, asked = (change_fps(m, config.fps, source_fps) for m in (simulated, asked))
    qpos = np.stack(states)[:: rf.CONTROL_STEPS_PER_FRAME]
    return TrackResult(simulated, error, fell_at, (len(reference) - 1) * reference.dt, joint_error_floor(reference).mean(0), qpos,
                       asked, config.follow_root)


@dataclass
class _Tried:
    """What each copy did over one search segment; per step, arrays over copies."""

    offsets: list[np.ndarray]  # the reference's slide along the floor before each step
    poses: list[np.ndarray]  # myo28 positions after each step
    qpos: list[np.ndarray]  # (copies, nq) after each step
    observation: np.ndarray  # each copy's observation at the segment's end
    upright: np.ndarray  # (copies,) bool: not strayed past the threshold
    lasted: np.ndarray  # (copies,) steps until it strayed (all of them if it did not)
    score: np.ndarray  # (copies,) discounted reward over the segment, plus the critic's value at its end if upright


def _try_copies(env, agent, observation: np.ndarray, steps: int, noise: np.ndarray, rng: np.random.Generator) -> _Tried:
    """Every copy of `env` (all in one state) goes on for `steps` control steps: copy 0 under the
    policy's own actions, the others with Gaussian noise of std `noise` added to them."""
    copies = env.num_envs
    tried = _Tried([], [], [], observation, np.ones(copies, bool), np.full(copies, steps), np.zeros(copies))
    for t in range(steps):
        action = agent.act(tried.observation)
        action[1:] += noise * rng.standard_normal(action[1:].shape)
        tried.offsets.append(env.root_offset.copy())
        tried.observation, reward, terminated, _, _ = env.step(action)
        tried.poses.append(env.body_positions())
        tried.qpos.append(np.stack([data.qpos.copy() for data in env.datas]))
        tried.score += tried.upright * SEARCH_DISCOUNT**t * reward
        tried.lasted[tried.upright & terminated] = t + 1
        tried.upright &= ~terminated
    if copies > 1:  # (the policy alone has nothing to choose between)
        tried.score += tried.upright * SEARCH_DISCOUNT**steps * agent.value(tried.observation)
    return tried
