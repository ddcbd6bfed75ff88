"""Half-cheetah task families of the MAML paper: a target velocity, or a running direction.

Both use Gymnasium's ``HalfCheetah-v5`` model and observation (joint positions without the x coordinate, then
joint velocities: 17 numbers). The forward speed ``v`` is the x displacement over one env step (``frame_skip`` physics
steps of 0.01 s) divided by the step's duration, as Gymnasium computes it. Rewards:

- **velocity** (task: target speed in [0, 2]): ``-|v - target| - ctrl_cost_weight * |a|^2``;
- **direction** (task: -1 or +1, equally likely): ``direction * v - ctrl_cost_weight * |a|^2``.

The forward speed can instead be rllab's (``speed_measure="centre_of_mass"``): the x velocity of the whole body's
centre of mass in the state after the step, computed for a batch of states in numpy by
:class:`PlanarCentreOfMassSpeed` (equal to MuJoCo's ``mj_subtreeVel`` within rounding).

``a`` is the action clipped to the action space [-1, 1]^6, the control the simulator actually applies (MuJoCo
clamps it as well), so the control cost is that of the applied torque, as in the paper's rllab setup.
``ctrl_cost_weight`` is 0.05. There is no termination; episodes are truncated at 200 steps by default
(``max_episode_steps``; many reproductions use 100).

The start state is Gymnasium's (``reset_noise="gymnasium"``: positions + uniform noise in
[-reset_noise_scale, reset_noise_scale], velocities + reset_noise_scale * standard normal) or rllab's, the MAML
paper's (``reset_noise="rllab"``: positions + 0.01 * standard normal, velocities + 0.1 * standard normal), so
rllab's start states are ten times closer to rest in position (the torso's pitch included).

``frame_skip`` is Gymnasium's 5 by default: an env step lasts 0.05 s and a 200-step episode 10 s. The MAML
paper's rllab cheetah stepped the same model once per env step (0.01 s, so a 200-step episode lasts 2 s and
starts from rest for a larger share of it); ``frame_skip=1`` gives that control rate.

The solver's warm start (``qacc_warmstart``) is cleared before every env step, so an env's future depends only
on its MuJoCo state (``qpos``, ``qvel``) and the actions, not on hidden solver history. That is what lets the
native vector env step all sub-envs with ``mujoco.rollout`` (which starts each call from a state without a warm
start) and still equal the single env bit for bit. Gymnasium's own ``HalfCheetah-v5`` keeps the warm start;
the difference is within the solver's tolerance, but chaotic contacts grow it over a 200-step episode.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any, NamedTuple

import mujoco
import numpy as np
from gymnasium import spaces
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

from meta_rl_envs.base import DirectionTasks, TaskEnvMixin
from meta_rl_envs.mujoco_vector import MujocoTaskVectorEnv, WithoutWarmstart
from meta_rl_envs.vector import check_bool, check_choice, check_positive_int

__all__ = [
    "HalfCheetahDirEnv",
    "HalfCheetahDirOracleEnv",
    "HalfCheetahDirOracleVectorEnv",
    "HalfCheetahDirVectorEnv",
    "HalfCheetahVelEnv",
    "HalfCheetahVelOracleEnv",
    "HalfCheetahVelOracleVectorEnv",
    "HalfCheetahVelVectorEnv",
    "PlanarCentreOfMassSpeed",
    "centre_of_mass_speed",
]

CTRL_COST_WEIGHT = 0.05
"""Weight of the squared-action cost, as in the MAML paper's half-cheetah experiments."""

