"""Ant task families: a target velocity and a direction (the MAML paper), a goal position (ProMP, PEARL).

All use Gymnasium's ``Ant-v5`` model (a torso on a free joint and four two-jointed legs; 8 actions in [-1, 1]),
``frame_skip`` 5 (0.05 s per env step) and its start state (positions + uniform noise in +-0.1, velocities +
0.1 * normal). The observation is Gymnasium's without contact forces: the joint positions without the torso's x and
y, then the joint velocities (27 numbers; 29 with ``exclude_current_positions_from_observation=False``, which
AntGoal uses since its reward depends on the position). Contact forces (``cfrc_ext``) are not part of the state that
``mujoco.rollout`` returns, so they are left out of the observation and the reward, as ``Ant-v4`` did by default.

The torso's velocity ``v`` is its free joint's (x, y) displacement over one env step divided by the step's
duration. ``a`` is the action clipped to [-1, 1]^8 (what the simulator applies). Rewards, each with the squared
control cost ``ctrl_cost_weight * |a|^2`` (velocity and direction: 0.005, the MAML paper's, not Gymnasium's 0.5,
under which an untrained policy's every step alive costs more than it earns, so falling early pays):

- **velocity** (task: a target forward speed in [0, 3]): ``-|v_x - target| + healthy_reward - cost``, healthy
  reward 1 (Gymnasium's; the MAML paper's was 1.05);
- **direction** (task: -1 or +1): ``direction * v_x + healthy_reward - cost``, healthy reward 0.05 (the MAML paper's
  survive reward: the return is mostly the direction's, where Gymnasium's 1 made it mostly staying upright);
- **goal** (task: a position uniform in the disc of radius 3): ``-|xy - goal|_1 - cost`` (the L1 distance, as ProMP
  and PEARL), control cost weight 0.1, no healthy reward and no termination, as ProMP's.

The velocity and direction families end an episode when the torso's height leaves ``healthy_z_range`` ([0.2, 1.0])
or the state is not finite (``terminate_when_unhealthy``), as Gymnasium's ant does.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from gymnasium import spaces
from gymnasium.envs.mujoco.ant_v5 import AntEnv

from meta_rl_envs.base import DirectionTasks, TaskEnvMixin, describe_env, validate_tasks
from meta_rl_envs.mujoco_vector import MujocoTaskVectorEnv, WithoutWarmstart
from meta_rl_envs.vector import check_bool, check_nonnegative, check_positive_int, check_range

__all__ = [
    "AntDirEnv",
    "AntDirOracleEnv",
    "AntDirOracleVectorEnv",
    "AntDirVectorEnv",
    "AntGoalEnv",
    "AntGoalOracleEnv",
    "AntGoalOracleVectorEnv",
    "AntGoalVectorEnv",
    "AntVelEnv",
    "AntVelOracleEnv",
    "AntVelOracleVectorEnv",
    "AntVelVectorEnv",
]

GOAL_RADIUS = 3.0
"""AntGoal's goals lie in the disc of this radius around the start."""


def healthy(qpos: np.ndarray, qvel: np.ndarray, z_range: tuple[float, float]) -> np.ndarray:
    """Gymnasium's ant health, for a batch of states ``[B, nq]``, ``[B, nv]``: finite, torso height in range."""
    finite = np.isfinite(qpos).all(axis=-1) & np.isfinite(qvel).all(axis=-1)
    return finite & (z_range[0] <= qpos[..., 2]) & (qpos[..., 2] <= z_range[1])


