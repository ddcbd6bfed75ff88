"""Humanoid direction (ProMP's humanoid family, the direction in the plane): walk along a direction angle.

Gymnasium's ``Humanoid-v5`` model, ``frame_skip`` 5 (0.015 s per env step) and start state (positions and velocities
plus uniform noise in +-0.01). The task is an angle ``theta`` in [0, 2 pi], uniform. The reward is
``1.25 * v . (cos theta, sin theta) + 5 * healthy - 0.1 * |a|^2``, with ``v`` the velocity of the whole body's centre
of mass in the plane (its displacement over one env step, per second, as Gymnasium's humanoid measures it) and
``a`` the applied (clipped) action; an episode ends when the torso's height leaves (1.0, 2.0).

The observation is Gymnasium's without the quantities derived from the state (``cinert``, ``cvel``,
``qfrc_actuator``, ``cfrc_ext``): the joint positions without the torso's x and y, then the joint velocities
(45 numbers); ``mujoco.rollout`` returns the state only. The centre of mass is Gymnasium's ``mass_center`` of the
state after the step, from one kinematics pass on it (:func:`centre_of_mass`), in the single and the vector env alike;
Gymnasium's own humanoid reads the body positions its RK4 integrator last computed, within a substep of that state.
Contact forces are left out of the reward, as of the observation.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np
from gymnasium import spaces
from gymnasium.envs.mujoco.humanoid_v5 import HumanoidEnv

from meta_rl_envs.base import TaskEnvMixin
from meta_rl_envs.mujoco_vector import MujocoTaskVectorEnv, WithoutWarmstart, uniform_start_noise
from meta_rl_envs.vector import check_bool, check_nonnegative, check_positive_int, check_range

__all__ = ["HumanoidDirEnv", "HumanoidDirOracleEnv", "HumanoidDirOracleVectorEnv", "HumanoidDirVectorEnv",
           "centre_of_mass"]

def centre_of_mass(model: mujoco.MjModel, scratch: mujoco.MjData, qpos: np.ndarray) -> np.ndarray:
    """The (x, y) of the whole body's centre of mass at joint positions ``qpos``, as Gymnasium's ``mass_center``
    computes it, after a kinematics pass on ``scratch`` (an ``MjData`` of ``model`` whose state it overwrites)."""
    scratch.qpos[:] = qpos
    mujoco.mj_kinematics(model, scratch)
    return np.einsum("b,bj->j", model.body_mass, scratch.xipos)[:2] / model.body_mass.sum()


def healthy(qpos: np.ndarray, z_range: tuple[float, float]) -> np.ndarray:
    """Gymnasium's humanoid health for a batch of states ``[B, nq]``: the torso's height strictly inside the range."""
    return (z_range[0] < qpos[..., 2]) & (qpos[..., 2] < z_range[1])


class HumanoidDirEnv(WithoutWarmstart, HumanoidEnv, TaskEnvMixin):
    """Walk along the direction ``theta`` (the task, uniform in [0, 2 pi]; default 0, along +x).

    :param task: the initial direction angle.
    :param frame_skip: physics steps of 0.003 s per env step (5).
    :param forward_reward_weight: weight of the speed along the direction (1.25).
    :param ctrl_cost_weight: weight of the squared control cost of the applied (clipped) action (0.1).
    :param healthy_reward: reward per step while healthy (5).
    :param terminate_when_unhealthy: end the episode when the torso's height leaves ``healthy_z_range``.
    :param healthy_z_range: torso heights ``(low, high)`` counted as healthy ((1.0, 2.0)).
    :param reset_noise_scale: scale of the uniform start-state noise (0.01).
    :param render_mode: any of Gymnasium's humanoid render modes, or None.
    """

    def __init__(
        self,
        task: Any = None,
        frame_skip: int = 5,
        forward_reward_weight: float = 1.25,
        ctrl_cost_weight: float = 0.1,
        healthy_reward: float = 5.0,
        terminate_when_unhealthy: bool = True,
        healthy_z_range: tuple[float, float] | list[float] = (1.0, 2.0),
        reset_noise_scale: float = 1e-2,
        render_mode: str | None = None,
    ) -> None:
        who = type(self).__name__
        check_positive_int(frame_skip, "frame_skip", who)
        check_bool(terminate_when_unhealthy, "terminate_when_unhealthy", who)
        for name, value in (("forward_reward_weight", forward_reward_weight), ("ctrl_cost_weight", ctrl_cost_weight),
                            ("healthy_reward", healthy_reward), ("reset_noise_scale", reset_noise_scale)):
            check_nonnegative(value, name, who)
        healthy_z_range = check_range(healthy_z_range, "healthy_z_range", who)
        self.task_space = spaces.Box(0.0, 2.0 * np.pi, shape=(1,), dtype=np.float64)
        self._task = np.zeros(1)
        super().__init__(frame_skip=frame_skip, forward_reward_weight=forward_reward_weight,
                         ctrl_cost_weight=ctrl_cost_weight, contact_cost_weight=0.0, healthy_reward=healthy_reward,
                         terminate_when_unhealthy=terminate_when_unhealthy,
                         healthy_z_range=healthy_z_range, reset_noise_scale=reset_noise_scale,
                         include_cinert_in_observation=False, include_cvel_in_observation=False,
                         include_qfrc_actuator_in_observation=False, include_cfrc_ext_in_observation=False,
                         render_mode=render_mode)
        self._scratch = mujoco.MjData(self.model)
        if self.observe_task:
            self.observation_space = spaces.Box(-np.inf, np.inf, shape=(self.observation_space.shape[0] + 1,),
                                                dtype=np.float64)
        self.set_task([0.0] if task is None else task)

    def _centre_of_mass(self) -> np.ndarray:
        return centre_of_mass(self.model, self._scratch, self.data.qpos)

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One env step (``frame_skip`` physics steps); the info also holds the task."""
        before = self._centre_of_mass()
        self.do_simulation(action, self.frame_skip)
        velocity = (self._centre_of_mass() - before) / self.dt
        along = velocity[0] * np.cos(self._task[0]) + velocity[1] * np.sin(self._task[0])
        forward = self._forward_reward_weight * float(along)
        clipped = np.clip(action, self.action_space.low, self.action_space.high)
        ctrl_cost = self._ctrl_cost_weight * float(np.sum(np.square(clipped)))
        alive = bool(healthy(self.data.qpos, self._healthy_z_range))
        healthy_reward = self._healthy_reward * alive
        info = {"x_velocity": velocity[0], "y_velocity": velocity[1], "reward_forward": forward,
                "reward_ctrl": -ctrl_cost, "reward_survive": healthy_reward, "task": self._task.copy()}
        terminated = self._terminate_when_unhealthy and not alive
        return self._get_obs(), forward + healthy_reward - ctrl_cost, terminated, False, info

    def _get_obs(self) -> np.ndarray:
        observation = super()._get_obs()
        return np.concatenate([observation, self._task]) if self.observe_task else observation

    def _get_reset_info(self) -> dict[str, Any]:
        return {**super()._get_reset_info(), "task": self._task.copy()}


