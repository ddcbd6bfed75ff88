"""A batch of episodes for M tasks x N episodes, time-major, with a validity mask."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch import Tensor


@dataclass
class Episodes:
    """Episodes of M tasks x N episodes of up to T steps; steps after an episode ended have ``mask == 0``.

    All tensors are time-major: ``[T, M, N, ...]``.
    """

    observations: Tensor  # [T, M, N, obs_dim]
    actions: Tensor  # [T, M, N, action_dim]
    rewards: Tensor  # [T, M, N], zero where masked
    mask: Tensor  # [T, M, N], 1.0 for steps that belong to an episode
    log_probs: Tensor  # [T, M, N], log-density of the action under the behaviour policy
    advantages: Tensor | None = None  # [T, M, N], filled by baseline.compute_advantages
    successes: Tensor | None = None  # [T, M, N], 1.0 where the benchmark's success flag was set (Meta-World)
    # task-major copies, each kept with the tensor it was made from, so a reassigned field is never served stale
    _task_major: dict[str, tuple[Tensor, Tensor]] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def num_tasks(self) -> int:
        """M."""
        return self.rewards.shape[1]

    @property
    def episodes_per_task(self) -> int:
        """N."""
        return self.rewards.shape[2]

    @property
    def num_steps(self) -> int:
        """Valid environment steps in the batch."""
        return int(self.mask.sum().item())

    def episode_returns(self) -> Tensor:
        """Undiscounted return of each episode, ``[M, N]``."""
        return self.rewards.sum(0)

    def episode_successes(self) -> Tensor | None:
        """Whether each episode succeeded (the flag set at any of its steps, as Meta-World defines it), ``[M, N]``
        as 0.0 or 1.0; None for a family without a success flag."""
        return None if self.successes is None else self.successes.amax(0)

    def mean_return(self) -> float:
        """Mean undiscounted return over all episodes."""
        return float(self.episode_returns().mean().item())

    def to(self, device: torch.device | str | torch.dtype) -> Episodes:
        """A copy with every tensor on ``device`` (one copy per phase, not per step), or in that dtype."""
        tensors = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        return Episodes(**{k: (v.to(device) if v is not None else None) for k, v in tensors.items()})

    def select_tasks(self, tasks: slice | list[int]) -> Episodes:
        """The episodes of some tasks only (task dimension 1), e.g. ``select_tasks(slice(m, m + 1))``."""
        tensors = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        return Episodes(**{k: (v[:, tasks] if v is not None else None) for k, v in tensors.items()})

    @classmethod
    def join_tasks(cls, batches: list[Episodes]) -> Episodes:
        """Batches of different tasks (the same horizon and episodes per task) as one, in order along dimension 1."""
        names = [f.name for f in fields(cls) if f.init]
        return cls(**{name: None if getattr(batches[0], name) is None
                      else torch.cat([getattr(batch, name) for batch in batches], dim=1) for name in names})

    def select_episodes(self, episodes: slice | list[int]) -> Episodes:
        """Some episodes of every task only (episode dimension 2), e.g. ``select_episodes(slice(0, 5))``."""
        tensors = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        return Episodes(**{k: (v[:, :, episodes] if v is not None else None) for k, v in tensors.items()})

    def task_major(self, name: str) -> Tensor:
        """Field ``name`` as ``[M, T, N, ...]`` (contiguous; cached until the field is reassigned: tensors are not
        modified in place) for the task-batched policy forward."""
        source = getattr(self, name)
        cached = self._task_major.get(name)
        if cached is None or cached[0] is not source:
            cached = self._task_major[name] = (source, source.transpose(0, 1).contiguous())
        return cached[1]


def masked_task_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of task-major ``[M, T, N]`` values over each task's valid steps: ``[M]``."""
    return (values * mask).sum(dim=(1, 2)) / mask.sum(dim=(1, 2)).clamp_min(1.0)
