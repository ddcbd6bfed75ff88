"""2D point navigation, the task family of the MAML paper (Finn et al., 2017), as in its reference code.

A point starts at the origin; the action is a velocity, clipped to [-0.1, 0.1] per axis; the reward is minus
the Euclidean distance from the new position to the goal; the episode terminates when the point is within
0.01 of the goal on both axes. A task is the goal ``(gx, gy)``, sampled uniformly in
``[goal_low, goal_high]^2``. Episodes are truncated at 100 steps (``max_episode_steps`` of the registration
for the single env, a constructor argument for the vector env).

The position is kept in float32 (as in the reference code) and is the observation itself, so what the
policy sees is exactly the state; distances are computed in float64.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from meta_rl_envs.base import TaskEnvMixin, VectorTaskEnvMixin, describe_env, validate_tasks

__all__ = ["Navigation2DEnv", "Navigation2DOracleEnv", "Navigation2DOracleVectorEnv", "Navigation2DVectorEnv"]

MAX_SPEED = 0.1
"""Per-axis bound of the velocity action."""
GOAL_TOLERANCE = 0.01
"""The episode terminates when the point is closer than this to the goal on both axes."""


def _task_space(goal_low: float, goal_high: float, who: str) -> spaces.Box:
    """Build the goal space, checking that the range is a finite, non-empty interval."""
    try:
        low, high = float(goal_low), float(goal_high)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{who}: goal_low and goal_high must be numbers, "
            f"got goal_low={goal_low!r}, goal_high={goal_high!r}"
        ) from exc
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(
            f"{who}: need finite goal_low < goal_high, got goal_low={goal_low!r}, goal_high={goal_high!r}"
        )
    return spaces.Box(low, high, shape=(2,), dtype=np.float64)


def _default_task(task_space: spaces.Box) -> np.ndarray:
    """Centre of the task space: the origin (0, 0) for the default symmetric range."""
    return (task_space.low + task_space.high) / 2.0


def _observation_space() -> spaces.Box:
    """Unbounded float32 position."""
    return spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)


def _action_space(normalized_actions: bool = False) -> spaces.Box:
    """Velocity in [-0.1, 0.1] per axis, or in [-1, 1] (scaled by 0.1) with ``normalized_actions``."""
    bound = 1.0 if normalized_actions else MAX_SPEED
    return spaces.Box(-bound, bound, shape=(2,), dtype=np.float32)


def _velocity(action: np.ndarray, normalized_actions: bool) -> np.ndarray:
    """The velocity an action asks for: clipped to the action space, then scaled to [-0.1, 0.1] if normalized.

    ``normalized_actions`` is what rllab's ``normalize(env)`` did in the MAML paper's own experiments: the policy
    acts in [-1, 1] and the env scales to the true bounds, so a unit-variance policy is not saturated.
    """
    if normalized_actions:
        return np.clip(action, -1.0, 1.0) * np.float32(MAX_SPEED)
    return np.clip(action, -MAX_SPEED, MAX_SPEED)


def _check_render_mode(render_mode: str | None, who: str) -> None:
    """The family has no rendering; refuse a render mode rather than ignore it."""
    if render_mode is not None:
        raise ValueError(f"{who}: render_mode={render_mode!r} is not supported; allowed: None")


class Navigation2DEnv(gymnasium.Env, TaskEnvMixin):
    """Single 2D navigation env: the reference the vector env is tested against, step for step.

    :param goal_low: lower bound of each goal coordinate (task space).
    :param goal_high: upper bound of each goal coordinate (task space).
    :param task: initial goal; default the centre of the task space, (0, 0) for the default range.
    :param render_mode: only None (no rendering).
    :param normalized_actions: act in [-1, 1] (scaled to the velocity bound), as the MAML paper's experiments did
        through rllab's ``normalize``; default False: act directly in velocity units, clipped to [-0.1, 0.1].
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (Gymnasium convention)

    def __init__(
        self,
        goal_low: float = -0.5,
        goal_high: float = 0.5,
        task: Any = None,
        render_mode: str | None = None,
        normalized_actions: bool = False,
    ) -> None:
        _check_render_mode(render_mode, type(self).__name__)
        self.render_mode = render_mode
        self.normalized_actions = bool(normalized_actions)
        self.task_space = _task_space(goal_low, goal_high, type(self).__name__)
        self.observation_space = _observation_space()
        self.action_space = _action_space(self.normalized_actions)
        self._state = np.zeros(2, dtype=np.float32)
        self.set_task(_default_task(self.task_space) if task is None else task)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Put the point back at the origin; the goal is kept."""
        super().reset(seed=seed)
        self._state = np.zeros(2, dtype=np.float32)
        return self._state.copy(), {"task": self._task.copy()}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Move by the clipped velocity; reward is minus the distance from the new position to the goal."""
        velocity = _velocity(np.asarray(action, dtype=np.float32), self.normalized_actions)
        if velocity.shape != (2,):
            raise ValueError(
                f"{describe_env(self)}.step: action {action!r} has shape {velocity.shape}, expected (2,)"
            )
        self._state = self._state + velocity
        dx = self._state[0] - self._task[0]
        dy = self._state[1] - self._task[1]
        reward = -np.sqrt(dx * dx + dy * dy)
        terminated = bool(abs(dx) < GOAL_TOLERANCE and abs(dy) < GOAL_TOLERANCE)
        return self._state.copy(), float(reward), terminated, False, {"task": self._task.copy()}


