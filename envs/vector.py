"""Build a vector env with the task interface for any registered family, native where one exists."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv

from meta_rl_envs.base import VectorTaskEnvMixin, describe_env

__all__ = ["TaskSyncVectorEnv", "make_task_vec"]

NAMESPACE = "meta_rl"


class TaskSyncVectorEnv(SyncVectorEnv, VectorTaskEnvMixin):
    """``SyncVectorEnv`` of single task envs with the vector task interface (fallback for families
    without a native vector implementation): ``set_tasks`` calls each sub-env's ``unwrapped.set_task``.
    """

    def __init__(
        self,
        env_fns: Sequence[Callable[[], gymnasium.Env]],
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **vector_kwargs: Any,
    ) -> None:
        super().__init__(env_fns, autoreset_mode=autoreset_mode, **vector_kwargs)
        first = self.envs[0].unwrapped
        for attr in ("task_space", "set_task", "sample_tasks"):
            if not hasattr(first, attr):
                raise TypeError(
                    f"{describe_env(first)} has no `{attr}`: it is not a task env "
                    "(derive it from meta_rl_envs.TaskEnvMixin)"
                )
        self.task_space = first.task_space

    def set_tasks(self, tasks: Sequence[Sequence[float]] | np.ndarray) -> None:
        """Set one task per sub-env (shape ``[num_envs, *task_space.shape]``), via each ``set_task``."""
        validated = self._validate_vector_tasks(tasks)
        for env, task in zip(self.envs, validated, strict=True):
            env.unwrapped.set_task(task)

    @property
    def tasks(self) -> np.ndarray:
        """A copy of the current tasks, float64, shape ``[num_envs, *task_space.shape]``."""
        return np.stack([env.unwrapped.task for env in self.envs])

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> np.ndarray:
        """Draw tasks with the family's own distribution (delegates to the first sub-env)."""
        return self.envs[0].unwrapped.sample_tasks(num_tasks, rng)


def registered_ids(namespace: str = NAMESPACE) -> list[str]:
    """Sorted ids registered with Gymnasium under ``namespace/``."""
    return sorted(env_id for env_id in gymnasium.envs.registry if env_id.startswith(f"{namespace}/"))


def make_task_vec(env_id: str, num_envs: int, **env_kwargs: Any) -> VectorEnv:
    """Build ``num_envs`` sub-envs of a registered task family as one vector env with ``set_tasks``/``tasks``.

    Uses the family's native vector implementation (``gymnasium.make_vec(..., "vector_entry_point")``) when
    registered, else a :class:`TaskSyncVectorEnv` of ``gymnasium.make(env_id, **env_kwargs)``.
    ``autoreset_mode`` in ``env_kwargs`` is honoured on both paths.
    """
    if env_id not in gymnasium.envs.registry:
        raise ValueError(
            f"unknown env id {env_id!r}; registered {NAMESPACE}/ ids: {registered_ids()} "
            "(import meta_rl_envs registers them)"
        )
    spec = gymnasium.spec(env_id)
    if spec.vector_entry_point is not None:
        env = gymnasium.make_vec(env_id, num_envs, vectorization_mode="vector_entry_point", **env_kwargs)
        if not isinstance(env.unwrapped, VectorTaskEnvMixin):
            raise TypeError(
                f"the vector_entry_point of {env_id!r} built {type(env.unwrapped).__name__}, which lacks the "
                "task interface (derive it from meta_rl_envs.VectorTaskEnvMixin)"
            )
        return env

    autoreset_mode = env_kwargs.pop("autoreset_mode", AutoresetMode.NEXT_STEP)

    def make_one() -> gymnasium.Env:
        return gymnasium.make(env_id, **env_kwargs)

    return TaskSyncVectorEnv([make_one] * num_envs, autoreset_mode=autoreset_mode)
