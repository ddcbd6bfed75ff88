"""Tests for discounted returns, the per-task linear feature baseline and GAE, against numpy references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from meta_rl.baseline import compute_advantages, discount_cumsum, fit_linear_baseline
from meta_rl.episodes import Episodes

T, M, N, OBS_DIM, ACTION_DIM = 12, 3, 4, 2, 2


def random_mask(rng: np.random.Generator, horizon: int, num_tasks: int, num_eps: int) -> np.ndarray:
    """Mask ``[T, M, N]``: ones for each episode's length, then zeros; some episodes full, one of length 1."""
    lengths = rng.integers(1, horizon + 1, size=(num_tasks, num_eps))
    lengths[0, 0] = horizon
    lengths[-1, -1] = 1
    lengths[1, 1] = horizon
    t = np.arange(horizon)[:, None, None]
    return (t < lengths[None]).astype(np.float64)


def make_episodes(seed: int, obs_scale: float = 8.0) -> Episodes:
    """Random float64 episodes; observations large enough that some are clipped at +-10."""
    rng = np.random.default_rng(seed)
    mask = random_mask(rng, T, M, N)
    obs = rng.normal(size=(T, M, N, OBS_DIM)) * obs_scale * mask[..., None]
    # a different offset per task so the per-task fits differ
    obs += np.arange(M)[None, :, None, None] * 0.5 * mask[..., None]
    actions = rng.normal(size=(T, M, N, ACTION_DIM)) * mask[..., None]
    rewards = rng.normal(size=(T, M, N)) * mask - 0.5 * mask
    log_probs = np.zeros((T, M, N))
    to = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    return Episodes(to(obs), to(actions), to(rewards), to(mask), to(log_probs))


def np_discounted(x: np.ndarray, discount: float) -> np.ndarray:
    """Plain Python discounted cumulative sum of a 1-D array."""
    out = np.zeros_like(x)
    for t in range(len(x)):
        out[t] = sum(discount**k * x[t + k] for k in range(len(x) - t))
    return out


def np_returns(rewards: np.ndarray, mask: np.ndarray, gamma: float) -> np.ndarray:
    """Per-episode discounted returns with a Python loop, zero after each episode ends."""
    out = np.zeros_like(rewards)
    for m in range(rewards.shape[1]):
        for n in range(rewards.shape[2]):
            length = int(mask[:, m, n].sum())
            out[:length, m, n] = np_discounted(rewards[:length, m, n], gamma)
    return out


def np_fit(obs: np.ndarray, mask: np.ndarray, returns: np.ndarray, reg: float = 1e-5) -> np.ndarray:
    """Per-task ridge regression with numpy.linalg.solve on valid steps only; fitted values ``[T, M, N]``."""
    horizon, num_tasks, num_eps, _ = obs.shape
    values = np.zeros((horizon, num_tasks, num_eps))
    for m in range(num_tasks):
        rows, targets, where = [], [], []
        for n in range(num_eps):
            for t in range(horizon):
                if mask[t, m, n] == 0:
                    continue
                o = np.clip(obs[t, m, n], -10.0, 10.0)
                s = t / 100.0
                rows.append(np.concatenate([o, o**2, [s, s**2, s**3, 1.0]]))
                targets.append(returns[t, m, n])
                where.append((t, n))
        x, y = np.array(rows), np.array(targets)
        w = np.linalg.solve(x.T @ x + reg * np.eye(x.shape[1]), x.T @ y)
        for (t, n), v in zip(where, x @ w, strict=True):
            values[t, m, n] = v
    return values


# -------------------------------------------------------------------------------------- discounting


@pytest.mark.parametrize("discount", [1.0, 0.99, 0.5])
def test_discount_cumsum_matches_python_loop(discount: float) -> None:
    rng = np.random.default_rng(0)
    mask = random_mask(rng, T, M, N)
    values = rng.normal(size=(T, M, N))  # garbage on masked steps too: it must not leak into episodes
    got = discount_cumsum(torch.as_tensor(values), torch.as_tensor(mask), discount)
    expected = np_returns(values * mask, mask, discount)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)
    assert np.all(got.numpy()[mask == 0] == 0.0)


def test_discount_cumsum_hand_computed() -> None:
    values = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    mask = torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=torch.float64)
    got = discount_cumsum(values, mask, 0.5)
    torch.testing.assert_close(got, torch.tensor([1 + 1 + 0.75, 2 + 1.5, 3.0, 0.0], dtype=torch.float64))


# ---------------------------------------------------------------------------------------- baseline


@pytest.mark.parametrize("seed", [1, 2])
def test_fit_linear_baseline_matches_numpy_solve_per_task(seed: int) -> None:
    episodes = make_episodes(seed)
    obs, mask = episodes.observations.numpy(), episodes.mask.numpy()
    assert np.abs(obs).max() > 10.0  # the clipping is exercised
    returns = np_returns(episodes.rewards.numpy(), mask, 0.99)
    got = fit_linear_baseline(episodes, torch.as_tensor(returns)).numpy()
    expected = np_fit(obs, mask, returns)
    assert got.shape == (T, M, N)
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-8)
    assert np.all(got[mask == 0] == 0.0)
    # the fit is a real fit: residuals are smaller than the returns themselves
    assert np.sum((got - returns) ** 2) < np.sum(returns**2)


