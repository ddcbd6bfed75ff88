"""Build a vector env with the task interface for any registered family, native where one exists."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium.envs.registration import load_env_creator
from gymnasium.error import ResetNeeded
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, SyncVectorEnv, VectorEnv
from gymnasium.vector.utils import batch_space

from meta_rl_envs.base import VectorTaskEnvMixin, describe_env, validate_tasks

__all__ = ["NativeTaskVectorEnv", "TaskSyncVectorEnv", "make_task_vec"]

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


def check_positive_int(value: Any, name: str, who: str, hint: str = "") -> int:
    """``value`` as an int if it is a positive integer, else a ``ValueError`` naming it (``hint``, if given,
    follows "must be a positive int" to say what the number means)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{who}: {name} must be a positive int{hint}, got {value!r}")
    return int(value)


def check_bool(value: Any, name: str, who: str) -> bool:
    """``value`` if it is a bool, else a ``ValueError`` naming it (a string such as "false" would count as true)."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{who}: {name} must be true or false, got {value!r}")
    return bool(value)


def check_no_unused_kwargs(unused: dict[str, Any], env_class: type) -> None:
    """A ``TypeError`` naming any keyword ``env_class.__init__`` does not take, and the ones it does (derived from
    its signature, so the list cannot go stale); Python's own message would name neither the env nor the rest."""
    if unused:
        allowed = [name for name, parameter in inspect.signature(env_class.__init__).parameters.items()
                   if name != "self" and parameter.kind is not inspect.Parameter.VAR_KEYWORD]
        raise TypeError(f"{env_class.__name__}: unexpected keyword argument(s) {sorted(unused)}; allowed: "
                        f"{', '.join(allowed)}")


def check_nonnegative(value: Any, name: str, who: str) -> float:
    """``value`` as a float if it is a finite number >= 0, else a ``ValueError`` naming it."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating) \
            or not np.isfinite(value) or value < 0:
        raise ValueError(f"{who}: {name} must be a number >= 0, got {value!r}")
    return float(value)


def check_range(value: Any, name: str, who: str) -> tuple[float, float]:
    """``value`` as ``(low, high)`` if it is two numbers with ``low < high``, else a ``ValueError`` naming it."""
    try:
        low, high = (float(bound) for bound in value)
    except (TypeError, ValueError):
        low = high = float("nan")
    if not low < high:
        raise ValueError(f"{who}: {name} must be (low, high) with low < high, got {value!r}")
    return low, high


def check_choice(value: Any, name: str, allowed: tuple[str, ...], who: str) -> str:
    """``value`` if it is one of the strings ``allowed``, else a ``ValueError`` naming it and them."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{who}: {name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