DEFAULT_FRAME_SKIP = 5
"""Physics steps of 0.01 s per env step: Gymnasium's half-cheetah (the MAML paper's rllab cheetah used 1)."""
RESET_NOISES = ("gymnasium", "rllab")
"""Start-state noise: Gymnasium's half-cheetah's, or rllab's ``MujocoEnv`` (the MAML paper's)."""
RLLAB_QPOS_NOISE, RLLAB_QVEL_NOISE = 0.01, 0.1
"""Standard deviations of rllab's normal start-state noise on joint positions and velocities."""
DEFAULT_RESET_NOISE_SCALE = 0.1
SPEED_MEASURES = ("torso", "centre_of_mass")
"""Forward speed in the reward: the torso's x displacement per env step (Gymnasium's) or the whole body's
centre-of-mass x velocity after the step (rllab's, the MAML paper's)."""
_FRAME_SKIP_HINT = " (physics steps of 0.01 s per env step; Gymnasium's default 5, the MAML paper's 1)"


@contextlib.contextmanager
def _without_settotalmass_warning() -> Iterator[None]:
    """Drop MuJoCo's deprecation notice for ``settotalmass`` in Gymnasium's half_cheetah.xml (printed on every
    env built, it would flood a run's output); any other MuJoCo warning becomes a Python warning."""

    def handler(message: str) -> None:
        if "settotalmass" not in message:
            warnings.warn(f"MuJoCo: {message}", RuntimeWarning, stacklevel=2)

    previous = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(handler)
    try:
        yield
    finally:
        mujoco.set_mju_user_warning(previous)


def centre_of_mass_speed(model: mujoco.MjModel, data: mujoco.MjData, *, scratch: mujoco.MjData | None = None) -> float:
    """Forward (x) velocity of the whole cheetah's centre of mass in ``data``'s state: the MAML paper's rllab
    speed measure, where ours is the torso's x displacement per env step. ``data`` is left untouched (the
    derived quantities are computed on ``scratch``, a fresh ``MjData`` unless given, e.g. to reuse one)."""
    scratch = mujoco.MjData(model) if scratch is None else scratch
    scratch.qpos[:] = data.qpos
    scratch.qvel[:] = data.qvel
    mujoco.mj_forward(model, scratch)
    mujoco.mj_subtreeVel(model, scratch)
    return float(scratch.subtree_linvel[model.body("torso").id, 0])


