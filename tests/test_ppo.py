"""PPO's maths on small exact inputs (rl/ppo.py), each against a numpy or hand computation.

The pure pieces (the policy's RunningMeanStd, ReturnScaler, compute_gae, ppo_losses) are called directly. What
lives inside `train`'s loop (the truncation bootstrap, what the normaliser sees, learning-rate
annealing, the target_kl stop) is driven through a scripted vector environment: 2 copies, a
1-number observation, observations, rewards and episode ends that ignore the actions, and a
critic set to V(s) = s so every value is a number written in the test.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from myocli.rl import ppo
from myocli.rl.policy import Agent, PolicyConfig, RunningMeanStd
from myocli.rl.ppo import PPOConfig, ReturnScaler, TrainingState, compute_gae, ppo_losses


def numpy_statistics(samples) -> tuple[np.ndarray, np.ndarray]:
    """numpy's mean and (population) variance of the rows of `samples`, with RunningMeanStd's starting
    prior (1e-4 pseudo-samples of mean 0 and variance 1) as two extra rows, +1 and -1, of weight 5e-5 each."""
    samples = np.asarray(samples, dtype=np.float64)
    rows = np.concatenate([samples, np.ones((1, *samples.shape[1:])), -np.ones((1, *samples.shape[1:]))])
    weights = np.r_[np.ones(len(samples)), 5e-5, 5e-5]
    mean = np.average(rows, axis=0, weights=weights)
    return mean, np.average((rows - mean) ** 2, axis=0, weights=weights)


# -- the observation normaliser ------------------------------------------------------------------


def test_running_statistics_equal_numpy_over_every_batch_concatenated():
    """After batches of different sizes, the running mean and variance are those of all the samples together."""
    rng = np.random.default_rng(0)
    batches = [rng.normal([3.0, -2.0], [2.0, 0.5], size=(n, 2)) for n in (4, 6, 2, 7)]
    rms = RunningMeanStd((2,))
    for batch in batches:
        rms.update(torch.as_tensor(batch))
    every = np.concatenate(batches)
    mean, var = numpy_statistics(every)
    np.testing.assert_allclose(rms.mean.numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(rms.var.numpy(), var, rtol=1e-12)
    # The prior is negligible here: these are numpy's plain statistics of the 19 samples to 1e-3.
    np.testing.assert_allclose(mean, every.mean(0), rtol=1e-3)
    np.testing.assert_allclose(var, every.var(0), rtol=1e-3)
    assert rms.count.item() == pytest.approx(len(every) + 1e-4, rel=1e-12)


def test_normalised_observations_use_the_running_statistics_and_are_clipped_at_10():
    """The policy sees (x - mean) / sqrt(var + 1e-8) of the running statistics, clipped to [-10, 10], in float32."""
    batches = [np.array([[1.0, 10.0], [3.0, 10.0]]), np.array([[2.0, 10.0], [6.0, 10.0], [8.0, 10.0]])]
    agent = Agent(PolicyConfig(observation_dim=2, action_dim=1, hidden=[]))
    for batch in batches:
        agent.obs_rms.update(torch.as_tensor(batch))
    # Column 0: mean ~4, variance ~6.8; column 1 is constant: its variance, ~0.002, is the prior's.
    mean, var = numpy_statistics(np.concatenate(batches))
    probe = np.array([[4.0, 10.0], [mean[0] + 2 * np.sqrt(var[0]), 10.0], [100.0, 11.0], [-100.0, 9.0]])
    expected = np.clip((probe - mean) / np.sqrt(var + 1e-8), -10.0, 10.0)
    assert expected[1, 0] == pytest.approx(2.0)  # two standard deviations above the mean
    np.testing.assert_array_equal(expected[2:], [[10.0, 10.0], [-10.0, -10.0]])  # both columns clip
    normalised = agent.normalize(torch.as_tensor(probe))
    assert normalised.dtype == torch.float32
    np.testing.assert_allclose(normalised.numpy(), expected, rtol=1e-6, atol=1e-6)


# -- return scaling ------------------------------------------------------------------------------


def test_return_scaler_divides_rewards_by_the_running_std_of_discounted_returns():
    """reward / std(every discounted return so far), the return restarting where an episode ended."""
    scaler = ReturnScaler(num_envs=2, gamma=0.9)
    rewards = [[1.0, 3.0], [2.0, -1.0], [0.5, 4.0]]
    dones = [[0, 0], [0, 1], [1, 0]]
    # By hand: G <- 0.9 * G * (1 - done) + reward (the copy that ends this step restarts its return at this reward).
    returns = [[1.0, 3.0], [0.9 * 1.0 + 2.0, -1.0], [0.5, 0.9 * -1.0 + 4.0]]
    seen = []
    for reward, done, expected_return in zip(rewards, dones, returns, strict=True):
        scaled = scaler(np.array(reward), np.array(done, dtype=np.float64))
        np.testing.assert_allclose(scaler.returns, expected_return, rtol=1e-12)
        seen += expected_return
        np.testing.assert_allclose(scaled, np.array(reward) / np.sqrt(numpy_statistics(seen)[1] + 1e-8), rtol=1e-12)
    assert np.std(seen) == pytest.approx(np.std([1.0, 3.0, 2.9, -1.0, 0.5, 3.1]))


def test_return_scaler_clips_scaled_rewards_at_10():
    """With one return seen its std is ~0: the scaled reward is clipped to +-10 rather than blowing up."""
    positive, negative = ReturnScaler(1, 0.9), ReturnScaler(1, 0.9)
    assert positive(np.array([2.0]), np.zeros(1)).tolist() == [10.0]
    assert negative(np.array([-2.0]), np.zeros(1)).tolist() == [-10.0]


# -- generalised advantage estimation ------------------------------------------------------------


def test_gae_by_hand_with_an_episode_end_inside_and_at_the_end_of_the_rollout():
    """Advantages and returns of a 3-step rollout, gamma = lambda = 0.5, worked out by hand."""
    rewards = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    values = torch.tensor([[0.5, 0.5], [1.0, 1.0], [1.5, 1.5]])
    # Copy 1: the observation at step 1 began a new episode, and the last step ended one.
    dones = torch.tensor([[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    next_value, next_done = torch.tensor([2.0, 2.0]), torch.tensor([0.0, 1.0])
    advantages, returns = ppo.compute_gae(rewards, values, dones, next_value, next_done, 0.5, 0.5)
    # Copy 0, deltas r + 0.5 V' - V: [1.0, 1.75, 2.5]; A_t = delta_t + 0.25 A_{t+1}.
    # Copy 1, deltas: [1 - 0.5, 1.75, 3 - 1.5] (no value across an episode end); A = [0.5, 1.75 + 0.25 * 1.5, 1.5].
    expected = np.array([[1.59375, 0.5], [2.375, 2.125], [2.5, 1.5]])
    np.testing.assert_array_equal(advantages.numpy(), expected)  # binary fractions: exact in float32
    np.testing.assert_array_equal(returns.numpy(), expected + values.numpy())


# -- advantage normalisation and the KL estimate -------------------------------------------------


def _policy_loss(advantages, ratios, norm_adv: bool) -> float:
    config = PPOConfig(norm_adv=norm_adv, clip_coef=0.2)
    new = torch.log(torch.tensor(ratios, dtype=torch.float32))
    zeros = torch.zeros(len(ratios))
    losses = ppo.ppo_losses(new, zeros, torch.tensor(advantages), zeros, zeros, zeros, zeros, config)
    return losses["policy_loss"].item()


def test_advantages_are_normalised_within_the_minibatch():
    """norm_adv: the minibatch's advantages become (A - mean) / (sample std + 1e-8) before the clipped objective."""
    advantages, ratios = np.array([1.0, 2.0, 4.0, 9.0]), np.array([1.0, 1.1, 0.9, 1.05])  # ratios inside the clip
    normalised = (advantages - advantages.mean()) / (advantages.std(ddof=1) + 1e-8)
    assert _policy_loss(advantages, ratios, norm_adv=True) == pytest.approx(-np.mean(normalised * ratios), rel=1e-5)
    assert _policy_loss(advantages, ratios, norm_adv=False) == pytest.approx(-np.mean(advantages * ratios), rel=1e-6)
    # A minibatch of one has no spread to normalise by: its advantage is used as it is, not NaN.
    assert _policy_loss(np.array([3.0]), np.array([1.1]), norm_adv=True) == pytest.approx(-3.3, rel=1e-6)