class HumanoidDirOracleEnv(HumanoidDirEnv):
    """:class:`HumanoidDirEnv` whose observation ends with the direction angle (the oracle baseline)."""

    observe_task = True


class HumanoidDirVectorEnv(MujocoTaskVectorEnv):
    """Native vector :class:`HumanoidDirEnv`: every humanoid stepped by ``mujoco.rollout``, then one kinematics pass
    per humanoid for its centre of mass (about 20 us each)."""

    single_env_class = HumanoidDirEnv
    default_max_episode_steps = 200

    def _setup_family(self, reference: HumanoidDirEnv) -> None:
        self.forward_reward_weight = float(reference._forward_reward_weight)
        self.ctrl_cost_weight = float(reference._ctrl_cost_weight)
        self.healthy_reward = float(reference._healthy_reward)
        self.terminate_when_unhealthy = bool(reference._terminate_when_unhealthy)
        self.healthy_z_range = reference._healthy_z_range
        self._centres = np.zeros((self.num_envs, 2))  # each sub-env's centre of mass now
        self._scratch = mujoco.MjData(self.model)

    def _start_noise(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return uniform_start_noise(rng, self.reset_noise_scale, self.model.nq, self.model.nv)

    def _reset_subenvs(self, mask: np.ndarray) -> None:
        """Fresh start states, and their centres of mass."""
        super()._reset_subenvs(mask)
        for i in np.flatnonzero(mask):
            self._centres[i] = centre_of_mass(self.model, self._scratch, self.qpos[i])

    def _observations(self) -> np.ndarray:
        parts = [self.qpos[:, 2:], self.qvel]
        if self.single_env_class.observe_task:
            parts.append(self._tasks)
        return np.concatenate(parts, axis=1)

    def _rewards(self, qpos_before: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        centres = self._centres.copy()
        for i in np.arange(self.num_envs)[self.stepped]:  # only the humanoids that moved
            centres[i] = centre_of_mass(self.model, self._scratch, self.qpos[i])
        velocity = (centres - self._centres) / self.dt
        self._centres = centres
        along = velocity[:, 0] * np.cos(self._tasks[:, 0]) + velocity[:, 1] * np.sin(self._tasks[:, 0])
        forward = self.forward_reward_weight * along
        ctrl_cost = self.ctrl_cost_weight * np.square(actions).sum(axis=1)
        alive = healthy(self.qpos, self.healthy_z_range)
        healthy_reward = self.healthy_reward * alive
        terminations = ~alive if self.terminate_when_unhealthy else np.zeros(self.num_envs, dtype=np.bool_)
        infos = {"x_velocity": velocity[:, 0], "y_velocity": velocity[:, 1], "reward_forward": forward,
                 "reward_ctrl": -ctrl_cost, "reward_survive": healthy_reward}
        return forward + healthy_reward - ctrl_cost, terminations, infos


class HumanoidDirOracleVectorEnv(HumanoidDirVectorEnv):
    """Native vector :class:`HumanoidDirOracleEnv`."""

    single_env_class = HumanoidDirOracleEnv