class PlanarCentreOfMassSpeed:
    """x velocity of the centre of mass of ``root``'s subtree (for the cheetah's torso: the whole body) for a batch
    of states, in numpy: what ``mj_subtreeVel`` gives, without one MuJoCo call per state. It holds for planar
    models only, where every body frame is its parent's rotated about y, hinges turn about y at the body's
    origin, and slides move in the x-z plane (the half-cheetah); others get a ``ValueError``.
    """

    def __init__(self, model: mujoco.MjModel, root: str = "torso") -> None:
        root_id = model.body(root).id
        if model.body_parentid[root_id] != 0:
            raise ValueError(f"PlanarCentreOfMassSpeed: root {root!r} must be a child of the world body")
        bodies = [b for b in range(model.nbody) if _descends(model, b, root_id)]  # parents before children
        total_mass = float(model.body_mass[bodies].sum())
        self._plan: list[_PlanarBody] = []
        for b in bodies:
            if not np.array_equal(model.body_quat[b], [1.0, 0.0, 0.0, 0.0]):
                raise ValueError(f"PlanarCentreOfMassSpeed: body {model.body(b).name!r} is rotated in its parent "
                                 f"(quat {model.body_quat[b].tolist()}); allowed: planar models, frames unrotated")
            joints = []
            for j in range(model.body_jntadr[b], model.body_jntadr[b] + model.body_jntnum[b]):
                axis, kind = model.jnt_axis[j], model.jnt_type[j]
                hinge = kind == mujoco.mjtJoint.mjJNT_HINGE and axis[0] == axis[2] == 0.0 and not model.jnt_pos[j].any()
                slide = kind == mujoco.mjtJoint.mjJNT_SLIDE and axis[1] == 0.0
                if not (hinge or slide):
                    raise ValueError(f"PlanarCentreOfMassSpeed: joint {model.joint(j).name!r} (type {int(kind)}, axis "
                                     f"{axis.tolist()}) is not planar; allowed: hinges about y at the body's origin, "
                                     "slides in the x-z plane")
                adr = int(model.jnt_qposadr[j])
                joints.append(_PlanarJoint(hinge, adr, int(model.jnt_dofadr[j]), float(model.qpos0[adr]),
                                           float(axis[0]), float(axis[1]), float(axis[2])))
            parent = int(model.body_parentid[b])
            self._plan.append(_PlanarBody(
                b, parent if parent != 0 else -1, float(model.body_pos[b, 0]), float(model.body_pos[b, 2]),
                float(model.body_ipos[b, 0]), float(model.body_ipos[b, 2]), float(model.body_mass[b]) / total_mass,
                tuple(joints)))

    def __call__(self, qpos: np.ndarray, qvel: np.ndarray) -> np.ndarray:
        """Speeds ``[B]`` of the states ``qpos [B, nq]``, ``qvel [B, nv]``.

        Each body's frame is its parent's, moved by ``body_pos`` and then by its joints in order; a point of the
        body moves at the sum of its slides' speeds along their axes plus, for every hinge above it, the hinge's
        rate times the point's height above the hinge (the x part of ``omega y x r``)."""
        zero = np.zeros(qpos.shape[0])
        # per body: angle about y, origin height z, x velocity from the slides, hinges above as (anchor z, rate);
        # heights are all the x velocity needs (omega y x r has x part omega * r_z)
        frames: dict[int, tuple[Any, Any, Any, list[tuple[Any, Any]]]] = {-1: (zero, zero, zero, [])}
        speed = zero
        for body in self._plan:
            theta, z, slide_vx, parent_chain = frames[body.parent]
            chain = list(parent_chain)
            z = z + _rotate(theta, body.pos_x, body.pos_z)[1]
            for joint in body.joints:
                q = qpos[:, joint.qpos_adr] - joint.qpos0
                rate = qvel[:, joint.dof_adr]
                if joint.hinge:  # turns the frame about y at its origin, leaves the origin where it is
                    theta = theta + joint.axis_y * q
                    chain.append((z, joint.axis_y * rate))
                else:
                    axis_x, axis_z = _rotate(theta, joint.axis_x, joint.axis_z)
                    z = z + axis_z * q
                    slide_vx = slide_vx + axis_x * rate
            frames[body.id] = (theta, z, slide_vx, chain)
            centre_z = z + _rotate(theta, body.ipos_x, body.ipos_z)[1]
            speed = speed + body.weight * (slide_vx + sum(rate * (centre_z - anchor_z) for anchor_z, rate in chain))
        return speed


class _PlanarJoint(NamedTuple):
    hinge: bool
    qpos_adr: int
    dof_adr: int
    qpos0: float
    axis_x: float
    axis_y: float
    axis_z: float


class _PlanarBody(NamedTuple):
    id: int
    parent: int  # -1: the world
    pos_x: float
    pos_z: float
    ipos_x: float
    ipos_z: float
    weight: float  # mass over the subtree's mass
    joints: tuple[_PlanarJoint, ...]


def _descends(model: mujoco.MjModel, body: int, root: int) -> bool:
    """Whether ``body`` is ``root`` or below it."""
    while body not in (root, 0):
        body = int(model.body_parentid[body])
    return body == root


def _rotate(theta: Any, x: float, z: float) -> tuple[Any, Any]:
    """(x, z) turned by ``theta`` about y, as MuJoCo turns frames."""
    cos, sin = np.cos(theta), np.sin(theta)
    return cos * x + sin * z, cos * z - sin * x


