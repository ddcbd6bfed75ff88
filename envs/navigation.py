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
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from meta_rl_envs.base import TaskEnvMixin, describe_env
from meta_rl_envs.vector import NativeTaskVectorEnv, check_bool, check_no_unused_kwargs

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
    plots_trajectories = True

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
        self.normalized_actions = check_bool(normalized_actions, "normalized_actions", type(self).__name__)
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


class Navigation2DVectorEnv(NativeTaskVectorEnv):
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
    :param normalized_actions: as for :class:`Navigation2DEnv`.
    """

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
        check_no_unused_kwargs(unused, type(self))
        _check_render_mode(render_mode, who)
        self.normalized_actions = check_bool(normalized_actions, "normalized_actions", who)
        task_space = _task_space(goal_low, goal_high, who)
        self._init_vector(
            num_envs, max_episode_steps, autoreset_mode, _observation_space(),
            _action_space(self.normalized_actions), task_space, task, _default_task(task_space),
        )
        self._state = np.zeros((self.num_envs, 2), dtype=np.float32)  # float32 positions

    def _reset_subenvs(self, mask: np.ndarray) -> None:
        """Put the points in ``mask`` back at the origin (the dynamics are deterministic: no noise)."""
        self._state[mask] = 0.0

    def _observations(self) -> np.ndarray:
        return self._state.copy()

    def _step_subenvs(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Move every point; reward is minus the distance to its goal, termination within tolerance."""
        self._state = self._state + _velocity(actions.astype(np.float32), self.normalized_actions)
        diff = self._state - self._tasks  # float64 [num_envs, 2]
        dx, dy = diff[:, 0], diff[:, 1]
        rewards = -np.sqrt(dx * dx + dy * dy)
        terminations = (np.abs(dx) < GOAL_TOLERANCE) & (np.abs(dy) < GOAL_TOLERANCE)
        return rewards, terminations, {}


def _oracle_observation_space() -> spaces.Box:
    """Position and goal, float32 ``(x, y, gx, gy)``."""
    return spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float32)


class Navigation2DOracleEnv(Navigation2DEnv):
    """2D navigation whose observation also holds the goal ``(x, y, gx, gy)``: the oracle baseline's env.

    A policy trained on it with no adaptation is the ceiling of what adaptation can reach (the MAML paper's
    "oracle"). Dynamics, rewards and tasks are those of :class:`Navigation2DEnv`.
    """

    observe_task = True

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

    def _observations(self) -> np.ndarray:
        """Positions with each sub-env's goal appended, ``[num_envs, 4]`` float32."""
        return np.concatenate([self._state, self._tasks.astype(np.float32)], axis=1)
