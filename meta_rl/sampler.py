"""Collect M tasks x N episodes in one vector environment, with one batched policy call per step."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np
import torch

from meta_rl.adaptation import expand_to_tasks
from meta_rl.config import Config, ConfigError
from meta_rl.episodes import Episodes
from meta_rl.policy import GaussianMLPPolicy, Params, is_task_batched
from meta_rl.streams import EpisodeStreams
from meta_rl_envs.base import describe_env


class SamplerBackend(Protocol):
    """What the trainer, ``meta-rl evaluate`` and the adaptation API need of a sampler, whichever backend runs it:
    :class:`Sampler` here, or :class:`~meta_rl.ray_sampler.RaySampler` on Ray workers, with the same numbers."""

    num_tasks: int
    episodes_per_task: int
    horizon: int

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> np.ndarray:
        """Tasks from the family's distribution, ``[num_tasks, task_dim]``."""
        ...

    def collect(self, params: Params, tasks: np.ndarray, streams: EpisodeStreams,
                episodes: np.ndarray | None = None) -> Episodes:
        """One episode per (task, episode index), each from its own random stream."""
        ...

    def close(self) -> None:
        """Release the environments (and workers)."""
        ...


@contextlib.contextmanager
def _single_torch_thread() -> Iterator[None]:
    """Run torch on one thread while stepping: the per-step policy call is small, and idle OpenMP workers
    spin-waiting between calls would take CPU from threaded physics (measured: 39k -> 43k half-cheetah env
    steps/s on 2 cores)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class Sampler:
    """Steps ``num_tasks * episodes_per_task`` episodes together for a fixed horizon, one per sub-environment.

    Sub-environment ``m * N + n`` runs episode ``n`` of task ``m``, once per :meth:`collect`; after it ends
    (terminated or truncated) its steps are masked out, so the Gymnasium autoreset step that follows is never
    counted or learned from. A family whose sub-envs are heavy caps them per task (``max_envs_per_task``, K): then
    there are ``M * K`` sub-envs and a task's episodes run K at a time, in rounds, each from its own streams (the
    numbers differ from all at once only by the rounding of the policy's forward pass over a smaller batch).

    :param env_id: Gymnasium id of a task family.
    :param env_kwargs: keyword arguments for the environment.
    :param num_tasks: M.
    :param episodes_per_task: N.
    :param horizon: H, steps per episode at most.
    :param policy: the policy (its parameters are passed to :meth:`collect`).
    :param num_threads: threads stepping the environments where the family steps them in threads (half-cheetah);
        None or 0 uses every core.
    """

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict,
        num_tasks: int,
        episodes_per_task: int,
        horizon: int,
        policy: GaussianMLPPolicy,
        num_threads: int | None = None,
    ) -> None:
        from meta_rl_envs import family_class, make_task_vec

        self.num_tasks = num_tasks
        self.episodes_per_task = episodes_per_task
        self.horizon = horizon
        self.policy = policy
        try:
            family = family_class(env_id)
        except ValueError:  # an env registered some other way: a plain task env, no family attributes
            family = None
        self.reports_success = bool(getattr(family, "reports_success", False))
        limit = getattr(family, "max_episode_steps", None)
        if limit is not None and horizon > limit:
            raise ValueError(f"horizon {horizon} is longer than {env_id}'s episodes, which end after {limit} steps; "
                             f"use horizon <= {limit}")
        self.envs_per_task = _envs_per_task(episodes_per_task, getattr(family, "max_envs_per_task", None))
        self.envs = make_task_vec(
            env_id, num_tasks * self.envs_per_task, max_episode_steps=horizon, num_threads=num_threads, **env_kwargs
        )

    def close(self) -> None:
        """Release the environments."""
        self.envs.close()

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> np.ndarray:
        """Tasks from the family's distribution, ``[num_tasks, task_dim]``."""
        return self.envs.sample_tasks(num_tasks, rng)

    def collect(
        self,
        params: Params,
        tasks: np.ndarray,
        streams: EpisodeStreams,
        episodes: Sequence[int] | None = None,
    ) -> Episodes:
        """Run one episode per sub-env with ``params`` (task-batched ``[M, ...]`` or shared).

        :param tasks: ``[M, task_dim]``, one task per row.
        :param streams: the collect's random streams; episode ``e`` resets with its own seed and draws its own
            action noise (:class:`~meta_rl.streams.EpisodeStreams`), whoever steps it.
        :param episodes: the collect-wide index of each sub-env's episode (default ``0 .. M*N - 1``, task-major):
            a shard of a larger collect passes its own.
        """
        num_tasks, num_eps, horizon = self.num_tasks, self.episodes_per_task, self.horizon
        if len(tasks) != num_tasks:
            raise ValueError(f"got {len(tasks)} tasks; this sampler was built for {num_tasks}")
        params = {k: v.detach().to("cpu", torch.float32) for k, v in params.items()}  # once per phase
        if is_task_batched(params) and params["log_std"].shape[0] != num_tasks:
            raise ValueError(f"parameters carry {params['log_std'].shape[0]} tasks; expected {num_tasks}")
        # One matmul per task, not one over all rows: BLAS rounds a row differently depending on how many rows
        # share the call, and the per-task shapes are the same however the tasks are split into shards.
        params = expand_to_tasks(params, num_tasks)
        episodes = np.arange(num_tasks * num_eps) if episodes is None else np.asarray(episodes)
        if episodes.shape != (num_tasks * num_eps,):
            raise ValueError(f"got {len(episodes)} episode indices; this sampler steps {num_tasks * num_eps}")
        action_dim = self.policy.action_dim
        seeds, noise = streams.draw(episodes, horizon, action_dim)  # noise [T, M*N, A]
        noise = torch.from_numpy(noise).view(horizon, num_tasks, num_eps, action_dim)
        seeds = np.asarray(seeds).reshape(num_tasks, num_eps)

        batch = Episodes(
            observations=torch.zeros(horizon, num_tasks, num_eps, self.policy.obs_dim),
            actions=torch.zeros(horizon, num_tasks, num_eps, action_dim),
            rewards=torch.zeros(horizon, num_tasks, num_eps),
            mask=torch.zeros(horizon, num_tasks, num_eps),
            log_probs=torch.zeros(horizon, num_tasks, num_eps),
            successes=torch.zeros(horizon, num_tasks, num_eps) if self.reports_success else None,
        )
        self.envs.set_tasks(np.repeat(np.asarray(tasks), self.envs_per_task, axis=0))
        with torch.no_grad(), _single_torch_thread():
            for start in range(0, num_eps, self.envs_per_task):  # episodes a family caps run in rounds
                columns = slice(start, start + self.envs_per_task)
                self._play(params, seeds[:, columns].reshape(-1).tolist(), noise[:, :, columns], batch, columns)
        return batch

    def _play(self, params: Params, seeds: list[int], noise: torch.Tensor, batch: Episodes, columns: slice) -> None:
        """One episode in each sub-env, written into episodes ``columns`` of every task in ``batch``."""
        num_tasks, num_envs, action_dim = self.num_tasks, self.envs_per_task, self.policy.action_dim
        obs, _ = self.envs.reset(seed=seeds)
        done = np.zeros(num_tasks * num_envs, dtype=bool)
        freeze = getattr(self.envs.unwrapped, "set_active", None)  # batched MuJoCo: step only unfinished episodes
        for t in range(self.horizon):
            obs_t = torch.as_tensor(obs, dtype=torch.float32).view(num_tasks, num_envs, -1)
            action, batch.log_probs[t, :, columns] = self.policy.sample(obs_t, params, noise[t])
            batch.observations[t, :, columns] = obs_t
            batch.actions[t, :, columns] = action
            alive = torch.from_numpy(~done).view(num_tasks, num_envs)
            batch.mask[t, :, columns] = alive
            if freeze is not None:
                freeze(~done)
            obs, reward, terminated, truncated, info = self.envs.step(
                self.policy.to_env(action.reshape(-1, action_dim).numpy()))
            reward = torch.as_tensor(reward, dtype=torch.float32).view(num_tasks, num_envs)
            batch.rewards[t, :, columns] = reward * alive
            if batch.successes is not None:
                if "success" not in info:  # every sub-env that is alive sets it; a wrapper or autoreset mode lost it
                    raise RuntimeError(f"{describe_env(self.envs.unwrapped)} reports success, but step {t}'s info "
                                       f"has no 'success' (keys: {sorted(info)}); sample with autoreset NEXT_STEP")
                success = torch.from_numpy(np.asarray(info["success"], dtype=bool)).view(num_tasks, num_envs)
                batch.successes[t, :, columns] = success & alive
            done |= terminated | truncated
            if done.all():
                break