def check_reset_noise(reset_noise: Any, reset_noise_scale: Any, who: str) -> str:
    """``reset_noise`` if it is one of :data:`RESET_NOISES`; rllab's noise has fixed scales, so then
    ``reset_noise_scale`` must stay at its default (else a ``ValueError`` naming the value)."""
    check_choice(reset_noise, "reset_noise", RESET_NOISES, who)
    if reset_noise == "rllab" and reset_noise_scale != DEFAULT_RESET_NOISE_SCALE:
        raise ValueError(f"{who}: reset_noise_scale={reset_noise_scale!r} applies to reset_noise='gymnasium' only; "
                         f"rllab's noise is fixed (positions {RLLAB_QPOS_NOISE}, velocities {RLLAB_QVEL_NOISE}, "
                         "standard deviations)")
    return reset_noise


def start_noise(rng: np.random.Generator, reset_noise: str, scale: float, nq: int,
                nv: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise added to the initial joint positions and velocities, drawn from ``rng`` in the same order by the single
    and the vector env (so both give the same start states for the same seeds)."""
    if reset_noise == "rllab":
        return RLLAB_QPOS_NOISE * rng.standard_normal(nq), RLLAB_QVEL_NOISE * rng.standard_normal(nv)
    return rng.uniform(low=-scale, high=scale, size=nq), scale * rng.standard_normal(nv)


def velocity_reward(speed: np.ndarray | float, target: np.ndarray | float) -> np.ndarray | float:
    """Forward reward of the velocity family: minus the distance between the speed and the target speed."""
    return -np.abs(speed - target)


def direction_reward(speed: np.ndarray | float, direction: np.ndarray | float) -> np.ndarray | float:
    """Forward reward of the direction family: the speed along the task's direction."""
    return direction * speed


class _HalfCheetahTaskEnv(WithoutWarmstart, HalfCheetahEnv, TaskEnvMixin):
    """Gymnasium's half-cheetah with a task (the family is set by the subclass's class attributes)."""

    task_low: float
    task_high: float
    default_task: float

    def __init__(
        self,
        task: Any = None,
        ctrl_cost_weight: float = CTRL_COST_WEIGHT,
        reset_noise_scale: float = DEFAULT_RESET_NOISE_SCALE,
        frame_skip: int = DEFAULT_FRAME_SKIP,
        exclude_current_positions_from_observation: bool = True,
        reset_noise: str = "gymnasium",
        speed_measure: str = "torso",
        render_mode: str | None = None,
    ) -> None:
        frame_skip = check_positive_int(frame_skip, "frame_skip", type(self).__name__, _FRAME_SKIP_HINT)
        self.reset_noise = check_reset_noise(reset_noise, reset_noise_scale, type(self).__name__)
        self.speed_measure = check_choice(speed_measure, "speed_measure", SPEED_MEASURES, type(self).__name__)
        check_bool(exclude_current_positions_from_observation, "exclude_current_positions_from_observation",
                   type(self).__name__)
        self.task_space = spaces.Box(self.task_low, self.task_high, shape=(1,), dtype=np.float64)
        self._task = np.array([self.default_task])
        with _without_settotalmass_warning():
            super().__init__(ctrl_cost_weight=ctrl_cost_weight, reset_noise_scale=reset_noise_scale,
                             frame_skip=frame_skip, render_mode=render_mode,
                             exclude_current_positions_from_observation=exclude_current_positions_from_observation)
        self._centre_of_mass_speed = (PlanarCentreOfMassSpeed(self.model) if self.speed_measure == "centre_of_mass"
                                      else None)
        if self.observe_task:
            self.observation_space = spaces.Box(-np.inf, np.inf, shape=(self.observation_space.shape[0] + 1,),
                                                dtype=np.float64)
        self.set_task([self.default_task] if task is None else task)

    def _forward_reward(self, speed: float) -> float:
        raise NotImplementedError

    def reset_model(self) -> np.ndarray:
        """The initial state plus the start-state noise of ``reset_noise`` (see the module docstring)."""
        if self.reset_noise == "gymnasium":
            return super().reset_model()
        qpos_noise, qvel_noise = start_noise(self.np_random, self.reset_noise, self._reset_noise_scale,
                                             self.model.nq, self.model.nv)
        self.set_state(self.init_qpos + qpos_noise, self.init_qvel + qvel_noise)
        return self._get_obs()

    def control_cost(self, action: np.ndarray) -> float:
        """``ctrl_cost_weight * |a|^2`` of the applied (clipped) action."""
        clipped = np.clip(action, self.action_space.low, self.action_space.high)
        return self._ctrl_cost_weight * float(np.sum(np.square(clipped)))

    def _get_rew(self, x_velocity: float, action: np.ndarray) -> tuple[float, dict[str, float]]:
        speed = x_velocity  # Gymnasium's: the torso's x displacement over the step, per second
        if self._centre_of_mass_speed is not None:
            speed = float(self._centre_of_mass_speed(self.data.qpos[None], self.data.qvel[None])[0])
        forward = float(self._forward_reward(speed))
        ctrl_cost = self.control_cost(action)
        return forward - ctrl_cost, {"reward_forward": forward, "reward_ctrl": -ctrl_cost}

    def _get_obs(self) -> np.ndarray:
        observation = super()._get_obs()
        return np.concatenate([observation, self._task]) if self.observe_task else observation

    def _get_reset_info(self) -> dict[str, Any]:
        return {**super()._get_reset_info(), "task": self._task.copy()}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One env step (``frame_skip`` physics steps); the info also holds the task."""
        observation, reward, terminated, truncated, info = super().step(action)
        return observation, reward, terminated, truncated, {**info, "task": self._task.copy()}


class HalfCheetahVelEnv(_HalfCheetahTaskEnv):
    """Run at a target forward speed (task: the speed, uniform in [0, 2]).

    :param task: initial target speed; default 1.0.
    :param ctrl_cost_weight: weight of the squared-action cost (0.05).
    :param reset_noise_scale: scale of the start-state noise, as Gymnasium's half-cheetah (0.1).
    :param frame_skip: physics steps of 0.01 s per env step (Gymnasium's 5; the paper's rllab cheetah: 1).
    :param exclude_current_positions_from_observation: as Gymnasium's: False puts the x position first in the
        observation (18 numbers; rllab's cheetah observed its centre of mass, x included).
    :param reset_noise: start-state noise, ``"gymnasium"`` (scaled by ``reset_noise_scale``) or ``"rllab"`` (the
        MAML paper's: normal, 0.01 on positions and 0.1 on velocities).
    :param speed_measure: the speed in the reward, ``"torso"`` (the torso's x displacement per second over the step,
        Gymnasium's) or ``"centre_of_mass"`` (the whole body's centre-of-mass x velocity after the step, rllab's).
    :param render_mode: any of Gymnasium's half-cheetah render modes, or None.
    """

    task_low, task_high, default_task = 0.0, 2.0, 1.0

    def _forward_reward(self, speed: float) -> float:
        return velocity_reward(speed, self._task[0])


class HalfCheetahDirEnv(DirectionTasks, _HalfCheetahTaskEnv):
    """Run forward (task +1) or backward (task -1), each with probability 1/2.

    :param task: initial direction, -1 or +1; default +1.
    :param ctrl_cost_weight: weight of the squared-action cost (0.05).
    :param reset_noise_scale: scale of the start-state noise, as Gymnasium's half-cheetah (0.1).
    :param frame_skip: physics steps of 0.01 s per env step (Gymnasium's 5; the paper's rllab cheetah: 1).
    :param exclude_current_positions_from_observation: as Gymnasium's: False puts the x position first in the
        observation (18 numbers; rllab's cheetah observed its centre of mass, x included).
    :param reset_noise: start-state noise, ``"gymnasium"`` (scaled by ``reset_noise_scale``) or ``"rllab"`` (the
        MAML paper's: normal, 0.01 on positions and 0.1 on velocities).
    :param speed_measure: the speed in the reward, ``"torso"`` (the torso's x displacement per second over the step,
        Gymnasium's) or ``"centre_of_mass"`` (the whole body's centre-of-mass x velocity after the step, rllab's).
    :param render_mode: any of Gymnasium's half-cheetah render modes, or None.
    """

    task_low, task_high, default_task = -1.0, 1.0, 1.0

    def _forward_reward(self, speed: float) -> float:
        return direction_reward(speed, self._task[0])



class HalfCheetahVelOracleEnv(HalfCheetahVelEnv):
    """:class:`HalfCheetahVelEnv` whose observation ends with the target speed (the oracle baseline)."""

    observe_task = True


class HalfCheetahDirOracleEnv(HalfCheetahDirEnv):
    """:class:`HalfCheetahDirEnv` whose observation ends with the direction (the oracle baseline)."""

    observe_task = True


class _HalfCheetahTaskVectorEnv(MujocoTaskVectorEnv):
    """All cheetahs stepped by ``mujoco.rollout`` in C++ threads; observations and rewards in numpy.

    Takes the single env's keywords (``ctrl_cost_weight``, ``reset_noise_scale``, ``frame_skip``,
    ``exclude_current_positions_from_observation``, ``reset_noise``, ``speed_measure``) and the vector ones of
    :class:`~meta_rl_envs.mujoco_vector.MujocoTaskVectorEnv`; episodes are truncated at 200 steps by default.
    """

    single_env_class: type[_HalfCheetahTaskEnv]
    default_max_episode_steps = 200

    def _setup_family(self, reference: _HalfCheetahTaskEnv) -> None:
        self.ctrl_cost_weight = float(reference._ctrl_cost_weight)
        self.reset_noise, self.speed_measure = reference.reset_noise, reference.speed_measure
        self._centre_of_mass_speed = reference._centre_of_mass_speed
        self._observed_qpos = slice(1 if reference._exclude_current_positions_from_observation else 0, None)

    def _forward_rewards(self, speeds: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _start_noise(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return start_noise(rng, self.reset_noise, self.reset_noise_scale, self.model.nq, self.model.nv)

    def _observations(self) -> np.ndarray:
        parts = [self.qpos[:, self._observed_qpos], self.qvel]  # x is qpos[0]
        if self.single_env_class.observe_task:
            parts.append(self._tasks)
        return np.concatenate(parts, axis=1)

    def _rewards(self, qpos_before: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        speeds = (self.qpos[:, 0] - qpos_before[:, 0]) / self.dt
        rewarded_speeds = speeds
        if self._centre_of_mass_speed is not None:
            rewarded_speeds = self._centre_of_mass_speed(self.qpos, self.qvel)
        ctrl_cost = self.ctrl_cost_weight * np.square(actions).sum(axis=1)
        rewards = self._forward_rewards(rewarded_speeds) - ctrl_cost
        return rewards, np.zeros(self.num_envs, dtype=np.bool_), {"x_velocity": speeds}


class HalfCheetahVelVectorEnv(_HalfCheetahTaskVectorEnv):
    """Native vector :class:`HalfCheetahVelEnv`."""

    single_env_class = HalfCheetahVelEnv

    def _forward_rewards(self, speeds: np.ndarray) -> np.ndarray:
        return velocity_reward(speeds, self._tasks[:, 0])


class HalfCheetahDirVectorEnv(DirectionTasks, _HalfCheetahTaskVectorEnv):
    """Native vector :class:`HalfCheetahDirEnv`."""

    single_env_class = HalfCheetahDirEnv

    def _forward_rewards(self, speeds: np.ndarray) -> np.ndarray:
        return direction_reward(speeds, self._tasks[:, 0])



class HalfCheetahVelOracleVectorEnv(HalfCheetahVelVectorEnv):
    """Native vector :class:`HalfCheetahVelOracleEnv`."""

    single_env_class = HalfCheetahVelOracleEnv


class HalfCheetahDirOracleVectorEnv(HalfCheetahDirVectorEnv):
    """Native vector :class:`HalfCheetahDirOracleEnv`."""

    single_env_class = HalfCheetahDirOracleEnv