class Navigation2DVectorEnv(VectorEnv, VectorTaskEnvMixin):
    """Native vector 2D navigation: all points stepped with a handful of numpy ops, one goal per sub-env.

    Same dynamics as :class:`Navigation2DEnv` under ``TimeLimit(max_episode_steps)``, batched with
    Gymnasium 1.x vector conventions (same outputs as ``SyncVectorEnv`` of the single env).

    :param num_envs: number of sub-envs (points).
    :param max_episode_steps: truncation horizon per sub-env.
    :param goal_low: lower bound of each goal coordinate (task space).
    :param goal_high: upper bound of each goal coordinate (task space).
    :param autoreset_mode: ``NEXT_STEP`` (default; a sub-env that ended is reset on the following step,
        which returns the reset observation, reward 0 and ignores the action) or ``DISABLED`` (reset ended
        sub-envs with ``reset(options={"reset_mask": mask})``). ``SAME_STEP`` is not implemented.
    :param task: initial goal of every sub-env; default the centre of the task space.
    :param render_mode: only None (no rendering).
    """

    metadata: dict[str, Any] = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}  # noqa: RUF012

    def __init__(
        self,
        num_envs: int,
        max_episode_steps: int = 100,
        goal_low: float = -0.5,
        goal_high: float = 0.5,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        task: Any = None,
        render_mode: str | None = None,
        normalized_actions: bool = False,
        **unused: Any,
    ) -> None:
        who = type(self).__name__
        if unused:
            raise TypeError(
                f"{who}: unexpected keyword argument(s) {sorted(unused)}; allowed: num_envs, "
                "max_episode_steps, goal_low, goal_high, autoreset_mode, task, render_mode, normalized_actions"
            )
        self.normalized_actions = bool(normalized_actions)
        _check_render_mode(render_mode, who)
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise ValueError(f"{who}: num_envs must be a positive int, got {num_envs!r}")
        if (
            isinstance(max_episode_steps, bool)
            or not isinstance(max_episode_steps, int | np.integer)
            or max_episode_steps < 1
        ):
            raise ValueError(f"{who}: max_episode_steps must be a positive int, got {max_episode_steps!r}")
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

        self.num_envs = int(num_envs)
        self.max_episode_steps = int(max_episode_steps)
        self.autoreset_mode = mode
        self.render_mode = render_mode
        self.metadata = {**type(self).metadata, "autoreset_mode": mode}

        self.task_space = _task_space(goal_low, goal_high, who)
        self.single_observation_space = _observation_space()
        self.single_action_space = _action_space(self.normalized_actions)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        initial = _default_task(self.task_space) if task is None else task
        single = validate_tasks(initial, self.task_space, f"{who}(task=...)")
        self.set_tasks(np.tile(single, (self.num_envs, 1)))

        self._state: np.ndarray | None = None  # [num_envs, 2] float32 positions; None until reset
        self._elapsed = np.zeros(self.num_envs, dtype=np.int64)  # steps since each sub-env's reset
        self._autoreset = np.zeros(self.num_envs, dtype=np.bool_)  # ended on the previous step
        self._all_true = np.ones(self.num_envs, dtype=np.bool_)

    def _task_infos(self, mask: np.ndarray) -> dict[str, Any]:
        """Infos in the layout ``SyncVectorEnv`` builds from the single env's ``{"task": goal}``."""
        return {"task": self._tasks.copy(), "_task": mask.copy()}

    def reset(
        self,
        *,
        seed: int | list[int | None] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Put every point (or those in ``options["reset_mask"]``) back at the origin; goals are kept."""
        if isinstance(seed, list | tuple):
            if len(seed) != self.num_envs:
                raise ValueError(
                    f"{describe_env(self)}.reset: a list of seeds must have length num_envs={self.num_envs}, "
                    f"got length {len(seed)}"
                )
            seed = seed[0]
        super().reset(seed=seed)  # the dynamics are deterministic; this only seeds self.np_random

        mask = None if options is None else options.get("reset_mask")
        if mask is None or self._state is None:
            if mask is not None:
                self._check_reset_mask(mask)
            self._state = np.zeros((self.num_envs, 2), dtype=np.float32)
            self._elapsed[:] = 0
            self._autoreset[:] = False
            return self._state.copy(), self._task_infos(self._all_true)

        self._check_reset_mask(mask)
        self._state[mask] = 0.0
        self._elapsed[mask] = 0
        self._autoreset[mask] = False
        infos = self._task_infos(mask)
        infos["task"][~mask] = 0.0  # as SyncVectorEnv: no info for sub-envs that were not reset
        return self._state.copy(), infos

    def _check_reset_mask(self, mask: Any) -> None:
        """Validate ``options["reset_mask"]`` the way ``SyncVectorEnv`` does."""
        where = f"{describe_env(self)}.reset"
        if not isinstance(mask, np.ndarray):
            raise TypeError(
                f"{where}: options['reset_mask'] must be a numpy array, got {type(mask).__name__}"
            )
        if mask.shape != (self.num_envs,):
            raise ValueError(
                f"{where}: options['reset_mask'] must have shape ({self.num_envs},), got {mask.shape}"
            )
        if mask.dtype != np.bool_:
            raise TypeError(f"{where}: options['reset_mask'] must have dtype bool, got {mask.dtype}")
        if not mask.any():
            raise ValueError(f"{where}: options['reset_mask'] must contain at least one True value")

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every point: float32 observations [num_envs, 2], float64 rewards, bool flags, infos."""
        if self._state is None:
            raise ResetNeeded(f"{describe_env(self)}: call reset() before step()")
        velocity = np.asarray(actions, dtype=np.float32)
        if velocity.shape != (self.num_envs, 2):
            raise ValueError(
                f"{describe_env(self)}.step: actions have shape {velocity.shape}, "
                f"expected ({self.num_envs}, 2)"
            )
        done = self._autoreset
        if self.autoreset_mode == AutoresetMode.DISABLED and done.any():
            raise RuntimeError(
                f"{describe_env(self)}.step: sub-envs {np.flatnonzero(done).tolist()} ended and autoreset is "
                "DISABLED; reset them with reset(options={'reset_mask': mask}) before stepping"
            )

        state = self._state + _velocity(velocity, self.normalized_actions)
        self._elapsed += 1
        diff = state - self._tasks  # float64 [num_envs, 2]
        dx, dy = diff[:, 0], diff[:, 1]
        rewards = -np.sqrt(dx * dx + dy * dy)
        terminations = (np.abs(dx) < GOAL_TOLERANCE) & (np.abs(dy) < GOAL_TOLERANCE)
        truncations = self._elapsed >= self.max_episode_steps

        if done.any():  # NEXT_STEP: sub-envs that ended last step are reset now, ignoring the action
            state[done] = 0.0
            self._elapsed[done] = 0
            rewards[done] = 0.0
            terminations[done] = False
            truncations[done] = False

        self._state = state
        self._autoreset = terminations | truncations
        return state.copy(), rewards, terminations, truncations, self._task_infos(self._all_true)


def _oracle_observation_space() -> spaces.Box:
    """Position and goal, float32 ``(x, y, gx, gy)``."""
    return spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float32)


