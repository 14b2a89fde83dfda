"""The policy network a PPO controller (rl/NAME) is made of: a Gaussian actor and a critic.

Top to bottom: the settings a checkpoint records (`PolicyConfig`), the running observation
statistics, and `Agent`, two tanh MLPs with orthogonal initialisation (CleanRL's) that read
observations normalised by those statistics, so a checkpoint carries its normalisation. The
learner that trains it is in ppo.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn

from myocli.config import DictConfig


@dataclass
class PolicyConfig(DictConfig):
    """What a checkpoint needs to rebuild the policy."""

    type: str = "ppo-policy"
    skeleton: str = "myo28"
    env: str = "tracking"  # or humanoid-v5
    observation_dim: int = 0
    action_dim: int = 0
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    init_log_std: float = -1.0
    humanoid_sha256: str = ""  # the MJCF the policy drives (tracking only)
    fps: float = 20.0  # motion frames per second the policy was trained at (tracking only)
    terminate_distance: float = 0.3
    follow_root: bool = False  # the reference slides along the floor with the body (rl/env.py)
    feet_weight: float = 0.0  # weight of the reward's feet term (rl/env.py)
    skate_weight: float = 0.0  # weight of the reward's skating penalty (rl/env.py)


class RunningMeanStd(nn.Module):
    """Running mean and variance of a stream (Chan et al.'s parallel update), kept as buffers."""

    def __init__(self, shape: tuple[int, ...] = ()):
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape, dtype=torch.float64))
        self.register_buffer("var", torch.ones(shape, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64))

    def update(self, batch: torch.Tensor) -> None:
        batch = batch.to(torch.float64)
        batch_mean, batch_var, n = batch.mean(0), batch.var(0, unbiased=False), batch.shape[0]
        delta, total = batch_mean - self.mean, self.count + n
        self.mean += delta * n / total
        self.var.copy_((self.var * self.count + batch_var * n + delta**2 * self.count * n / total) / total)
        self.count.fill_(total)


def _layer(inputs: int, outputs: int, gain: float = np.sqrt(2)) -> nn.Linear:
    layer = nn.Linear(inputs, outputs)
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def _mlp(inputs: int, hidden: list[int], outputs: int, last_gain: float) -> nn.Sequential:
    layers, width = [], inputs
    for size in hidden:
        layers += [_layer(width, size), nn.Tanh()]
        width = size
    return nn.Sequential(*layers, _layer(width, outputs, last_gain))


class Agent(nn.Module):
    def __init__(self, config: PolicyConfig):
        super().__init__()
        self.config = config
        self.obs_rms = RunningMeanStd((config.observation_dim,))
        self.critic = _mlp(config.observation_dim, config.hidden, 1, 1.0)
        self.actor_mean = _mlp(config.observation_dim, config.hidden, config.action_dim, 0.01)
        self.actor_logstd = nn.Parameter(torch.full((1, config.action_dim), config.init_log_std))

    def normalize(self, observation: torch.Tensor) -> torch.Tensor:
        scaled = (observation - self.obs_rms.mean) / torch.sqrt(self.obs_rms.var + 1e-8)
        return scaled.clamp(-10.0, 10.0).to(torch.float32)

    def get_value(self, observation: torch.Tensor) -> torch.Tensor:
        return self.critic(self.normalize(observation))

    def get_action_and_value(self, observation: torch.Tensor, action: torch.Tensor | None = None):
        x = self.normalize(observation)
        mean = self.actor_mean(x)
        distribution = torch.distributions.Normal(mean, self.actor_logstd.expand_as(mean).exp())
        if action is None:
            action = distribution.sample()
        return action, distribution.log_prob(action).sum(1), distribution.entropy().sum(1), self.critic(x)

    @torch.no_grad()
    def act(self, observation: np.ndarray) -> np.ndarray:
        """The deterministic action (the mean) for evaluation."""
        return self.actor_mean(self.normalize(torch.as_tensor(observation, dtype=torch.float64))).numpy()

    @torch.no_grad()
    def value(self, observation: np.ndarray) -> np.ndarray:
        """The critic's estimate (N,) of the discounted return from each observation."""
        return self.get_value(torch.as_tensor(observation, dtype=torch.float64)).numpy()[:, 0]