def test_approx_kl_is_the_mean_of_ratio_minus_one_minus_log_ratio():
    """approx_kl, which target_kl is compared with, is mean((r - 1) - log r) (Schulman's low-variance estimator)."""
    ratios = np.array([1.5, 0.8])
    config = PPOConfig()
    new, zeros = torch.log(torch.tensor(ratios, dtype=torch.float32)), torch.zeros(2)
    losses = ppo.ppo_losses(new, zeros, torch.tensor([1.0, -1.0]), zeros, zeros, zeros, zeros, config)
    expected = np.mean((ratios - 1) - np.log(ratios))  # 0.0588394...; the naive mean(-log r) would be -0.0912
    assert losses["approx_kl"].item() == pytest.approx(expected, rel=1e-5)


# -- inside the training loop, on a scripted environment -----------------------------------------

FIRST_OBS = np.array([[1.0], [2.0]])
# Step by step: the observations returned (after autoreset), rewards, terminated, truncated, and the
# finished copies' last observations (NaN where a copy did not finish, so using one poisons the sums).
NAN = np.nan
SCRIPT_OBS = np.array([[[1.5], [2.5]], [[0.0], [3.0]], [[0.5], [-1.0]], [[1.0], [-0.5]]])
SCRIPT_REWARDS = np.array([[0.5, 1.0], [2.0, 1.5], [1.0, 3.0], [0.25, 0.75]], dtype=np.float32)
SCRIPT_TERMINATED = np.array([[False, False], [False, False], [False, True], [False, False]])
SCRIPT_TRUNCATED = np.array([[False, False], [True, False], [False, False], [False, False]])
SCRIPT_FINAL_OBS = np.array([[[NAN], [NAN]], [[5.0], [NAN]], [[NAN], [7.0]], [[NAN], [NAN]]])


