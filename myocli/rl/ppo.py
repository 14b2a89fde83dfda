"""Proximal Policy Optimisation for continuous actions, in the shape of CleanRL's ppo_continuous_action.py.

Top to bottom: the settings, generalised advantage estimation, the clipped losses, the
return scaling, and the loop: collect `num_steps` steps from every copy of the environment,
compute advantages, then `update_epochs` passes of minibatch updates. The policy it trains (a
Gaussian actor and a critic, with observation normalisation inside) is in policy.py.

Works on any Gymnasium vector environment with same-step autoreset (a finished copy's last
observation in info["final_obs"], used to bootstrap truncated episodes): the myo28 tracking
environment, and Gymnasium's Humanoid-v5 for comparison with published PPO figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from myocli.config import DictConfig
from myocli.rl.policy import Agent, RunningMeanStd


@dataclass
class PPOConfig(DictConfig):
    """The learner's settings (CleanRL's defaults where they fit)."""

    total_steps: int = 2_000_000
    num_envs: int = 16
    num_steps: int = 256  # steps per copy per rollout
    learning_rate: float = 3e-4
    anneal_lr: bool = True
    gamma: float = 0.95
    gae_lambda: float = 0.95
    num_minibatches: int = 8
    update_epochs: int = 5
    norm_adv: bool = True
    clip_coef: float = 0.2
    clip_vloss: bool = True
    ent_coef: float = 0.0
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    target_kl: float | None = None
    normalize_reward: bool = False  # scale rewards by the running std of the discounted return
    seed: int = 0

    @property
    def batch_size(self) -> int:
        return self.num_envs * self.num_steps

    @property
    def minibatch_size(self) -> int:
        return self.batch_size // self.num_minibatches

    @property
    def iterations(self) -> int:
        return max(1, self.total_steps // self.batch_size)


def compute_gae(rewards, values, dones, next_value, next_done, gamma: float, gae_lambda: float):
    """Generalised advantage estimation over a rollout (T, N): (advantages, returns).

    dones[t] says the observation at step t began a new episode, so nothing flows back
    across it; `rewards` already include the bootstrap of truncated episodes."""
    steps = rewards.shape[0]
    advantages = torch.zeros_like(rewards)
    last = torch.zeros_like(next_value)
    for t in reversed(range(steps)):
        next_nonterminal = 1.0 - (next_done if t == steps - 1 else dones[t + 1])
        following = next_value if t == steps - 1 else values[t + 1]
        delta = rewards[t] + gamma * following * next_nonterminal - values[t]
        last = delta + gamma * gae_lambda * next_nonterminal * last
        advantages[t] = last
    return advantages, advantages + values


def ppo_losses(new_logprob, old_logprob, advantages, new_value, old_value, returns, entropy, config: PPOConfig) -> dict:
    """The clipped policy loss, the (optionally clipped) value loss and the entropy, with diagnostics."""
    log_ratio = new_logprob - old_logprob
    ratio = log_ratio.exp()
    if config.norm_adv and advantages.numel() > 1:
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
    policy_loss = torch.max(-advantages * ratio, -advantages * ratio.clamp(1 - config.clip_coef, 1 + config.clip_coef)).mean()
    if config.clip_vloss:
        clipped = old_value + (new_value - old_value).clamp(-config.clip_coef, config.clip_coef)
        value_loss = 0.5 * torch.max((new_value - returns) ** 2, (clipped - returns) ** 2).mean()
    else:
        value_loss = 0.5 * ((new_value - returns) ** 2).mean()
    entropy_loss = entropy.mean()
    with torch.no_grad():
        approx_kl = ((ratio - 1) - log_ratio).mean()  # the low-variance estimator CleanRL logs
        clip_fraction = ((ratio - 1.0).abs() > config.clip_coef).float().mean()
    return {
        "loss": policy_loss - config.ent_coef * entropy_loss + config.vf_coef * value_loss,
        "policy_loss": policy_loss,
        "value_loss": value_loss,
        "entropy": entropy_loss,
        "approx_kl": approx_kl,
        "clip_fraction": clip_fraction,
    }


class ReturnScaler:
    """Rewards divided by the running std of the discounted return (gym's NormalizeReward)."""

    def __init__(self, num_envs: int, gamma: float):
        self.rms = RunningMeanStd(())
        self.returns = np.zeros(num_envs)
        self.gamma = gamma

    def __call__(self, reward: np.ndarray, done: np.ndarray) -> np.ndarray:
        self.returns = self.returns * self.gamma * (1 - done) + reward
        self.rms.update(torch.as_tensor(self.returns))
        return np.clip(reward / np.sqrt(self.rms.var.item() + 1e-8), -10.0, 10.0)


@dataclass
class TrainingState:
    """Everything a resumed run needs besides the environment's own state."""

    agent: Agent
    optimizer: torch.optim.Optimizer
    iteration: int = 0
    global_step: int = 0
    episode_returns: np.ndarray | None = None
    episode_lengths: np.ndarray | None = None
    next_obs: np.ndarray | None = None
    next_done: np.ndarray | None = None
    reward_scaler: ReturnScaler | None = None
    recent: list = field(default_factory=list)  # (return, length) of recent episodes


def train(envs, state: TrainingState, config: PPOConfig, log: Callable[[dict, int], None],
          should_stop: Callable[[], bool] = lambda: False, on_iteration: Callable[[TrainingState], None] = lambda s: None) -> TrainingState:  # fmt: skip
    """Run PPO until config.total_steps or `should_stop()`; `on_iteration` after every update (saving)."""
    agent, optimizer = state.agent, state.optimizer
    n, t_steps = config.num_envs, config.num_steps
    obs_dim, act_dim = agent.config.observation_dim, agent.config.action_dim
    observations = torch.zeros((t_steps, n, obs_dim), dtype=torch.float64)
    actions = torch.zeros((t_steps, n, act_dim))
    logprobs, rewards, dones, values = (torch.zeros((t_steps, n)) for _ in range(4))
    if state.next_obs is None:
        state.next_obs, _ = envs.reset(seed=config.seed)
        state.next_done = np.zeros(n)
        state.episode_returns, state.episode_lengths = np.zeros(n), np.zeros(n, dtype=np.int64)
        if config.normalize_reward:
            state.reward_scaler = ReturnScaler(n, config.gamma)
    started = time.perf_counter()
    steps_at_start = state.global_step
    joint_errors: list[float] = []  # tracking environments report the per-joint error
    while state.iteration < config.iterations and not should_stop():
        state.iteration += 1
        if config.anneal_lr:
            optimizer.param_groups[0]["lr"] = config.learning_rate * (1.0 - (state.iteration - 1.0) / config.iterations)
        for step in range(t_steps):
            state.global_step += n
            obs = torch.as_tensor(state.next_obs, dtype=torch.float64)
            agent.obs_rms.update(obs)
            observations[step], dones[step] = obs, torch.as_tensor(state.next_done, dtype=torch.float32)
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(obs)
            values[step], actions[step], logprobs[step] = value.flatten(), action, logprob
            state.next_obs, reward, terminated, truncated, info = envs.step(action.numpy())
            done = np.logical_or(terminated, truncated)
            if "joint_error" in info:
                joint_errors.append(float(info["joint_error"].mean()))
            state.episode_returns += reward
            state.episode_lengths += 1
            for env in np.flatnonzero(done):
                state.recent = (state.recent + [(float(state.episode_returns[env]), int(state.episode_lengths[env]))])[-100:]
            state.episode_returns[done], state.episode_lengths[done] = 0.0, 0
            if state.reward_scaler is not None:
                reward = state.reward_scaler(reward, done)
            reward = torch.as_tensor(reward, dtype=torch.float32)
            # A truncated episode did not end: bootstrap its last state's value into the reward.
            if truncated.any():
                # np.stack: Gymnasium's vector envs give final_obs as an object array of per-copy observations.
                last = torch.as_tensor(np.stack(info["final_obs"][truncated]), dtype=torch.float64)
                with torch.no_grad():
                    reward[torch.as_tensor(truncated)] += config.gamma * agent.get_value(last).flatten()
            rewards[step] = reward
            state.next_done = done.astype(np.float32)

        with torch.no_grad():
            next_value = agent.get_value(torch.as_tensor(state.next_obs, dtype=torch.float64)).flatten()
        advantages, returns = compute_gae(rewards, values, dones, next_value, torch.as_tensor(state.next_done),
                                          config.gamma, config.gae_lambda)  # fmt: skip

        b_obs, b_actions = observations.reshape(-1, obs_dim), actions.reshape(-1, act_dim)
        b_logprobs, b_advantages = logprobs.reshape(-1), advantages.reshape(-1)
        b_returns, b_values = returns.reshape(-1), values.reshape(-1)
        indices = np.arange(config.batch_size)
        fractions, stop_early = [], False
        for _epoch in range(config.update_epochs):
            np.random.shuffle(indices)
            for begin in range(0, config.batch_size, config.minibatch_size):
                mb = indices[begin : begin + config.minibatch_size]
                _, new_logprob, entropy, new_value = agent.get_action_and_value(b_obs[mb], b_actions[mb])
                losses = ppo_losses(new_logprob, b_logprobs[mb], b_advantages[mb], new_value.view(-1), b_values[mb],
                                    b_returns[mb], entropy, config)  # fmt: skip
                fractions.append(losses["clip_fraction"].item())
                optimizer.zero_grad()
                losses["loss"].backward()
                nn.utils.clip_grad_norm_(agent.parameters(), config.max_grad_norm)
                optimizer.step()
            if config.target_kl is not None and losses["approx_kl"] > config.target_kl:
                stop_early = True
                break

        predicted, actual = b_values.numpy(), b_returns.numpy()
        variance = np.var(actual)
        explained = np.nan if variance == 0 else 1 - np.var(actual - predicted) / variance
        recent = state.recent[-20:]
        log({
            "charts/learning_rate": optimizer.param_groups[0]["lr"],
            "charts/episodic_return": np.mean([r for r, _ in recent]) if recent else np.nan,
            "charts/episodic_length": np.mean([le for _, le in recent]) if recent else np.nan,
            "charts/steps_per_second": (state.global_step - steps_at_start) / (time.perf_counter() - started),
            "losses/value_loss": losses["value_loss"].item(),
            "losses/policy_loss": losses["policy_loss"].item(),
            "losses/entropy": losses["entropy"].item(),
            "losses/approx_kl": losses["approx_kl"].item(),
            "losses/clip_fraction": float(np.mean(fractions)),
            "losses/explained_variance": float(explained),
            "losses/stopped_early": float(stop_early),
        } | ({"charts/joint_error_mm": 1000 * float(np.mean(joint_errors[-t_steps:]))} if joint_errors else {}),
            state.global_step)  # fmt: skip
        on_iteration(state)
    return state