class Navigation2DOracleEnv(Navigation2DEnv):
    """2D navigation whose observation also holds the goal ``(x, y, gx, gy)``: the oracle baseline's env.

    A policy trained on it with no adaptation is the ceiling of what adaptation can reach (the MAML paper's
    "oracle"). Dynamics, rewards and tasks are those of :class:`Navigation2DEnv`.
    """

    def __init__(self, goal_low: float = -0.5, goal_high: float = 0.5, task: Any = None,
                 render_mode: str | None = None, normalized_actions: bool = False) -> None:
        super().__init__(goal_low, goal_high, task, render_mode, normalized_actions)
        self.observation_space = _oracle_observation_space()

    def _with_goal(self, position: np.ndarray) -> np.ndarray:
        return np.concatenate([position, self._task.astype(np.float32)])

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """As :meth:`Navigation2DEnv.reset`, with the goal appended to the observation."""
        position, info = super().reset(seed=seed, options=options)
        return self._with_goal(position), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """As :meth:`Navigation2DEnv.step`, with the goal appended to the observation."""
        position, reward, terminated, truncated, info = super().step(action)
        return self._with_goal(position), reward, terminated, truncated, info


class Navigation2DOracleVectorEnv(Navigation2DVectorEnv):
    """Native vector version of :class:`Navigation2DOracleEnv` (observations ``[num_envs, 4]``)."""

    def __init__(self, num_envs: int, max_episode_steps: int = 100, **kwargs: Any) -> None:
        super().__init__(num_envs, max_episode_steps, **kwargs)
        self.single_observation_space = _oracle_observation_space()
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)

    def _with_goals(self, positions: np.ndarray) -> np.ndarray:
        return np.concatenate([positions, self._tasks.astype(np.float32)], axis=1)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """As :meth:`Navigation2DVectorEnv.reset`, with each sub-env's goal appended."""
        positions, infos = super().reset(seed=seed, options=options)
        return self._with_goals(positions), infos

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """As :meth:`Navigation2DVectorEnv.step`, with each sub-env's goal appended."""
        positions, rewards, terminations, truncations, infos = super().step(actions)
        return self._with_goals(positions), rewards, terminations, truncations, infos