class ScriptedEnvs:
    """Two copies following the script above (repeated), whatever the actions; same-step autoreset."""

    def __init__(self):
        self.t = 0

    def reset(self, seed=None):
        return FIRST_OBS.copy(), {}

    def step(self, actions):
        t = self.t % len(SCRIPT_OBS)
        self.t += 1
        terminated, truncated = SCRIPT_TERMINATED[t].copy(), SCRIPT_TRUNCATED[t].copy()
        done = terminated | truncated
        info = {"final_obs": SCRIPT_FINAL_OBS[t].copy(), "_final_obs": done} if done.any() else {}
        return SCRIPT_OBS[t].copy(), SCRIPT_REWARDS[t].copy(), terminated, truncated, info


def _value_is_the_observation_agent() -> Agent:
    """An agent with a linear critic V(s) = s on the normalised observation."""
    torch.manual_seed(0)
    agent = Agent(PolicyConfig(observation_dim=1, action_dim=1, hidden=[]))
    with torch.no_grad():
        agent.critic[0].weight.fill_(1.0)
        agent.critic[0].bias.zero_()
    return agent


def _train(agent: Agent, iterations: int = 1, **settings) -> tuple[TrainingState, list[dict]]:
    config = PPOConfig(total_steps=iterations * 2 * 4, num_envs=2, num_steps=4, num_minibatches=2,
                       gamma=0.5, gae_lambda=0.5, **{"update_epochs": 1, "learning_rate": 1e-3} | settings)  # fmt: skip
    np.random.seed(0)
    state = TrainingState(agent, torch.optim.Adam(agent.parameters(), lr=config.learning_rate, eps=1e-5))
    logs = []
    ppo.train(ScriptedEnvs(), state, config, lambda entry, step: logs.append(entry))
    return state, logs


@pytest.fixture
def gae_calls(monkeypatch) -> list[dict]:
    """Every compute_gae call `train` makes: its inputs and its result."""
    calls, real = [], ppo.compute_gae

    def recording(rewards, values, dones, next_value, next_done, gamma, gae_lambda):
        advantages, returns = real(rewards, values, dones, next_value, next_done, gamma, gae_lambda)
        names = ("rewards", "values", "dones", "next_value", "next_done", "advantages", "returns")
        tensors = (rewards, values, dones, next_value, next_done, advantages, returns)
        calls.append({name: tensor.clone().numpy() for name, tensor in zip(names, tensors, strict=True)})
        return advantages, returns

    monkeypatch.setattr(ppo, "compute_gae", recording)
    return calls


@pytest.mark.parametrize("normalize_reward", [False, True])
def test_truncated_episodes_bootstrap_from_their_final_observation_and_terminated_ones_do_not(gae_calls, monkeypatch, normalize_reward):  # fmt: skip
    """A time-limit end adds gamma * V(final observation) to its (scaled) reward; a termination adds nothing."""
    agent = _value_is_the_observation_agent()
    monkeypatch.setattr(agent.obs_rms, "update", lambda batch: None)  # statistics held at mean 0, var 1: V(s) = s
    _train(agent, normalize_reward=normalize_reward)
    (call,) = gae_calls
    scaled = SCRIPT_REWARDS.astype(np.float64)
    if normalize_reward:  # the scaler's own maths is checked above; here: it sees truncations as ends too
        replay = ReturnScaler(2, 0.5)
        scaled = np.stack([replay(r, (te | tr).astype(np.float64)) for r, te, tr in
                           zip(SCRIPT_REWARDS, SCRIPT_TERMINATED, SCRIPT_TRUNCATED, strict=True)])  # fmt: skip
    bootstrap = np.zeros((4, 2))
    bootstrap[1, 0] = 0.5 * 5.0  # copy 0 truncated at step 1, its final observation 5.0 (its next one, 0.0, is a reset)
    # (copy 1 terminated at step 2 with final observation 7.0: nothing is added)
    np.testing.assert_allclose(call["rewards"], scaled + bootstrap, rtol=1e-6)
    np.testing.assert_array_equal(call["values"], [[1.0, 2.0], [1.5, 2.5], [0.0, 3.0], [0.5, -1.0]])
    np.testing.assert_array_equal(call["dones"], [[0, 0], [0, 0], [1, 0], [0, 1]])  # step t began a new episode
    np.testing.assert_array_equal(call["next_value"], [1.0, -0.5])
    np.testing.assert_array_equal(call["next_done"], [0, 0])
    if not normalize_reward:  # by hand, gamma = lambda = 0.5
        expected = np.array([
            [0.25 + 0.25 * 3.0, 0.25 + 0.25 * 0.5],  # deltas 0.5 + 0.5*1.5 - 1 and 1 + 0.5*2.5 - 2
            [2.0 + 0.5 * 5.0 - 1.5, 1.5 + 0.5 * 3.0 - 2.5],  # copy 0 truncated: bootstrapped from V(5.0), then cut
            [1.0 + 0.5 * 0.5 - 0.0 + 0.25 * 0.25, 3.0 - 3.0],  # copy 1 terminated: r - V, no V(7.0)
            [0.25 + 0.5 * 1.0 - 0.5, 0.75 + 0.5 * -0.5 + 1.0],
        ])  # fmt: skip
        np.testing.assert_allclose(call["advantages"], expected, rtol=1e-6)


