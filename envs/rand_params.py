"""Walker and hopper with randomised physical parameters (ProMP's and PEARL's rand-params families).

A task is a vector ``u`` with one number in [-3, 3] per scaled element of the model: every body's mass and its
three principal inertias are multiplied by ``1.5^u``, every joint's damping by ``1.3^u`` and every geom's three
friction coefficients by ``1.5^u`` (task ``0`` is Gymnasium's model). After scaling, MuJoCo's derived constants
and the model statistics the solver scales by are recomputed (``mj_setConst``, ``stat.meaninertia``). The three
inertias are scaled independently, as ProMP's and PEARL's envs did, so a body's inertia need not satisfy the triangle
inequality that MuJoCo's compiler would demand of it; the simulator steps it all the same. Tasks change the
*model*: the native vector env steps one model per sub-env in the same ``mujoco.rollout`` call (models of the same
size).

Otherwise the families are Gymnasium's ``Walker2d-v5`` and ``Hopper-v5``: the observation is the joint positions
without x, then the joint velocities clipped to [-10, 10]; the reward is the torso's forward speed (its x
displacement over one env step divided by the step's duration) plus a healthy reward of 1, minus
``1e-3 * |a|^2`` of the applied (clipped) action; an episode ends when the torso's height or angle leaves the
healthy range (and, for the hopper, when any other state entry leaves [-100, 100]). The start state is Gymnasium's:
positions and velocities plus uniform noise in +-0.005.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import mujoco
import numpy as np
from gymnasium import spaces
from gymnasium.envs.mujoco.hopper_v5 import HopperEnv
from gymnasium.envs.mujoco.walker2d_v5 import Walker2dEnv

from meta_rl_envs.base import TaskEnvMixin, describe_env, validate_tasks
from meta_rl_envs.mujoco_vector import MujocoTaskVectorEnv, WithoutWarmstart, uniform_start_noise
from meta_rl_envs.vector import check_nonnegative, check_positive_int

__all__ = [
    "PARAMETER_SCALES",
    "HopperParamsEnv",
    "HopperParamsOracleEnv",
    "HopperParamsOracleVectorEnv",
    "HopperParamsVectorEnv",
    "Walker2dParamsEnv",
    "Walker2dParamsOracleEnv",
    "Walker2dParamsOracleVectorEnv",
    "Walker2dParamsVectorEnv",
    "scale_model",
]

PARAMETER_SCALES: dict[str, float] = {"body_mass": 1.5, "body_inertia": 1.5, "dof_damping": 1.3, "geom_friction": 1.5}
"""Model field -> the base ``b`` of its multiplier ``b^u`` (ProMP's and PEARL's rand-params envs)."""
LOG_SCALE_LIMIT = 3.0
"""Each ``u`` lies in [-3, 3]."""


def parameter_layout(model: mujoco.MjModel) -> list[tuple[str, tuple[int, ...]]]:
    """(field, shape) of each scaled model field, in the order a task vector holds them."""
    return [(name, np.asarray(getattr(model, name)).shape) for name in PARAMETER_SCALES]


def scale_model(model: mujoco.MjModel, base: dict[str, np.ndarray], task: np.ndarray) -> None:
    """Write ``base * scale^u`` into ``model``'s scaled fields for the task vector ``u``, then recompute the
    model's derived constants (``mj_setConst``)."""
    offset = 0
    for name, scale in PARAMETER_SCALES.items():
        values = base[name]
        exponents = task[offset:offset + values.size].reshape(values.shape)
        getattr(model, name)[:] = values * scale**exponents
        offset += values.size
    mujoco.mj_setConst(model, mujoco.MjData(model))
    model.stat.meaninertia = model.dof_M0.mean()  # as the compiler sets it (mj_setConst leaves the statistics)
    model.stat.meanmass = model.body_mass[1:].mean()


