"""One native vector env for every MuJoCo task family: all sub-envs stepped by ``mujoco.rollout`` in C++ threads.

A family gives it a single env (the reference it is held equal to, step for step) and three hooks computed with
numpy over the whole batch: the observation, the reward and termination, and (if it has its own) the start-state
noise. The time limit, autoreset, seeding and task interface come from :class:`NativeTaskVectorEnv`; the physics,
the thread pool, the buffers and the state layout from here.

The single env must clear the constraint solver's warm start before every env step (``mujoco.rollout`` starts each
call without one): then an env's future depends only on its state (``qpos``, ``qvel``) and the actions, and the
batched steps equal the single env's bit for bit.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import mujoco
import numpy as np
from gymnasium.vector import AutoresetMode
from mujoco import rollout

from meta_rl_envs.vector import NativeTaskVectorEnv

__all__ = ["MujocoTaskVectorEnv", "WithoutWarmstart", "default_num_threads", "uniform_start_noise"]


def default_num_threads() -> int:
    """Cores this process may run on (what the sampler uses unless told otherwise)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def uniform_start_noise(rng: np.random.Generator, scale: float, nq: int, nv: int) -> tuple[np.ndarray, np.ndarray]:
    """The start noise of Gymnasium's walker, hopper and humanoid: uniform in +-scale on positions and velocities."""
    return rng.uniform(low=-scale, high=scale, size=nq), rng.uniform(low=-scale, high=scale, size=nv)


class WithoutWarmstart:
    """For a Gymnasium ``MujocoEnv`` (list it before the env class): clear the constraint solver's warm start before
    every env step, as each ``mujoco.rollout`` call starts without one, so the single env and the batched one take
    the same steps."""

    data: mujoco.MjData

    def _step_mujoco_simulation(self, ctrl: np.ndarray, n_frames: int) -> None:
        self.data.qacc_warmstart[:] = 0.0
        super()._step_mujoco_simulation(ctrl, n_frames)  # type: ignore[misc]