def test_the_normaliser_is_fed_every_observation_the_policy_acts_on():
    """After one rollout the running statistics are numpy's over the 4 x 2 observations acted on (not final ones)."""
    agent = _value_is_the_observation_agent()
    _train(agent)
    acted_on = np.concatenate([FIRST_OBS, *SCRIPT_OBS[:3]])  # the last step's next observation is not acted on yet
    mean, var = numpy_statistics(acted_on)
    np.testing.assert_allclose(agent.obs_rms.mean.numpy(), mean, rtol=1e-12)
    np.testing.assert_allclose(agent.obs_rms.var.numpy(), var, rtol=1e-12)


def test_learning_rate_anneals_linearly_towards_zero_over_the_iterations():
    """Iteration i of n (from 1) learns at rate * (1 - (i - 1) / n); a resumed run goes on from its iteration."""
    _, logs = _train(_value_is_the_observation_agent(), iterations=4, learning_rate=1e-3)
    np.testing.assert_allclose([e["charts/learning_rate"] for e in logs], [1e-3, 7.5e-4, 5e-4, 2.5e-4], rtol=1e-12)

    config = PPOConfig(total_steps=4 * 8, num_envs=2, num_steps=4, num_minibatches=2, update_epochs=1, learning_rate=1e-3)  # fmt: skip
    agent = _value_is_the_observation_agent()
    state = TrainingState(agent, torch.optim.Adam(agent.parameters(), lr=1.0), iteration=2)  # 2 of 4 done
    logs = []
    ppo.train(ScriptedEnvs(), state, config, lambda entry, step: logs.append(entry))
    np.testing.assert_allclose([e["charts/learning_rate"] for e in logs], [5e-4, 2.5e-4], rtol=1e-12)

    _, logs = _train(_value_is_the_observation_agent(), iterations=3, learning_rate=1e-3, anneal_lr=False)
    assert [e["charts/learning_rate"] for e in logs] == [1e-3] * 3


@pytest.mark.parametrize(
    "target_kl, minibatch_updates, stopped", [(None, 8, 0.0), (0.05, 4, 1.0), (0.08, 8, 1.0), (0.1, 8, 0.0)]
)
def test_target_kl_stops_the_update_after_the_epoch_whose_kl_exceeds_it(monkeypatch, target_kl, minibatch_updates, stopped):  # fmt: skip
    """4 epochs x 2 minibatches with scripted KLs: the first epoch ending above target_kl is the last one run
    (an epoch ending exactly at target_kl, 0.08, is not above it)."""
    kls, real = iter([0.0, 0.01, 0.02, 0.08, 0.0, 0.01, 0.03, 0.09]), ppo.ppo_losses
    calls = []

    def scripted_kl(*args, **kwargs):
        losses = real(*args, **kwargs)
        calls.append(losses)
        return losses | {"approx_kl": torch.tensor(next(kls))}

    monkeypatch.setattr(ppo, "ppo_losses", scripted_kl)
    _, logs = _train(_value_is_the_observation_agent(), update_epochs=4, target_kl=target_kl)
    assert len(calls) == minibatch_updates
    assert logs[0]["losses/stopped_early"] == stopped


def test_humanoid_v5_trains_through_a_time_limit_truncation():
    """Humanoid-v5 (Gymnasium's vector env) survives an episode cut by its time limit."""
    from myocli.rl.gym_humanoid import HumanoidEnvs, _time_limit

    envs = HumanoidEnvs(2)
    for env in envs.envs:
        _time_limit(env)._max_episode_steps = 3  # truncated long before the body can fall
    torch.manual_seed(0)
    agent = Agent(PolicyConfig(observation_dim=envs.single_observation_space.shape[0],
                               action_dim=envs.single_action_space.shape[0], hidden=[8]))  # fmt: skip
    state = TrainingState(agent, torch.optim.Adam(agent.parameters(), lr=1e-4))
    config = PPOConfig(total_steps=8, num_envs=2, num_steps=4, num_minibatches=2, update_epochs=1)
    ppo.train(envs, state, config, lambda *_: None)
    assert state.iteration == 1 and len(state.recent) == 2  # both copies' 3-step episodes ended and were counted