class _RandParamsTaskEnv(WithoutWarmstart, TaskEnvMixin):
    """A Gymnasium locomotion env whose task scales its model (the family sets the Gymnasium class)."""

    gymnasium_class: ClassVar[type]
    model: mujoco.MjModel

    def __init__(self, task: Any = None, frame_skip: int = 4, reset_noise_scale: float = 5e-3,
                 render_mode: str | None = None) -> None:
        check_positive_int(frame_skip, "frame_skip", type(self).__name__)
        check_nonnegative(reset_noise_scale, "reset_noise_scale", type(self).__name__)
        self.gymnasium_class.__init__(self, frame_skip=frame_skip, reset_noise_scale=reset_noise_scale,
                                      render_mode=render_mode)
        self._base_parameters = {name: np.array(getattr(self.model, name)) for name in PARAMETER_SCALES}
        size = sum(values.size for values in self._base_parameters.values())
        self.task_space = spaces.Box(-LOG_SCALE_LIMIT, LOG_SCALE_LIMIT, shape=(size,), dtype=np.float64)
        if self.observe_task:
            self.observation_space = spaces.Box(-np.inf, np.inf, shape=(self.observation_space.shape[0] + size,),
                                                dtype=np.float64)
        self.set_task(np.zeros(size) if task is None else task)

    def set_task(self, task: Any) -> None:
        """Set the scaling exponents ``u`` (one per scaled model element, each in [-3, 3]) and rescale the model."""
        self._task = validate_tasks(task, self.task_space, f"{describe_env(self)}.set_task")
        scale_model(self.model, self._base_parameters, self._task)

    def control_cost(self, action: np.ndarray) -> float:
        """``ctrl_cost_weight * |a|^2`` of the applied (clipped) action."""
        clipped = np.clip(action, self.action_space.low, self.action_space.high)
        return self._ctrl_cost_weight * float(np.sum(np.square(clipped)))

    def _get_obs(self) -> np.ndarray:
        observation = self.gymnasium_class._get_obs(self)
        return np.concatenate([observation, self._task]) if self.observe_task else observation

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One env step (``frame_skip`` physics steps); the info also holds the task."""
        observation, reward, terminated, truncated, info = self.gymnasium_class.step(self, action)
        return observation, reward, terminated, truncated, {**info, "task": self._task.copy()}

    def _get_reset_info(self) -> dict[str, Any]:
        return {**self.gymnasium_class._get_reset_info(self), "task": self._task.copy()}


class Walker2dParamsEnv(_RandParamsTaskEnv, Walker2dEnv):
    """Gymnasium's walker with randomised masses, inertias, damping and friction (see the module docstring).

    :param task: the scaling exponents (65 numbers in [-3, 3]); default 0, Gymnasium's model.
    :param frame_skip: physics steps of 0.002 s per env step (4).
    :param reset_noise_scale: scale of the uniform start-state noise (0.005).
    :param render_mode: any of Gymnasium's walker render modes, or None.
    """

    gymnasium_class = Walker2dEnv


class HopperParamsEnv(_RandParamsTaskEnv, HopperEnv):
    """Gymnasium's hopper with randomised masses, inertias, damping and friction (see the module docstring).

    :param task: the scaling exponents (41 numbers in [-3, 3]); default 0, Gymnasium's model.
    :param frame_skip: physics steps of 0.002 s per env step (4).
    :param reset_noise_scale: scale of the uniform start-state noise (0.005).
    :param render_mode: any of Gymnasium's hopper render modes, or None.
    """

    gymnasium_class = HopperEnv


class Walker2dParamsOracleEnv(Walker2dParamsEnv):
    """:class:`Walker2dParamsEnv` whose observation ends with the task (the oracle baseline)."""

    observe_task = True


class HopperParamsOracleEnv(HopperParamsEnv):
    """:class:`HopperParamsEnv` whose observation ends with the task (the oracle baseline)."""

    observe_task = True


class _RandParamsVectorEnv(MujocoTaskVectorEnv):
    """One scaled model per sub-env, all stepped by one ``mujoco.rollout`` call; the single env's keywords."""

    single_env_class: type[_RandParamsTaskEnv]
    default_max_episode_steps = 200

    def _setup_family(self, reference: _RandParamsTaskEnv) -> None:
        self._base_parameters = reference._base_parameters
        self.ctrl_cost_weight = float(reference._ctrl_cost_weight)
        self.forward_reward_weight = float(reference._forward_reward_weight)
        self.healthy_reward = float(reference._healthy_reward)
        self.healthy_z_range = reference._healthy_z_range
        self.healthy_angle_range = reference._healthy_angle_range
        self.healthy_state_range = getattr(reference, "_healthy_state_range", None)
        self._task_models: dict[bytes, mujoco.MjModel] = {}
        self.set_tasks(self._tasks)  # the models of the initial tasks

    def set_tasks(self, tasks: Any) -> None:
        """Set one task per sub-env and give each sub-env its scaled model (one model per distinct task)."""
        self._tasks = self._validate_vector_tasks(tasks)
        if not hasattr(self, "_base_parameters"):  # during _init_vector: the models come in _setup_family
            return
        models: dict[bytes, mujoco.MjModel] = {}
        for task in self._tasks:
            key = task.tobytes()
            if key not in models:
                models[key] = self._task_models.get(key) or self._scaled_model(task)
        self._task_models = models
        self._models = [models[task.tobytes()] for task in self._tasks]

    def _scaled_model(self, task: np.ndarray) -> mujoco.MjModel:
        model = copy.copy(self.model)
        scale_model(model, self._base_parameters, task)
        return model

    def _start_noise(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Gymnasium's walker and hopper start noise: uniform in +-scale on positions and velocities."""
        return uniform_start_noise(rng, self.reset_noise_scale, self.model.nq, self.model.nv)

    def _observations(self) -> np.ndarray:
        parts = [self.qpos[:, 1:], np.clip(self.qvel, -10.0, 10.0)]
        if self.single_env_class.observe_task:
            parts.append(self._tasks)
        return np.concatenate(parts, axis=1)

    def _healthy(self) -> np.ndarray:
        z, angle = self.qpos[:, 1], self.qpos[:, 2]
        alive = ((self.healthy_z_range[0] < z) & (z < self.healthy_z_range[1])
                 & (self.healthy_angle_range[0] < angle) & (angle < self.healthy_angle_range[1]))
        if self.healthy_state_range is not None:  # the hopper: every state entry but x and z
            state = np.concatenate([self.qpos, self.qvel], axis=1)[:, 2:]
            low, high = self.healthy_state_range
            alive &= ((low < state) & (state < high)).all(axis=1)
        return alive

    def _rewards(self, qpos_before: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        x_velocity = (self.qpos[:, 0] - qpos_before[:, 0]) / self.dt
        alive = self._healthy()
        forward = self.forward_reward_weight * x_velocity
        healthy_reward = self.healthy_reward * alive
        ctrl_cost = self.ctrl_cost_weight * np.square(actions).sum(axis=1)
        infos = {"x_velocity": x_velocity, "reward_forward": forward, "reward_ctrl": -ctrl_cost,
                 "reward_survive": healthy_reward}
        return forward + healthy_reward - ctrl_cost, ~alive, infos


class Walker2dParamsVectorEnv(_RandParamsVectorEnv):
    """Native vector :class:`Walker2dParamsEnv`."""

    single_env_class = Walker2dParamsEnv


class HopperParamsVectorEnv(_RandParamsVectorEnv):
    """Native vector :class:`HopperParamsEnv`."""

    single_env_class = HopperParamsEnv


class Walker2dParamsOracleVectorEnv(Walker2dParamsVectorEnv):
    """Native vector :class:`Walker2dParamsOracleEnv`."""

    single_env_class = Walker2dParamsOracleEnv


class HopperParamsOracleVectorEnv(HopperParamsVectorEnv):
    """Native vector :class:`HopperParamsOracleEnv`."""

    single_env_class = HopperParamsOracleEnv