def _envs_per_task(episodes_per_task: int, cap: int | None) -> int:
    """Sub-envs per task: every episode at once, or, where the family caps them, the most up to the cap that
    divide the episodes into equal rounds."""
    if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
        raise ValueError(f"a family's max_envs_per_task must be a positive int or None, got {cap!r}")
    if cap is None or cap >= episodes_per_task:
        return episodes_per_task
    return max(k for k in range(1, cap + 1) if episodes_per_task % k == 0)


def make_sampler(config: Config, policy: GaussianMLPPolicy, num_tasks: int, episodes_per_task: int) -> SamplerBackend:
    """The sampler ``config.sampler`` asks for: a local :class:`Sampler`, or a
    :class:`~meta_rl.ray_sampler.RaySampler` (Ray is an optional extra: a clear error without it)."""
    args = (config.env.id, config.env.kwargs, num_tasks, episodes_per_task, config.horizon, policy)
    if config.sampler.backend == "ray":
        try:
            from meta_rl.ray_sampler import RaySampler
        except ImportError as error:
            if (error.name or "").partition(".")[0] != "ray":
                raise
            raise ConfigError(f"sampler.backend: 'ray' needs Ray, which is not installed ({error}); install it with "
                              "pip install -e '.[ray]'") from None
        options = config.sampler
        return RaySampler(*args, num_threads=config.sampler_threads, num_workers=options.num_workers,
                          address=options.address, cpus_per_worker=options.cpus_per_worker,
                          timeout_s=options.timeout_s, start_timeout_s=options.start_timeout_s,
                          max_restarts=options.max_restarts)
    return Sampler(*args, num_threads=config.sampler_threads)