# -- the losses on exact inputs, by hand ---------------------------------------------------------


def _losses(
    ratios, advantages, new_value, old_value, returns, entropy, old_logprob=None, **settings
) -> dict[str, float]:
    config = PPOConfig(**{"norm_adv": False, "clip_coef": 0.2} | settings)
    old = torch.zeros(len(ratios)) if old_logprob is None else torch.tensor(old_logprob, dtype=torch.float32)
    new = old + torch.log(torch.tensor(ratios, dtype=torch.float32))
    tensors = [torch.tensor(v, dtype=torch.float32) for v in (advantages, new_value, old_value, returns, entropy)]
    losses = ppo.ppo_losses(new, old, tensors[0], tensors[1], tensors[2], tensors[3], tensors[4], config)
    return {name: value.item() for name, value in losses.items()}


def test_policy_loss_clips_the_ratio_on_both_sides_and_reads_only_the_log_ratio():
    """The clipped objective mean(max(-A r, -A clip(r, 1 - eps, 1 + eps))), by hand for a ratio above and
    below the clip with each sign of advantage; the log-probabilities matter only through their difference."""
    ratios, advantages = [1.5, 0.5, 1.5, 0.5, 1.1], [1.0, -1.0, -1.0, 1.0, 2.0]
    # Per sample: clipped at 1.2 (-1.2); clipped at 0.8 (0.8); unclipped (1.5); unclipped (-0.5); inside (-2.2).
    expected = np.mean([-1.2, 0.8, 1.5, -0.5, -2.2])
    zeros = [0.0] * 5
    assert _losses(ratios, advantages, zeros, zeros, zeros, zeros)["policy_loss"] == pytest.approx(expected, rel=1e-6)
    old = [0.3, -2.0, 1.0, -0.5, 4.0]
    assert _losses(ratios, advantages, zeros, zeros, zeros, zeros, old)["policy_loss"] == pytest.approx(
        expected, rel=1e-6
    )


def test_advantages_of_a_minibatch_of_two_are_normalised_and_a_near_constant_one_stays_bounded():
    """norm_adv applies from two samples on; with a spread near 1e-8 the +1e-8 keeps the scale bounded."""
    ratios = [1.0, 1.1]
    zeros = [0.0, 0.0]
    # Two advantages normalise to -+1/sqrt(2) (sample std): loss -(-0.7071 * 1.0 + 0.7071 * 1.1) / 2.
    loss = _losses(ratios, [1.0, 3.0], zeros, zeros, zeros, zeros, norm_adv=True)["policy_loss"]
    assert loss == pytest.approx(-0.05 / np.sqrt(2), rel=1e-5)
    tiny = np.array([0.0, 2e-8], dtype=np.float32)
    std = float(torch.tensor(tiny).std())
    normalised = (tiny - tiny.mean()) / (std + 1e-8)
    expected = -np.mean(normalised * ratios)
    assert _losses(ratios, tiny.tolist(), zeros, zeros, zeros, zeros, norm_adv=True)["policy_loss"] == pytest.approx(
        expected, rel=1e-4
    )


def test_clipped_value_loss_by_hand():
    """0.5 * mean(max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) - R)^2)), with the value moved past the
    clip both ways, inside it, and where the unclipped error is the larger."""
    old = [1.0, 1.0, 1.0, 1.0]
    new = [1.5, 0.5, 1.1, 1.5]
    returns = [2.0, 0.0, 1.0, 0.0]
    # clipped values: 1.2, 0.8, 1.1, 1.2; squared errors unclipped 0.25, 0.25, 0.01, 2.25; clipped 0.64, 0.64, 0.01, 1.44.
    expected = 0.5 * np.mean([0.64, 0.64, 0.01, 2.25])
    losses = _losses([1.0] * 4, [0.0] * 4, new, old, returns, [0.0] * 4)
    assert losses["value_loss"] == pytest.approx(expected, rel=1e-6)
    unclipped = _losses([1.0] * 4, [0.0] * 4, new, old, returns, [0.0] * 4, clip_vloss=False)
    assert unclipped["value_loss"] == pytest.approx(0.5 * np.mean([0.25, 0.25, 0.01, 2.25]), rel=1e-6)


def test_clip_fraction_counts_ratios_strictly_outside_the_clip():
    """clip_fraction is the share of |r - 1| > eps: ratios exactly on the boundary (exact in float32) are inside."""
    zeros = [0.0] * 6
    ratios = [1.25, 0.75, 1.5, 0.5, 1.0, 1.1]
    assert _losses(ratios, zeros, zeros, zeros, zeros, zeros, clip_coef=0.25)["clip_fraction"] == pytest.approx(2 / 6)


