"""The task-family interface shared by every family: sample tasks, set a task, read it back.

A *task* is a flat vector of plain numbers (a goal position, a target speed) living in the family's
``task_space``, a float64 :class:`gymnasium.spaces.Box`. Single environments get ``set_task`` / ``task``
from :class:`TaskEnvMixin`; vector environments get ``set_tasks`` / ``tasks`` (one task per sub-env) from
:class:`VectorTaskEnvMixin`. Both validate through :func:`validate_tasks`, so a bad task fails the same
way everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces

__all__ = ["DirectionTasks", "TaskEnvMixin", "VectorTaskEnvMixin", "describe_env", "validate_tasks"]


def _format_bounds(task_space: spaces.Box) -> str:
    """Render the bounds of a task space compactly for error messages."""
    low, high = task_space.low, task_space.high
    if np.all(low == low.flat[0]) and np.all(high == high.flat[0]):
        return f"[{low.flat[0]:g}, {high.flat[0]:g}] in every coordinate"
    return f"low={low.tolist()}, high={high.tolist()}"


def describe_env(env: Any) -> str:
    """Name an env for error messages: its class and, when it was built by Gymnasium, its registered id."""
    spec = getattr(env, "spec", None)
    env_id = getattr(spec, "id", None)
    name = type(env).__name__
    return f"{name}({env_id})" if env_id else name


def validate_tasks(
    tasks: Any, task_space: spaces.Box, where: str, num_tasks: int | None = None
) -> np.ndarray:
    """Check tasks against ``task_space``; return a fresh float64 array or raise ``ValueError``.

    :param tasks: one task (shape ``task_space.shape``) when ``num_tasks`` is None, else a batch of
        shape ``[num_tasks, *task_space.shape]``; lists, tuples and arrays are accepted.
    :param task_space: the family's task space (bounds are inclusive).
    :param where: who is asking (e.g. ``"Navigation2DEnv(meta_rl/Navigation2D-v0).set_task"``); it
        starts every error message.
    :param num_tasks: expected number of tasks, or None for a single task.
    """
    try:
        arr = np.array(tasks, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{where}: task(s) {tasks!r} are not a numeric array; expected shape "
            f"{_expected_shape(task_space, num_tasks)} of numbers in {_format_bounds(task_space)}"
        ) from exc

    expected = _expected_shape(task_space, num_tasks)
    if task_space.shape == (1,) and arr.shape == expected[:-1]:
        arr = arr.reshape(expected)  # one-number tasks may be given bare: 1.5, or [1.5, 0.3] for a batch
    if arr.shape != expected:
        if num_tasks is not None and arr.ndim == len(expected) and arr.shape[1:] == expected[1:]:
            raise ValueError(
                f"{where}: got {arr.shape[0]} tasks but need exactly {num_tasks} (one per sub-env); "
                f"expected shape {expected}"
            )
        raise ValueError(
            f"{where}: task(s) {tasks!r} have shape {arr.shape}, expected shape {expected} "
            f"with values in {_format_bounds(task_space)}"
        )

    finite = np.isfinite(arr)
    if not finite.all():
        bad_index = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ValueError(
            f"{where}: task value {float(arr[bad_index])!r} at index {bad_index} is not finite; "
            f"tasks must be finite numbers in {_format_bounds(task_space)}"
        )

    low = np.broadcast_to(task_space.low, arr.shape)
    high = np.broadcast_to(task_space.high, arr.shape)
    outside = (arr < low) | (arr > high)
    if outside.any():
        bad_index = tuple(int(i) for i in np.argwhere(outside)[0])
        raise ValueError(
            f"{where}: task value {float(arr[bad_index])!r} at index {bad_index} is outside the task space; "
            f"allowed: {_format_bounds(task_space)} (task {arr.tolist()!r})"
        )
    return arr


def _expected_shape(task_space: spaces.Box, num_tasks: int | None) -> tuple[int, ...]:
    """Shape a single task (``num_tasks`` None) or a batch of tasks must have."""
    return tuple(task_space.shape) if num_tasks is None else (num_tasks, *task_space.shape)


class _TaskSamplingMixin:
    """Seeded task sampling shared by single and vector envs: uniform in ``task_space`` unless overridden.

    A family also says here what it supports, so callers never match env-id strings.
    """

    task_space: spaces.Box
    observe_task: ClassVar[bool] = False  # the observation includes the task (the oracle baselines' variants)
    plots_trajectories: ClassVar[bool] = False  # the first two observation entries are a position in the plane
    reports_success: ClassVar[bool] = False  # each step's info has the benchmark's ``success`` flag (Meta-World)
    max_envs_per_task: ClassVar[int | None] = None  # at most this many sub-envs per task; the rest run after them
    max_episode_steps: ClassVar[int | None] = None  # the env ends every episode by then (a longer horizon is an error)

    @property
    def task_dim(self) -> int:
        """Number of numbers in one task."""
        return int(np.prod(self.task_space.shape))

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``num_tasks`` tasks with ``rng``, shape ``[num_tasks, *task_space.shape]``, float64.

        The default is uniform in ``task_space``; a family with another task distribution overrides this.
        """
        num_tasks = self._checked_num_tasks(num_tasks, rng)
        return rng.uniform(
            self.task_space.low, self.task_space.high, size=(num_tasks, *self.task_space.shape)
        ).astype(np.float64)

    def sample_held_out_tasks(self, num_tasks: int, rng: np.random.Generator) -> np.ndarray:
        """Tasks to evaluate on, ``[num_tasks, *task_space.shape]``: the training distribution (drawn with a seed of
        its own) unless the family has held-out tasks of its own, as benchmarks with a test split do."""
        return self.sample_tasks(num_tasks, rng)

    def held_out_task_set(self) -> np.ndarray | None:
        """The family's fixed set of held-out tasks (a benchmark's test split), or None where it draws them."""
        return None

    def _checked_num_tasks(self, num_tasks: Any, rng: Any) -> int:
        """``num_tasks`` as an int, after checking it and ``rng`` (a ``TypeError``/``ValueError`` naming them)."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(
                f"{describe_env(self)}.sample_tasks: rng must be a numpy.random.Generator "
                f"(e.g. numpy.random.default_rng(seed)), got {type(rng).__name__}"
            )
        if isinstance(num_tasks, bool) or not isinstance(num_tasks, int | np.integer) or num_tasks < 0:
            raise ValueError(
                f"{describe_env(self)}.sample_tasks: num_tasks must be a non-negative int, got {num_tasks!r}"
            )
        return int(num_tasks)


class TaskEnvMixin(_TaskSamplingMixin):
    """Task interface of a single env: ``task_space``, ``sample_tasks``, ``set_task`` and ``task``.

    The env must set ``self.task_space`` (float64 Box) and call ``set_task`` in its constructor; it reads
    the current task from ``self._task``.
    """

    _task: np.ndarray

    def set_task(self, task: Sequence[float] | np.ndarray) -> None:
        """Set the task (validated against ``task_space``); takes effect at once and survives resets."""
        self._task = validate_tasks(task, self.task_space, f"{describe_env(self)}.set_task")

    @property
    def task(self) -> np.ndarray:
        """A copy of the current task, float64, shape ``task_space.shape``."""
        return self._task.copy()


class VectorTaskEnvMixin(_TaskSamplingMixin):
    """Task interface of a vector env: one task per sub-env via ``set_tasks`` / ``tasks``.

    ``task_space`` is the space of ONE task; ``tasks`` has shape ``[num_envs, *task_space.shape]``.
    Native implementations store the validated tasks in ``self._tasks``; wrappers override
    ``set_tasks`` / ``tasks``.
    """

    num_envs: int
    _tasks: np.ndarray

    def _validate_vector_tasks(self, tasks: Any) -> np.ndarray:
        """Validate a ``[num_envs, *task_space.shape]`` batch of tasks and return it as float64."""
        return validate_tasks(
            tasks, self.task_space, f"{describe_env(self)}.set_tasks", num_tasks=self.num_envs
        )

    def set_tasks(self, tasks: Sequence[Sequence[float]] | np.ndarray) -> None:
        """Set one task per sub-env (shape ``[num_envs, *task_space.shape]``); takes effect immediately."""
        self._tasks = self._validate_vector_tasks(tasks)

    @property
    def tasks(self) -> np.ndarray:
        """A copy of the current tasks, float64, shape ``[num_envs, *task_space.shape]``."""
        return self._tasks.copy()


class DirectionTasks:
    """Tasks that are a direction along one axis, -1 (backward) or +1 (forward), each with probability 1/2; for a
    single env (``set_task``) and a vector env (``set_tasks``) alike. List it before the family's env class."""

    task_space: spaces.Box
    num_envs: int

    def set_task(self, task: Sequence[float] | np.ndarray) -> None:
        """Set the direction, -1 or +1."""
        where = f"{describe_env(self)}.set_task"
        self._task = _check_directions(validate_tasks(task, self.task_space, where), where)

    def set_tasks(self, tasks: Any) -> None:
        """Set one direction (-1 or +1) per sub-env, shape ``[num_envs, 1]``."""
        where = f"{describe_env(self)}.set_tasks"
        self._tasks = _check_directions(validate_tasks(tasks, self.task_space, where, num_tasks=self.num_envs), where)

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``num_tasks`` directions, -1 or +1 with equal probability, shape ``[num_tasks, 1]``."""
        uniform = super().sample_tasks(num_tasks, rng)  # type: ignore[misc]  (uniform in [-1, 1]; checks the args)
        return np.where(uniform < 0.0, -1.0, 1.0)


def _check_directions(tasks: np.ndarray, where: str) -> np.ndarray:
    """Directions must be exactly -1 or +1."""
    bad = ~np.isin(tasks, (-1.0, 1.0))
    if bad.any():
        raise ValueError(f"{where}: direction {float(tasks[bad][0])!r} is not allowed; allowed: -1.0 or 1.0")
    return tasks