class _AntTaskEnv(WithoutWarmstart, AntEnv, TaskEnvMixin):
    """Gymnasium's ant with a task; the family sets the task space, its defaults and the forward reward.

    :param task: the initial task (default: the family's).
    :param frame_skip: physics steps of 0.01 s per env step (5).
    :param ctrl_cost_weight: weight of the squared control cost of the applied (clipped) action.
    :param healthy_reward: reward per step while healthy.
    :param terminate_when_unhealthy: end the episode when the torso leaves ``healthy_z_range``.
    :param healthy_z_range: torso heights ``(low, high)`` counted as healthy.
    :param reset_noise_scale: scale of the start-state noise (0.1).
    :param exclude_current_positions_from_observation: leave the torso's x, y out of the observation.
    :param render_mode: any of Gymnasium's ant render modes, or None.
    """

    default_task: tuple[float, ...]
    defaults: ClassVar[dict[str, Any]]  # the family's keyword defaults, over the ones below

    def __init__(
        self,
        task: Any = None,
        frame_skip: int = 5,
        ctrl_cost_weight: float | None = None,
        healthy_reward: float | None = None,
        terminate_when_unhealthy: bool | None = None,
        healthy_z_range: tuple[float, float] | list[float] = (0.2, 1.0),
        reset_noise_scale: float = 0.1,
        exclude_current_positions_from_observation: bool | None = None,
        render_mode: str | None = None,
    ) -> None:
        who = type(self).__name__
        chosen = {"ctrl_cost_weight": ctrl_cost_weight, "healthy_reward": healthy_reward,
                  "terminate_when_unhealthy": terminate_when_unhealthy,
                  "exclude_current_positions_from_observation": exclude_current_positions_from_observation}
        settings = {**self.defaults, **{k: v for k, v in chosen.items() if v is not None}}
        check_positive_int(frame_skip, "frame_skip", who)
        for name in ("terminate_when_unhealthy", "exclude_current_positions_from_observation"):
            check_bool(settings[name], name, who)
        for name in ("ctrl_cost_weight", "healthy_reward"):
            check_nonnegative(settings[name], name, who)
        check_nonnegative(reset_noise_scale, "reset_noise_scale", who)
        z_range = check_range(healthy_z_range, "healthy_z_range", who)
        self.task_space = spaces.Box(self.task_low, self.task_high, dtype=np.float64)
        self._task = np.array(self.default_task, dtype=np.float64)
        super().__init__(frame_skip=frame_skip, ctrl_cost_weight=settings["ctrl_cost_weight"], contact_cost_weight=0.0,
                         healthy_reward=settings["healthy_reward"],
                         terminate_when_unhealthy=settings["terminate_when_unhealthy"], healthy_z_range=z_range,
                         reset_noise_scale=reset_noise_scale, include_cfrc_ext_in_observation=False,
                         exclude_current_positions_from_observation=settings[
                             "exclude_current_positions_from_observation"], render_mode=render_mode)
        if self.observe_task:
            self.observation_space = spaces.Box(-np.inf, np.inf, shape=(self.observation_space.shape[0]
                                                                       + self.task_dim,), dtype=np.float64)
        self.set_task(self.default_task if task is None else task)

    task_low: np.ndarray | float
    task_high: np.ndarray | float

    def _forward_reward(self, xy_velocity: np.ndarray, xy: np.ndarray) -> float:
        raise NotImplementedError

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One env step (``frame_skip`` physics steps); the info also holds the task."""
        xy_before = self.data.qpos[:2].copy()
        self.do_simulation(action, self.frame_skip)
        xy = self.data.qpos[:2].copy()
        xy_velocity = (xy - xy_before) / self.dt
        clipped = np.clip(action, self.action_space.low, self.action_space.high)
        forward = float(self._forward_reward(xy_velocity, xy))
        ctrl_cost = self._ctrl_cost_weight * float(np.sum(np.square(clipped)))
        alive = bool(healthy(self.data.qpos, self.data.qvel, self._healthy_z_range))
        healthy_reward = self._healthy_reward * alive
        reward = forward + healthy_reward - ctrl_cost
        terminated = self._terminate_when_unhealthy and not alive
        info = {"x_velocity": xy_velocity[0], "y_velocity": xy_velocity[1], "reward_forward": forward,
                "reward_ctrl": -ctrl_cost, "reward_survive": healthy_reward, "task": self._task.copy()}
        return self._get_obs(), reward, terminated, False, info

    def _get_obs(self) -> np.ndarray:
        observation = super()._get_obs()
        return np.concatenate([observation, self._task]) if self.observe_task else observation

    def _get_reset_info(self) -> dict[str, Any]:
        return {**super()._get_reset_info(), "task": self._task.copy()}


class _Forward:
    """Ant velocity and direction: a one-number task, Gymnasium's healthy reward and termination, the MAML paper's
    control cost weight (direction overrides the healthy reward)."""

    defaults: ClassVar[dict[str, Any]] = {
        "ctrl_cost_weight": 0.005, "healthy_reward": 1.0, "terminate_when_unhealthy": True,
        "exclude_current_positions_from_observation": True,
    }


class AntVelEnv(_Forward, _AntTaskEnv):
    """Run at a target forward speed (task: the speed, uniform in [0, 3]; default 1.5); see the module docstring."""

    task_low, task_high, default_task = np.array([0.0]), np.array([3.0]), (1.5,)

    def _forward_reward(self, xy_velocity: np.ndarray, xy: np.ndarray) -> float:
        return -abs(xy_velocity[0] - self._task[0])


class AntDirEnv(DirectionTasks, _Forward, _AntTaskEnv):
    """Run forward (task +1, the default) or backward (-1), each with probability 1/2."""

    defaults: ClassVar[dict[str, Any]] = {**_Forward.defaults, "healthy_reward": 0.05}

    task_low, task_high, default_task = np.array([-1.0]), np.array([1.0]), (1.0,)

    def _forward_reward(self, xy_velocity: np.ndarray, xy: np.ndarray) -> float:
        return self._task[0] * xy_velocity[0]



def _disc_goals(num_tasks: int, rng: np.random.Generator) -> np.ndarray:
    """Goals uniform in the disc of radius :data:`GOAL_RADIUS` (angle uniform, radius ``3 sqrt(u)``)."""
    angle = rng.uniform(0.0, 2.0 * np.pi, size=num_tasks)
    radius = GOAL_RADIUS * np.sqrt(rng.uniform(0.0, 1.0, size=num_tasks))
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=-1)


def _check_in_disc(tasks: np.ndarray, where: str) -> np.ndarray:
    distance = np.linalg.norm(tasks.reshape(-1, 2), axis=-1)
    if (distance > GOAL_RADIUS + 1e-12).any():
        bad = tasks.reshape(-1, 2)[int(np.argmax(distance))]
        raise ValueError(f"{where}: goal {bad.tolist()!r} is {float(distance.max()):g} from the start; allowed: "
                         f"goals within {GOAL_RADIUS:g} of it")
    return tasks


class AntGoalEnv(_AntTaskEnv):
    """Walk to a goal position (task: (x, y) uniform in the disc of radius 3; default (0, 0))."""

    defaults: ClassVar[dict[str, Any]] = {
        "ctrl_cost_weight": 0.1, "healthy_reward": 0.0, "terminate_when_unhealthy": False,
        "exclude_current_positions_from_observation": False,
    }
    task_low, task_high, default_task = np.array([-3.0, -3.0]), np.array([3.0, 3.0]), (0.0, 0.0)

    def _forward_reward(self, xy_velocity: np.ndarray, xy: np.ndarray) -> float:
        return -float(np.abs(xy - self._task).sum())

    def set_task(self, task: Any) -> None:
        """Set the goal, within 3 of the start."""
        where = f"{describe_env(self)}.set_task"
        self._task = _check_in_disc(validate_tasks(task, self.task_space, where), where)

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``num_tasks`` goals uniform in the disc of radius 3, shape ``[num_tasks, 2]``."""
        return _disc_goals(self._checked_num_tasks(num_tasks, rng), rng)