def test_total_loss_combines_the_terms_with_their_coefficients():
    """loss = policy_loss - ent_coef * entropy + vf_coef * value_loss."""
    losses = _losses(
        [1.5, 0.5], [1.0, -1.0], [1.5, 0.0], [1.0, 0.0], [2.0, 1.0], [1.0, 3.0], ent_coef=0.1, vf_coef=0.25
    )
    assert losses["entropy"] == pytest.approx(2.0)
    expected = losses["policy_loss"] - 0.1 * 2.0 + 0.25 * losses["value_loss"]
    assert losses["loss"] == pytest.approx(expected, rel=1e-6)
    assert losses["value_loss"] == pytest.approx(0.5 * np.mean([0.64, 1.0]), rel=1e-6)


# -- the policy network ---------------------------------------------------------------------------


def test_running_statistics_of_a_float32_batch_are_computed_in_float64():
    """A float32 batch updates the statistics exactly as its float64 copy does."""
    batch = torch.tensor([[0.1], [0.2], [0.7], [1.3], [2.9]], dtype=torch.float32)
    single, double = RunningMeanStd((1,)), RunningMeanStd((1,))
    single.update(batch)
    double.update(batch.to(torch.float64))
    assert torch.equal(single.mean, double.mean) and torch.equal(single.var, double.var)


def _singular_values(layer: torch.nn.Linear) -> np.ndarray:
    return torch.linalg.svdvals(layer.weight.detach()).numpy()


def test_layers_are_orthogonal_with_cleanrls_gains():
    """Hidden layers: orthogonal with gain sqrt(2); the critic's head gain 1, the actor's 0.01; all biases 0;
    every hidden layer kept, in order."""
    agent = Agent(PolicyConfig(observation_dim=4, action_dim=2, hidden=[8, 6]))
    for network, head_gain, outputs in ((agent.critic, 1.0, 1), (agent.actor_mean, 0.01, 2)):
        linear = [m for m in network if isinstance(m, torch.nn.Linear)]
        assert [tuple(m.weight.shape) for m in linear] == [(8, 4), (6, 8), (outputs, 6)]
        for layer in linear[:-1]:
            np.testing.assert_allclose(_singular_values(layer), np.sqrt(2), rtol=1e-5)
        np.testing.assert_allclose(_singular_values(linear[-1]), head_gain, rtol=1e-5)
        assert all((m.bias == 0).all() for m in linear)


def test_a_constant_observation_normalises_to_zero_not_nan():
    """The +1e-8 under the square root: a feature that never varies (its variance shrinks below 1e-8) still
    normalises to a finite value."""
    agent = Agent(PolicyConfig(observation_dim=1, action_dim=1, hidden=[]))
    agent.obs_rms.update(torch.zeros(100_000, 1, dtype=torch.float64))
    assert agent.obs_rms.var.item() < 1e-8
    assert agent.normalize(torch.zeros(1, 1, dtype=torch.float64)).item() == 0.0