class NativeTaskVectorEnv(VectorEnv, VectorTaskEnvMixin):
    """Base of the native vector envs: time limit, autoreset, seeding and ``reset_mask`` as ``SyncVectorEnv``.

    A subclass steps its physics for all sub-envs at once and implements two hooks:

    - ``_reset_subenvs(mask)``: put the sub-envs in ``mask`` in a fresh start state, drawing any noise from
      ``self.sub_env_rngs[i]``;
    - ``_step_subenvs(actions)``: advance every sub-env and return ``(rewards, terminations, infos)``: float64
      rewards, bool terminations, infos a dict of ``[num_envs]`` arrays;
    - ``_observations()``: the observations of every sub-env now, ``[num_envs, obs_dim]``.

    Everything else (``TimeLimit`` truncation at ``max_episode_steps``, ``NEXT_STEP`` autoreset with its
    reward-0 reset step, ``DISABLED`` autoreset with ``reset(options={"reset_mask": mask})``, per-sub-env
    seeds ``seed + i``) is here, so every native env behaves like ``SyncVectorEnv`` of its single env.
    """

    metadata: dict[str, Any] = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}  # noqa: RUF012

    def _init_vector(
        self,
        num_envs: int,
        max_episode_steps: int,
        autoreset_mode: AutoresetMode | str,
        single_observation_space: gymnasium.spaces.Box,
        single_action_space: gymnasium.spaces.Box,
        task_space: gymnasium.spaces.Box,
        task: Any,
        default_task: np.ndarray,
    ) -> None:
        """Validate the common arguments and set the spaces, tasks and bookkeeping."""
        who = type(self).__name__
        self.num_envs = check_positive_int(num_envs, "num_envs", who)
        self.max_episode_steps = check_positive_int(max_episode_steps, "max_episode_steps", who)
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError as exc:
            raise ValueError(
                f"{who}: unknown autoreset_mode {autoreset_mode!r}; allowed: AutoresetMode.NEXT_STEP, "
                "AutoresetMode.DISABLED"
            ) from exc
        if mode == AutoresetMode.SAME_STEP:
            raise ValueError(
                f"{who}: autoreset_mode={mode!r} is not implemented; allowed: AutoresetMode.NEXT_STEP, "
                "AutoresetMode.DISABLED (or use SyncVectorEnv of the single env for SAME_STEP)"
            )
        self.autoreset_mode = mode
        self.render_mode = None
        self.metadata = {**type(self).metadata, "autoreset_mode": mode}
        self.task_space = task_space
        self.single_observation_space = single_observation_space
        self.single_action_space = single_action_space
        self.observation_space = batch_space(single_observation_space, self.num_envs)
        self.action_space = batch_space(single_action_space, self.num_envs)

        single = validate_tasks(default_task if task is None else task, task_space, f"{who}(task=...)")
        self.set_tasks(np.tile(single, (self.num_envs, 1)))

        self.sub_env_rngs: list[np.random.Generator] = [seeding.np_random()[0] for _ in range(self.num_envs)]
        self._started = False
        self._elapsed = np.zeros(self.num_envs, dtype=np.int64)  # steps since each sub-env's reset
        self._autoreset = np.zeros(self.num_envs, dtype=np.bool_)  # ended on the previous step
        self._all_true = np.ones(self.num_envs, dtype=np.bool_)

    def _reset_subenvs(self, mask: np.ndarray) -> None:
        raise NotImplementedError

    def _step_subenvs(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        raise NotImplementedError

    def _observations(self) -> np.ndarray:
        raise NotImplementedError

    def _task_infos(self, mask: np.ndarray) -> dict[str, Any]:
        """Infos in the layout ``SyncVectorEnv`` builds from the single env's ``{"task": ...}``."""
        return {"task": self._tasks.copy(), "_task": mask.copy()}

    def reset(
        self,
        *,
        seed: int | list[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every sub-env (or those in ``options["reset_mask"]``); tasks are kept.

        ``seed`` is one int (sub-env ``i`` gets ``seed + i``, as ``SyncVectorEnv``) or a list of per-sub-env
        seeds; only the sub-envs being reset are re-seeded.
        """
        where = f"{describe_env(self)}.reset"
        if isinstance(seed, list | tuple):
            if len(seed) != self.num_envs:
                raise ValueError(
                    f"{where}: a list of seeds must have length num_envs={self.num_envs}, got length {len(seed)}"
                )
            seeds = list(seed)
        else:
            seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        super().reset(seed=seeds[0])

        mask = None if options is None else options.get("reset_mask")
        if mask is not None:
            self._check_reset_mask(mask)
        if mask is None or not self._started:
            mask = self._all_true
        for i in np.flatnonzero(mask):
            if seeds[i] is not None:
                self.sub_env_rngs[i] = seeding.np_random(seeds[i])[0]
        self._reset_subenvs(mask)
        self._started = True
        self._elapsed[mask] = 0
        self._autoreset[mask] = False
        infos = self._task_infos(mask)
        infos["task"][~mask] = 0.0  # as SyncVectorEnv: no info for sub-envs that were not reset
        return self._observations(), infos

    def _check_reset_mask(self, mask: Any) -> None:
        """Validate ``options["reset_mask"]`` the way ``SyncVectorEnv`` does."""
        where = f"{describe_env(self)}.reset"
        if not isinstance(mask, np.ndarray):
            raise TypeError(f"{where}: options['reset_mask'] must be a numpy array, got {type(mask).__name__}")
        if mask.shape != (self.num_envs,):
            raise ValueError(f"{where}: options['reset_mask'] must have shape ({self.num_envs},), got {mask.shape}")
        if mask.dtype != np.bool_:
            raise TypeError(f"{where}: options['reset_mask'] must have dtype bool, got {mask.dtype}")
        if not mask.any():
            raise ValueError(f"{where}: options['reset_mask'] must contain at least one True value")

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every sub-env: observations ``[num_envs, obs_dim]``, float64 rewards, bool flags, infos."""
        if not self._started:
            raise ResetNeeded(f"{describe_env(self)}: call reset() before step()")
        actions = np.asarray(actions)  # the subclass casts, as its single env does
        expected = (self.num_envs, *self.single_action_space.shape)
        if actions.shape != expected:
            raise ValueError(f"{describe_env(self)}.step: actions have shape {actions.shape}, expected {expected}")
        done = self._autoreset
        if self.autoreset_mode == AutoresetMode.DISABLED and done.any():
            raise RuntimeError(
                f"{describe_env(self)}.step: sub-envs {np.flatnonzero(done).tolist()} ended and autoreset is "
                "DISABLED; reset them with reset(options={'reset_mask': mask}) before stepping"
            )

        rewards, terminations, infos = self._step_subenvs(actions)
        self._elapsed += 1
        truncations = self._elapsed >= self.max_episode_steps
        if done.any():  # NEXT_STEP: sub-envs that ended last step are reset now, ignoring the action
            self._reset_subenvs(done)
            self._elapsed[done] = 0
            rewards[done] = 0.0
            terminations[done] = False
            truncations[done] = False
            for value in infos.values():
                value[done] = 0
        self._autoreset = terminations | truncations
        return self._observations(), rewards, terminations, truncations, {**infos, **self._task_infos(self._all_true)}


def registered_ids(namespace: str = NAMESPACE) -> list[str]:
    """Sorted ids registered with Gymnasium under ``namespace/``."""
    return sorted(env_id for env_id in gymnasium.envs.registry if env_id.startswith(f"{namespace}/"))


def make_task_vec(env_id: str, num_envs: int, num_threads: int | None = None, **env_kwargs: Any) -> VectorEnv:
    """Build ``num_envs`` sub-envs of a registered task family as one vector env with ``set_tasks``/``tasks``.

    Uses the family's native vector implementation (``gymnasium.make_vec(..., "vector_entry_point")``) when
    registered, else a :class:`TaskSyncVectorEnv` of ``gymnasium.make(env_id, **env_kwargs)``.
    ``autoreset_mode`` in ``env_kwargs`` is honoured on both paths. ``num_threads`` goes to native envs that
    step in threads (their class sets ``supports_threads``; None or 0: every core); others ignore it.
    """
    if env_id not in gymnasium.envs.registry:
        raise ValueError(
            f"unknown env id {env_id!r}; registered {NAMESPACE}/ ids: {registered_ids()} "
            "(import meta_rl_envs registers them)"
        )
    spec = gymnasium.spec(env_id)
    if spec.vector_entry_point is not None:
        vector_class = load_env_creator(spec.vector_entry_point)
        if num_threads is not None and getattr(vector_class, "supports_threads", False):
            env_kwargs["num_threads"] = num_threads
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
