"""Collect, process, adapt: the inner loop as the trainer and the adaptation API both run it.

Given initial parameters and tasks, sample one batch of episodes per inner step with the latest parameters, fit
the baseline, take the step, and finally sample the adapted policies' episodes (the query batch). The trainer
then differentiates through the steps again for the meta-gradient; the API keeps the adapted parameters.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import gymnasium
import numpy as np
import torch

from meta_rl.adaptation import StepSize, adapt
from meta_rl.baseline import compute_advantages
from meta_rl.config import Config, ConfigError
from meta_rl.episodes import Episodes
from meta_rl.policy import GaussianMLPPolicy, Params
from meta_rl.sampler import SamplerBackend
from meta_rl.streams import EpisodeStreams

__all__ = ["Adaptation", "collect_and_adapt", "make_policy", "process"]


def make_policy(config: Config) -> GaussianMLPPolicy:
    """The policy for ``config``'s environment (its observation and action sizes come from the env spaces)."""
    import meta_rl_envs  # noqa: F401  (registers the task families)

    env = gymnasium.make(config.env.id, **config.env.kwargs)
    try:
        obs_dim = int(np.prod(env.observation_space.shape))
        action_dim = int(np.prod(env.action_space.shape))
        low, high = (np.asarray(bound, dtype=np.float64).reshape(-1) for bound in
                     (env.action_space.low, env.action_space.high))
    finally:
        env.close()
    offset = multiplier = None
    if config.policy.action_scale > 0:
        if not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise ConfigError(f"policy.action_scale: {config.policy.action_scale!r} needs bounded actions; "
                              f"{config.env.id}'s are [{low.tolist()}, {high.tolist()}] (use 0 to act in its units)")
        offset = (high + low) / 2
        multiplier = config.policy.action_scale * (high - low) / 2
    return GaussianMLPPolicy(obs_dim, action_dim, config.policy.hidden_sizes, config.policy.activation,
                             config.policy.init_std, offset, multiplier)


def process(episodes: Episodes, config: Config) -> Episodes:
    """Fill in per-task GAE advantages (linear baseline fitted per task)."""
    episodes.advantages = compute_advantages(
        episodes, config.gamma, config.gae_lambda, normalize=config.normalize_advantages
    )
    return episodes


@dataclass
class Adaptation:
    """What :func:`collect_and_adapt` did: the adapted parameters and every batch it sampled."""

    params: Params  # after the last step, task-batched [M, ...], detached
    batches: list[Episodes]  # one per inner step (its support episodes), then the adapted policies' (the query)
    seconds: dict[str, float] = field(default_factory=lambda: {"sampling": 0.0, "adaptation": 0.0})

    @property
    def supports(self) -> list[Episodes]:
        """The batches the inner steps were taken on."""
        return self.batches[:-1]

    @property
    def query(self) -> Episodes:
        """The batch sampled after the last step."""
        return self.batches[-1]

    def task_returns(self) -> list[torch.Tensor]:
        """Mean undiscounted return per task ``[M]`` of each batch: after 0, 1, ... steps."""
        return [batch.episode_returns().mean(dim=1) for batch in self.batches]

    def task_successes(self) -> list[torch.Tensor] | None:
        """Success rate per task ``[M]`` of each batch (the share of its episodes that succeeded), or None for a
        family without a success flag."""
        if self.batches[0].successes is None:
            return None
        return [batch.episode_successes().mean(dim=1) for batch in self.batches]

    @property
    def env_steps(self) -> int:
        """Valid environment steps sampled."""
        return sum(batch.num_steps for batch in self.batches)


def synchronize(device: torch.device | str) -> None:
    """Wait for the work queued on a CUDA ``device``, so a wall-clock time covers it; nothing on the CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def collect_and_adapt(
    sampler: SamplerBackend,
    policy: GaussianMLPPolicy,
    params: Params,
    tasks: np.ndarray,
    schedule: Sequence[StepSize],
    config: Config,
    seed: int,
    key: Sequence[int],
    device: torch.device | str = "cpu",
) -> Adaptation:
    """Adapt ``params`` to each of ``tasks`` with one inner step per entry of ``schedule`` (a scalar step size, or
    Meta-SGD's per-parameter ones), each on fresh episodes sampled with the latest parameters; then sample once
    more with the adapted ones. Batches are moved to ``device`` (where the update runs), with advantages.

    :param config: supplies the discount, GAE, advantage normalisation and the inner estimator.
    :param seed: with ``key`` (naming this adaptation, e.g. ``(TRAINING, iteration)``), seeds batch ``k``'s episode
        streams: ``EpisodeStreams(seed, (*key, k))``.
    """
    adapted = {k: v.detach() for k, v in params.items()}
    result = Adaptation(adapted, [])
    for k, step_size in enumerate([*schedule, None]):
        tick = time.perf_counter()
        batch = process(sampler.collect(adapted, tasks, EpisodeStreams(seed, (*key, k))), config).to(device)
        result.batches.append(batch)
        result.seconds["sampling"] += time.perf_counter() - tick
        if step_size is None:
            break
        tick = time.perf_counter()
        if isinstance(step_size, dict):
            step_size = {name: value.detach() for name, value in step_size.items()}
        adapted = adapt(policy, adapted, batch, step_size, first_order=True, estimator=config.inner.estimator)
        synchronize(device)  # else a GPU's adaptation would be timed as the next collect's sampling
        result.seconds["adaptation"] += time.perf_counter() - tick
    result.params = adapted
    return result