def test_log_probability_and_entropy_are_per_sample():
    """get_action_and_value gives one log-probability and one entropy per observation, summed over action
    dimensions only."""
    torch.manual_seed(0)
    agent = Agent(PolicyConfig(observation_dim=2, action_dim=3, hidden=[4]))
    observations = torch.tensor([[0.0, 1.0], [2.0, -1.0], [0.5, 0.5]], dtype=torch.float64)
    actions = torch.tensor([[0.1, -0.2, 0.3], [1.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    _, logprob, entropy, value = agent.get_action_and_value(observations, actions)
    with torch.no_grad():
        mean = agent.actor_mean(agent.normalize(observations))
        normal = torch.distributions.Normal(mean, agent.actor_logstd.exp().expand_as(mean))
        assert logprob.shape == entropy.shape == (3,) and value.shape == (3, 1)
        torch.testing.assert_close(logprob, normal.log_prob(actions).sum(1))
        torch.testing.assert_close(entropy, normal.entropy().sum(1))


# -- what `train` logs and feeds the update, on a scripted environment -----------------------------


class DetailedEnvs(ScriptedEnvs):
    """ScriptedEnvs with every observation moved by 0.1 (not exact in float32), a joint error per copy
    ((t + 1) cm and 3 cm at script step t), the reset seeds recorded, and optionally no episode ends."""

    def __init__(self, ends: bool = True):
        super().__init__()
        self.ends, self.seeds = ends, []

    def reset(self, seed=None):
        self.seeds.append(seed)
        observation, info = super().reset(seed)
        return observation + 0.1, info

    def step(self, actions):
        t = self.t % len(SCRIPT_OBS)
        observation, reward, terminated, truncated, info = super().step(actions)
        if not self.ends:
            terminated, truncated, info = terminated & False, truncated & False, {}
        if "final_obs" in info:
            info["final_obs"] = info["final_obs"] + 0.1
        return (
            observation + 0.1,
            reward,
            terminated,
            truncated,
            info | {"joint_error": np.array([0.01 * (t + 1), 0.03])},
        )


def _run(envs, iterations: int = 1, global_step: int = 0, **settings):
    """Train the V(s) = s agent on `envs`; (state, [(step, log entry)], states passed to on_iteration)."""
    config = PPOConfig(total_steps=iterations * 2 * 4, num_envs=2, num_steps=4, num_minibatches=2,
                       gamma=0.5, gae_lambda=0.5, **{"update_epochs": 1, "learning_rate": 1e-3} | settings)  # fmt: skip
    np.random.seed(0)
    agent = _value_is_the_observation_agent()
    state = TrainingState(agent, torch.optim.Adam(agent.parameters(), lr=1e-3), global_step=global_step)
    logs, seen = [], []
    ppo.train(envs, state, config, lambda entry, step: logs.append((step, entry)), on_iteration=seen.append)
    return state, logs, seen


LOG_KEYS = {
    "charts/learning_rate", "charts/episodic_return", "charts/episodic_length", "charts/steps_per_second",
    "losses/value_loss", "losses/policy_loss", "losses/entropy", "losses/approx_kl", "losses/clip_fraction",
    "losses/explained_variance", "losses/stopped_early", "charts/joint_error_mm",
}  # fmt: skip


def test_each_iteration_logs_its_episodes_speed_joint_error_and_explained_variance(monkeypatch, gae_calls):
    """Two iterations of a run resumed at step 1000, with a fake clock: the log's keys, the global step it is
    logged at, the finished episodes' mean return and length (returns and lengths restart at 0 after an end),
    steps per second since the run (re)started, the mean joint error of the iteration in mm, the critic's
    explained variance, the reset seed, and the state handed to on_iteration."""
    clock = iter([100.0, 104.0, 110.0])  # start, first log, second log
    monkeypatch.setattr(ppo, "time", type("Clock", (), {"perf_counter": staticmethod(lambda: next(clock))}))
    envs = DetailedEnvs()
    state, logs, seen = _run(envs, iterations=2, global_step=1000, seed=7)
    assert envs.seeds == [7]
    assert [step for step, _ in logs] == [1008, 1016]
    assert all(set(entry) == LOG_KEYS for _, entry in logs)
    # Episodes: copy 0 truncated after 2 steps (0.5 + 2.0), copy 1 terminated after 3 (1.0 + 1.5 + 3.0); then,
    # from the restart, copy 0 after 4 more (1.0 + 0.25 + 0.5 + 2.0) and copy 1 after 4 (0.75 + 1.0 + 1.5 + 3.0).
    assert state.recent == [(2.5, 2), (5.5, 3), (3.75, 4), (6.25, 4)]
    entries = [entry for _, entry in logs]
    assert [e["charts/episodic_return"] for e in entries] == [4.0, 4.5]
    assert [e["charts/episodic_length"] for e in entries] == [2.5, 3.25]
    assert [e["charts/steps_per_second"] for e in entries] == [8 / 4.0, 16 / 10.0]
    for e in entries:  # per step the mean of the two copies: 20, 25, 30, 35 mm
        assert e["charts/joint_error_mm"] == pytest.approx(27.5, rel=1e-12)
    for e, call in zip(entries, gae_calls, strict=True):
        returns, values = call["returns"].reshape(-1), call["values"].reshape(-1)
        expected = 1 - np.var(returns - values) / np.var(returns)
        assert e["losses/explained_variance"] == pytest.approx(expected, rel=1e-6)
    assert len(seen) == 2 and all(s is state for s in seen)


def test_an_iteration_without_finished_episodes_logs_nan_without_warnings():
    """No episode ended yet: the mean return and length are NaN, without numpy's empty-mean warning."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, logs, _ = _run(DetailedEnvs(ends=False))
    ((_, entry),) = logs
    assert np.isnan(entry["charts/episodic_return"]) and np.isnan(entry["charts/episodic_length"])


def test_explained_variance_is_nan_when_the_returns_do_not_vary(monkeypatch):
    """With every return equal, explained variance is undefined: NaN, not -inf."""
    monkeypatch.setattr(ppo, "compute_gae", lambda rewards, values, *rest: (torch.zeros_like(values), torch.ones_like(values)))  # fmt: skip
    _, logs, _ = _run(ScriptedEnvs())
    assert np.isnan(logs[0][1]["losses/explained_variance"])


def test_the_last_100_episodes_are_kept_and_the_log_averages_the_last_20():
    """After 60 iterations (120 episodes) the run keeps 100, and logs the mean return of the last 20."""
    state, logs, _ = _run(ScriptedEnvs(), iterations=60)
    assert len(state.recent) == 100
    last_20, last_21 = (np.mean([r for r, _ in state.recent[-n:]]) for n in (20, 21))
    assert last_21 != pytest.approx(last_20)  # so the 21st from the end would show
    assert logs[-1][1]["charts/episodic_return"] == pytest.approx(last_20)


def test_every_epoch_updates_on_each_step_taken_once_with_its_own_observation_and_action(monkeypatch):
    """The update's minibatches (2 of 4) cover the 8 (observation, action) pairs of the rollout exactly once
    per epoch, observations exactly as acted on (float64) and actions as taken, not resampled."""
    agent = _value_is_the_observation_agent()
    real = agent.get_action_and_value
    taken, updates = [], []

    def recording(observation, action=None):
        result = real(observation, action)
        rows = [tuple(o) + tuple(a) for o, a in zip(observation.tolist(), result[0].tolist(), strict=True)]
        (taken if action is None else updates).append((observation.dtype, rows))
        return result

    monkeypatch.setattr(agent, "get_action_and_value", recording)
    config = PPOConfig(total_steps=8, num_envs=2, num_steps=4, num_minibatches=2, update_epochs=2)
    np.random.seed(0)
    ppo.train(
        DetailedEnvs(), TrainingState(agent, torch.optim.Adam(agent.parameters(), lr=1e-3)), config, lambda *_: None
    )
    rollout = sorted(row for _, rows in taken for row in rows)
    assert len(rollout) == 8 and len(updates) == 4
    for epoch in (updates[:2], updates[2:]):
        assert [len(rows) for _, rows in epoch] == [4, 4]
        assert all(dtype == torch.float64 for dtype, _ in epoch)
        assert sorted(row for _, rows in epoch for row in rows) == rollout


def test_an_environment_without_joint_errors_logs_none():
    """charts/joint_error_mm is logged only by environments that report a joint error (tracking, not Humanoid-v5)."""
    _, logs, _ = _run(ScriptedEnvs())
    assert set(logs[0][1]) == LOG_KEYS - {"charts/joint_error_mm"}


def test_gae_matches_its_definition():
    rng = np.random.default_rng(0)
    rewards, values = torch.tensor(rng.normal(size=(5, 2)), dtype=torch.float32), torch.tensor(rng.normal(size=(5, 2)), dtype=torch.float32)
    dones = torch.zeros(5, 2)
    dones[3, 1] = 1.0  # the observation at step 3 of copy 1 began a new episode
    next_value, next_done = torch.tensor([0.5, -0.2]), torch.zeros(2)
    gamma = 0.9
    # lambda = 0: one-step TD errors.
    advantages, returns = compute_gae(rewards, values, dones, next_value, next_done, gamma, 0.0)
    following = torch.cat([values[1:], next_value[None]])
    nonterminal = 1.0 - torch.cat([dones[1:], next_done[None]])
    np.testing.assert_allclose(advantages, rewards + gamma * following * nonterminal - values, atol=1e-6)
    np.testing.assert_allclose(returns, advantages + values, atol=1e-6)
    # lambda = 1: discounted return to the end of the episode (bootstrapped at the rollout's end) minus the value.
    advantages, _ = compute_gae(rewards, values, dones, next_value, next_done, gamma, 1.0)
    for copy in range(2):
        for t in range(5):
            total, discount, step = 0.0, 1.0, t
            while True:
                total += discount * rewards[step, copy].item()
                discount *= gamma
                step += 1
                if step == 5:
                    total += discount * next_value[copy].item()
                    break
                if dones[step, copy]:
                    break
            assert advantages[t, copy].item() == pytest.approx(total - values[t, copy].item(), abs=1e-5)


def test_ppo_losses_clip_the_ratio_and_the_value():
    config = PPOConfig(norm_adv=False, clip_coef=0.2, ent_coef=0.0, vf_coef=0.5)
    old = torch.zeros(4)
    new = torch.log(torch.tensor([1.0, 1.1, 1.5, 0.5])).requires_grad_()
    advantages = torch.tensor([1.0, 1.0, 1.0, -1.0])
    value, old_value, returns = torch.tensor([1.0, 2.0, 0.0, 0.0], requires_grad=True), torch.zeros(4), torch.tensor([1.0, 1.0, 0.0, 0.0])
    losses = ppo_losses(new, old, advantages, value, old_value, returns, torch.zeros(4), config)
    # Ratios 1.5 (advantage +) and 0.5 (advantage -) are clipped: they add a constant and no gradient.
    assert losses["policy_loss"].item() == pytest.approx(-(1.0 + 1.1 + 1.2 - 0.8) / 4)
    assert losses["clip_fraction"].item() == pytest.approx(0.5)
    losses["loss"].backward()
    assert new.grad[2] == 0 and new.grad[3] == 0 and new.grad[0] != 0
    # Value 2.0 against old 0.0 is clipped to 0.2: the larger of the two errors counts.
    expected_value = 0.5 * np.mean([max((1.0 - 1) ** 2, (0.2 - 1) ** 2), max((2.0 - 1) ** 2, (0.2 - 1) ** 2), 0.0, 0.0])
    assert losses["value_loss"].item() == pytest.approx(expected_value)