class AntVelOracleEnv(AntVelEnv):
    """:class:`AntVelEnv` whose observation ends with the target speed (the oracle baseline)."""

    observe_task = True


class AntDirOracleEnv(AntDirEnv):
    """:class:`AntDirEnv` whose observation ends with the direction (the oracle baseline)."""

    observe_task = True


class AntGoalOracleEnv(AntGoalEnv):
    """:class:`AntGoalEnv` whose observation ends with the goal (the oracle baseline)."""

    observe_task = True


class _AntTaskVectorEnv(MujocoTaskVectorEnv):
    """All ants stepped by ``mujoco.rollout``; takes the single env's keywords and the vector ones."""

    single_env_class: type[_AntTaskEnv]
    default_max_episode_steps = 200

    def _setup_family(self, reference: _AntTaskEnv) -> None:
        self.ctrl_cost_weight = float(reference._ctrl_cost_weight)
        self.healthy_reward = float(reference._healthy_reward)
        self.terminate_when_unhealthy = bool(reference._terminate_when_unhealthy)
        self.healthy_z_range = reference._healthy_z_range
        self._observed_qpos = slice(2 if reference._exclude_current_positions_from_observation else 0, None)

    def _forward_rewards(self, xy_velocity: np.ndarray, xy: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _observations(self) -> np.ndarray:
        parts = [self.qpos[:, self._observed_qpos], self.qvel]
        if self.single_env_class.observe_task:
            parts.append(self._tasks)
        return np.concatenate(parts, axis=1)

    def _rewards(self, qpos_before: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        xy = self.qpos[:, :2]
        xy_velocity = (xy - qpos_before[:, :2]) / self.dt
        alive = healthy(self.qpos, self.qvel, self.healthy_z_range)
        healthy_reward = self.healthy_reward * alive
        ctrl_cost = self.ctrl_cost_weight * np.square(actions).sum(axis=1)
        forward = self._forward_rewards(xy_velocity, xy)
        rewards = forward + healthy_reward - ctrl_cost
        terminations = ~alive if self.terminate_when_unhealthy else np.zeros(self.num_envs, dtype=np.bool_)
        infos = {"x_velocity": xy_velocity[:, 0], "y_velocity": xy_velocity[:, 1], "reward_forward": forward,
                 "reward_ctrl": -ctrl_cost, "reward_survive": healthy_reward}
        return rewards, terminations, infos


class AntVelVectorEnv(_AntTaskVectorEnv):
    """Native vector :class:`AntVelEnv`."""

    single_env_class = AntVelEnv

    def _forward_rewards(self, xy_velocity: np.ndarray, xy: np.ndarray) -> np.ndarray:
        return -np.abs(xy_velocity[:, 0] - self._tasks[:, 0])


class AntDirVectorEnv(DirectionTasks, _AntTaskVectorEnv):
    """Native vector :class:`AntDirEnv`."""

    single_env_class = AntDirEnv

    def _forward_rewards(self, xy_velocity: np.ndarray, xy: np.ndarray) -> np.ndarray:
        return self._tasks[:, 0] * xy_velocity[:, 0]



class AntGoalVectorEnv(_AntTaskVectorEnv):
    """Native vector :class:`AntGoalEnv`."""

    single_env_class = AntGoalEnv

    def _forward_rewards(self, xy_velocity: np.ndarray, xy: np.ndarray) -> np.ndarray:
        return -np.abs(xy - self._tasks).sum(axis=1)

    def set_tasks(self, tasks: Any) -> None:
        """Set one goal per sub-env, each within 3 of the start, shape ``[num_envs, 2]``."""
        self._tasks = _check_in_disc(self._validate_vector_tasks(tasks), f"{describe_env(self)}.set_tasks")

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> np.ndarray:
        """Draw goals uniform in the disc of radius 3 (as :meth:`AntGoalEnv.sample_tasks`)."""
        return AntGoalEnv.sample_tasks(self, num_tasks, rng)  # type: ignore[arg-type]


class AntVelOracleVectorEnv(AntVelVectorEnv):
    """Native vector :class:`AntVelOracleEnv`."""

    single_env_class = AntVelOracleEnv


class AntDirOracleVectorEnv(AntDirVectorEnv):
    """Native vector :class:`AntDirOracleEnv`."""

    single_env_class = AntDirOracleEnv


class AntGoalOracleVectorEnv(AntGoalVectorEnv):
    """Native vector :class:`AntGoalOracleEnv`."""

    single_env_class = AntGoalOracleEnv