class MujocoTaskVectorEnv(NativeTaskVectorEnv):
    """All sub-envs of a MuJoCo family stepped by one ``mujoco.rollout`` call per env step.

    A family subclasses it, sets ``single_env_class`` and implements:

    - ``_observations()``: ``[num_envs, obs_dim]`` from ``self.qpos`` ``[num_envs, nq]``, ``self.qvel`` and
      ``self._tasks``;
    - ``_rewards(qpos_before, actions)``: ``(rewards, terminations, infos)`` after a step, from the state before
      (``qpos_before``) and now, and the applied (clipped) actions;
    - optionally ``_start_noise(rng)``: ``(qpos_noise [nq], qvel_noise [nv])`` drawn as the single env draws them
      (default: Gymnasium's ``MujocoEnv`` families' uniform positions and normal velocities, scaled by
      ``reset_noise_scale``).

    Keyword arguments other than the vector ones go to the single env, which checks them; the vector env reads the
    model, the spaces, ``frame_skip``, the initial state and the default task from that instance.

    :param num_envs: number of sub-envs.
    :param max_episode_steps: truncation horizon per sub-env.
    :param autoreset_mode: ``NEXT_STEP`` (default) or ``DISABLED``, as ``SyncVectorEnv``.
    :param task: initial task of every sub-env; default the single env's.
    :param num_threads: threads stepping the physics; default (None or 0) every core this process may use.
    :param render_mode: only None.
    """

    single_env_class: type
    supports_threads = True  # make_task_vec passes the sampler's thread count
    default_max_episode_steps = 1000

    def __init__(
        self,
        num_envs: int,
        max_episode_steps: int | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        task: Any = None,
        num_threads: int | None = None,
        render_mode: str | None = None,
        **family_kwargs: Any,
    ) -> None:
        who = type(self).__name__
        self._check_family_kwargs(family_kwargs)
        if render_mode is not None:
            raise ValueError(f"{who}: render_mode={render_mode!r} is not supported; allowed: None "
                             f"(render a single {self.single_env_class.__name__} instead)")
        if num_threads is None or num_threads == 0:
            num_threads = default_num_threads()
        if isinstance(num_threads, bool) or not isinstance(num_threads, int | np.integer) or num_threads < 0:
            raise ValueError(f"{who}: num_threads must be a non-negative int (0 = all cores), got {num_threads!r}")
        reference = self.single_env_class(**family_kwargs)
        self._init_vector(
            num_envs, self.default_max_episode_steps if max_episode_steps is None else max_episode_steps,
            autoreset_mode, reference.observation_space, reference.action_space, reference.task_space, task,
            reference.task,
        )
        self.model = reference.model
        self.frame_skip, self.dt = reference.frame_skip, reference.dt
        self.reset_noise_scale = float(getattr(reference, "_reset_noise_scale", 0.0))
        self.num_threads = int(num_threads)
        nq, nv = self.model.nq, self.model.nv
        self._init_qpos, self._init_qvel = reference.init_qpos.copy(), reference.init_qvel.copy()
        self._qpos = slice(1, 1 + nq)  # layout of mjSTATE_FULLPHYSICS: time, qpos, qvel, then the rest
        self._qvel = slice(1 + nq, 1 + nq + nv)

        spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
        start = np.empty(mujoco.mj_stateSize(self.model, spec))
        mujoco.mj_resetData(self.model, reference.data)
        mujoco.mj_getState(self.model, reference.data, start, spec)
        self._start_state = start  # full physics state after mj_resetData (time 0, init_qpos, init_qvel)
        self._state = np.tile(start, (self.num_envs, 1))  # [num_envs, nstate]
        # rollout's buffers, allocated once (skip_checks=True takes them as they are: full shapes, no tiling)
        self._models = [self.model] * self.num_envs
        self._trajectory = np.empty((self.num_envs, self.frame_skip, start.size))
        self._sensordata = np.empty((self.num_envs, self.frame_skip, self.model.nsensordata))
        self._control = np.zeros((self.num_envs, self.frame_skip, self.model.nu))  # held for frame_skip steps
        self._datas = [mujoco.MjData(self.model) for _ in range(self.num_threads)]
        self._rollout = rollout.Rollout(nthread=self.num_threads if self.num_threads > 1 else 0)
        self._active: np.ndarray | None = None  # sub-envs to step (None: all), see set_active
        self._stepped: np.ndarray | slice = slice(None)
        self.physics_steps = 0  # sub-env steps taken (for benchmarks: frozen sub-envs are not stepped)
        self._setup_family(reference)
        reference.close()

    def _check_family_kwargs(self, family_kwargs: dict[str, Any]) -> None:
        """A ``TypeError`` naming any keyword neither this class nor its single env takes, and all that they do."""
        own = [name for name, parameter in inspect.signature(MujocoTaskVectorEnv.__init__).parameters.items()
               if name != "self" and parameter.kind is not inspect.Parameter.VAR_KEYWORD]
        single = [name for name in inspect.signature(self.single_env_class.__init__).parameters
                  if name not in ("self", "task", "render_mode", "kwargs")]
        unknown = sorted(set(family_kwargs) - set(single))
        if unknown:
            allowed = [*own[:-1], *single, own[-1]]  # render_mode last
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) {unknown}; allowed: "
                            f"{', '.join(allowed)}")

    def _setup_family(self, reference: Any) -> None:
        """Read the family's settings from the single env (before it is closed); the default reads nothing."""

    @property
    def qpos(self) -> np.ndarray:
        """Joint positions of every sub-env now, ``[num_envs, nq]`` (a view of the state)."""
        return self._state[:, self._qpos]

    @property
    def qvel(self) -> np.ndarray:
        """Joint velocities of every sub-env now, ``[num_envs, nv]`` (a view of the state)."""
        return self._state[:, self._qvel]

    def close(self, **kwargs: Any) -> None:
        """Stop the physics threads."""
        self._rollout.close()
        super().close(**kwargs)

    def _start_noise(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Gymnasium's ``MujocoEnv`` families' start noise: positions uniform in +-scale, velocities scale * normal."""
        scale = self.reset_noise_scale
        return rng.uniform(low=-scale, high=scale, size=self.model.nq), scale * rng.standard_normal(self.model.nv)

    def _reset_subenvs(self, mask: np.ndarray) -> None:
        """Fresh start states for ``mask``, noise drawn as the single env draws it."""
        for i in np.flatnonzero(mask):
            qpos_noise, qvel_noise = self._start_noise(self.sub_env_rngs[i])
            state = self._state[i]
            state[:] = self._start_state
            state[self._qpos] = self._init_qpos + qpos_noise
            state[self._qvel] = self._init_qvel + qvel_noise

    def _rewards(self, qpos_before: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        raise NotImplementedError

    def set_active(self, active: np.ndarray | None) -> None:
        """Step only the sub-envs in ``active`` (a bool mask) from the next step on; the others keep their state (and
        their step's outputs are meaningless). The sampler freezes the sub-envs whose episode has ended, so their
        physics is not computed and thrown away. ``None`` (and every full ``reset``) makes all active again."""
        if active is not None:
            active = np.asarray(active, dtype=np.bool_)
            if active.shape != (self.num_envs,):
                raise ValueError(f"{type(self).__name__}.set_active: mask has shape {active.shape}, expected "
                                 f"({self.num_envs},)")
            if active.all():
                active = None
        self._active = active

    def reset(self, *, seed: Any = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """As :meth:`NativeTaskVectorEnv.reset`; a full reset makes every sub-env active again."""
        if options is None or options.get("reset_mask") is None:
            self._active = None
        return super().reset(seed=seed, options=options)

    @property
    def stepped(self) -> np.ndarray | slice:
        """The sub-envs the last step moved: indices, or ``slice(None)`` for all (for the hooks)."""
        return self._stepped

    def _step_subenvs(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every active sub-env ``frame_skip`` physics steps in one ``mujoco.rollout`` call."""
        clipped = np.clip(actions.astype(np.float64), self.single_action_space.low, self.single_action_space.high)
        qpos_before = self.qpos.copy()
        if self._active is None:
            self._stepped = slice(None)
            self._control[:] = clipped[:, None, :]
            self._rollout.rollout(
                self._models, self._datas, self._state, self._control, nstep=self.frame_skip,
                state=self._trajectory, sensordata=self._sensordata, skip_checks=True,
            )
            self._state[:] = self._trajectory[:, -1]
            self.physics_steps += self.num_envs
        elif self._active.any():
            index = self._stepped = np.flatnonzero(self._active)
            state, count = self._state[index], len(index)
            control = np.repeat(clipped[index, None, :], self.frame_skip, axis=1)
            trajectory = np.empty((count, self.frame_skip, state.shape[1]))
            sensordata = np.empty((count, self.frame_skip, self.model.nsensordata))
            self._rollout.rollout(
                [self._models[i] for i in index], self._datas, state, control, nstep=self.frame_skip,
                state=trajectory, sensordata=sensordata, skip_checks=True,
            )
            self._state[index] = trajectory[:, -1]
            self.physics_steps += count
        else:
            self._stepped = np.zeros(0, dtype=np.int64)
        return self._rewards(qpos_before, clipped)