def test_fit_linear_baseline_tasks_are_independent() -> None:
    """Changing one task's returns changes only that task's fitted values."""
    episodes = make_episodes(3)
    mask = episodes.mask.numpy()
    returns = np_returns(episodes.rewards.numpy(), mask, 0.99)
    base = fit_linear_baseline(episodes, torch.as_tensor(returns)).numpy()
    returns2 = returns.copy()
    returns2[:, 1] += 5.0 * mask[:, 1]
    changed = fit_linear_baseline(episodes, torch.as_tensor(returns2)).numpy()
    np.testing.assert_array_equal(changed[:, [0, 2]], base[:, [0, 2]])
    # a constant shift of the targets is absorbed by the bias feature (up to the 1e-5 ridge on the bias)
    np.testing.assert_allclose(changed[:, 1], base[:, 1] + 5.0 * mask[:, 1], rtol=0, atol=1e-4)


# --------------------------------------------------------------------------------------- advantages


def np_gae(episodes: Episodes, gamma: float, lam: float) -> np.ndarray:
    """GAE per episode with numpy: delta_t = r_t + gamma V_{t+1} - V_t, V after the episode's end = 0."""
    obs, mask, rewards = episodes.observations.numpy(), episodes.mask.numpy(), episodes.rewards.numpy()
    values = np_fit(obs, mask, np_returns(rewards, mask, gamma))
    adv = np.zeros_like(rewards)
    for m in range(M):
        for n in range(N):
            length = int(mask[:, m, n].sum())
            v = np.append(values[:length, m, n], 0.0)
            deltas = rewards[:length, m, n] + gamma * v[1:] - v[:-1]
            adv[:length, m, n] = np_discounted(deltas, gamma * lam)
    return adv


@pytest.mark.parametrize("gae_lambda", [1.0, 0.95])
def test_compute_advantages_unnormalized_matches_numpy_gae(gae_lambda: float) -> None:
    gamma = 0.99
    episodes = make_episodes(4)
    got = compute_advantages(episodes, gamma=gamma, gae_lambda=gae_lambda, normalize=False).numpy()
    expected = np_gae(episodes, gamma, gae_lambda)
    np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-8)
    mask = episodes.mask.numpy()
    assert np.all(got[mask == 0] == 0.0)
    if gae_lambda == 1.0:  # GAE(gamma, 1) telescopes to return minus baseline
        obs, rewards = episodes.observations.numpy(), episodes.rewards.numpy()
        returns = np_returns(rewards, mask, gamma)
        np.testing.assert_allclose(got, returns - np_fit(obs, mask, returns), rtol=1e-7, atol=1e-8)


def test_compute_advantages_normalized_per_task() -> None:
    episodes = make_episodes(5)
    raw = compute_advantages(episodes, gamma=0.99, gae_lambda=0.95, normalize=False).numpy()
    got = compute_advantages(episodes, gamma=0.99, gae_lambda=0.95, normalize=True).numpy()
    mask = episodes.mask.numpy().astype(bool)
    assert np.all(got[~mask] == 0.0)
    for m in range(M):
        valid = got[:, m][mask[:, m]]
        assert abs(valid.mean()) < 1e-10
        assert abs(valid.std() - 1.0) < 1e-6
        raw_valid = raw[:, m][mask[:, m]]
        np.testing.assert_allclose(valid, (raw_valid - raw_valid.mean()) / raw_valid.std(), rtol=1e-6, atol=1e-8)


def test_fit_linear_baseline_on_forty_tasks_of_168_features_with_two_threads() -> None:
    """A walker-oracle-sized fit (82 observations, 168 features, 40 tasks): torch 2.13's batched LU solve raised on
    two CPU threads here (and never returned at 150 features); the Cholesky solve must match numpy per task."""
    rng = np.random.default_rng(7)
    horizon, num_tasks, num_eps, obs_dim = 25, 40, 8, 82
    mask = random_mask(rng, horizon, num_tasks, num_eps)
    obs = rng.normal(size=(horizon, num_tasks, num_eps, obs_dim)) * mask[..., None]
    rewards = rng.normal(size=(horizon, num_tasks, num_eps)) * mask
    to = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    zeros = np.zeros((horizon, num_tasks, num_eps))
    episodes = Episodes(to(obs), to(np.zeros((*zeros.shape, 2))), to(rewards), to(mask), to(zeros))
    returns = np_returns(rewards, mask, 0.99)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        got = fit_linear_baseline(episodes, torch.as_tensor(returns)).numpy()
    finally:
        torch.set_num_threads(threads)
    tasks = [0, 17, 39]
    expected = np_fit(obs[:, tasks], mask[:, tasks], returns[:, tasks])
    np.testing.assert_allclose(got[:, tasks], expected, rtol=1e-6, atol=1e-6)
