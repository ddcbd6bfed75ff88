"""Linear feature baseline fitted per task (batched over tasks), discounted returns, GAE and normalisation."""

from __future__ import annotations

import torch
from torch import Tensor

from meta_rl.episodes import Episodes


def discount_cumsum(values: Tensor, mask: Tensor, discount: float) -> Tensor:
    """``out[t] = sum_k discount^k values[t+k]`` within each episode, for time-major ``[T, ...]`` tensors."""
    out = torch.zeros_like(values)
    running = torch.zeros_like(values[0])
    for t in range(values.shape[0] - 1, -1, -1):
        running = (values[t] + discount * running) * mask[t]
        out[t] = running
    return out


def baseline_features(observations: Tensor, mask: Tensor) -> Tensor:
    """Features (obs, obs^2, t, t^2, t^3, 1) of each step, ``[T, M, N, 2 * obs_dim + 4]``, zero where masked.

    Time is ``t / 100`` as in rllab's linear feature baseline; observations are clipped to [-10, 10].
    """
    horizon = observations.shape[0]
    obs = observations.clamp(-10.0, 10.0)
    time = (torch.arange(horizon, dtype=obs.dtype, device=obs.device) / 100.0).view(horizon, 1, 1, 1)
    time = time.expand(*obs.shape[:-1], 1)
    features = torch.cat([obs, obs * obs, time, time**2, time**3, torch.ones_like(time)], dim=-1)
    return features * mask.unsqueeze(-1)


def fit_linear_baseline(episodes: Episodes, returns: Tensor, reg_coeff: float = 1e-5) -> Tensor:
    """Per-task ridge regression of ``returns`` on :func:`baseline_features`; the fitted values ``[T, M, N]``.

    All M tasks are solved in one batched Cholesky factorisation (float64; the ridge-regularised Gram matrix is
    symmetric positive definite). Not ``torch.linalg.solve``: torch 2.13's batched LU solve on several CPU
    threads failed (40 tasks, 168 features) or never returned (150). If a task's system is not positive definite
    the ridge coefficient grows tenfold, up to five times, as in rllab.
    """
    features = baseline_features(episodes.observations, episodes.mask).double()  # [T, M, N, F]
    horizon, num_tasks, num_eps, num_features = features.shape
    x = features.transpose(0, 1).reshape(num_tasks, horizon * num_eps, num_features)
    y = (returns * episodes.mask).double().transpose(0, 1).reshape(num_tasks, horizon * num_eps, 1)
    gram = x.transpose(1, 2) @ x  # [M, F, F]
    target = x.transpose(1, 2) @ y  # [M, F, 1]
    eye = torch.eye(num_features, dtype=gram.dtype, device=gram.device)
    for _ in range(5):
        factor, info = torch.linalg.cholesky_ex(gram + reg_coeff * eye)
        weights = torch.cholesky_solve(target, factor)
        if bool((info == 0).all()) and bool(torch.isfinite(weights).all()):
            break
        reg_coeff *= 10.0
    values = torch.einsum("tmnf,mf->tmn", features, weights.squeeze(-1))
    return values.to(returns.dtype) * episodes.mask


def compute_advantages(
    episodes: Episodes, gamma: float, gae_lambda: float, normalize: bool = True
) -> Tensor:
    """GAE(gamma, lambda) advantages ``[T, M, N]`` against the per-task linear baseline, normalised per task."""
    mask = episodes.mask
    returns = discount_cumsum(episodes.rewards, mask, gamma)
    values = fit_linear_baseline(episodes, returns)
    next_values = torch.cat([values[1:], torch.zeros_like(values[:1])]) * torch.cat(
        [mask[1:], torch.zeros_like(mask[:1])]
    )
    deltas = (episodes.rewards + gamma * next_values - values) * mask
    advantages = discount_cumsum(deltas, mask, gamma * gae_lambda)
    if normalize:
        advantages = normalize_per_task(advantages, mask)
    return advantages


def normalize_per_task(values: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """Zero mean, unit standard deviation over each task's valid steps (task dimension 1)."""
    count = mask.sum(dim=(0, 2), keepdim=True).clamp_min(1.0)
    mean = (values * mask).sum(dim=(0, 2), keepdim=True) / count
    var = (((values - mean) * mask) ** 2).sum(dim=(0, 2), keepdim=True) / count
    return (values - mean) / (var.sqrt() + eps) * mask
