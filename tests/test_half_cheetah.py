"""Tests for the half-cheetah families (velocity, direction and their oracles): env checks, exact rewards,
native vector env vs ``SyncVectorEnv`` of single envs bit for bit, task interface, and a short sampler run."""

from __future__ import annotations

import os
import warnings
from typing import Any

import gymnasium
import mujoco
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from meta_rl.policy import GaussianMLPPolicy
from meta_rl.sampler import Sampler
from meta_rl.streams import EpisodeStreams
from meta_rl_envs import (
    HalfCheetahDirOracleVectorEnv,
    HalfCheetahDirVectorEnv,
    HalfCheetahVelOracleVectorEnv,
    HalfCheetahVelVectorEnv,
    make_task_vec,
)
from meta_rl_envs.half_cheetah import PlanarCentreOfMassSpeed, centre_of_mass_speed

VEL_ID = "meta_rl/HalfCheetahVel-v0"
DIR_ID = "meta_rl/HalfCheetahDir-v0"
VEL_ORACLE_ID = "meta_rl/HalfCheetahVelOracle-v0"
DIR_ORACLE_ID = "meta_rl/HalfCheetahDirOracle-v0"
ALL_IDS = [VEL_ID, DIR_ID, VEL_ORACLE_ID, DIR_ORACLE_ID]

VECTOR_CLASSES = {
    VEL_ID: HalfCheetahVelVectorEnv,
    DIR_ID: HalfCheetahDirVectorEnv,
    VEL_ORACLE_ID: HalfCheetahVelOracleVectorEnv,
    DIR_ORACLE_ID: HalfCheetahDirOracleVectorEnv,
}
SINGLE_CLASS_NAMES = {
    VEL_ID: "HalfCheetahVelEnv",
    DIR_ID: "HalfCheetahDirEnv",
    VEL_ORACLE_ID: "HalfCheetahVelOracleEnv",
    DIR_ORACLE_ID: "HalfCheetahDirOracleEnv",
}
ORACLE_IDS = {VEL_ORACLE_ID, DIR_ORACLE_ID}
DIRECTION_IDS = {DIR_ID, DIR_ORACLE_ID}

OBS_DIM = 17  # HalfCheetah-v5: 8 joint positions (no x) + 9 joint velocities
ACTION_DIM = 6
CTRL_COST_WEIGHT = 0.05
NUM_ENVS = 4  # B: sub-envs in the vector comparisons
HORIZON = 15  # H: short episodes so that truncation and the autoreset step come quickly


def tasks_for(env_id: str) -> np.ndarray:
    """One task per sub-env, ``[NUM_ENVS, 1]``: both directions, or target speeds including the bounds."""
    if env_id in DIRECTION_IDS:
        return np.array([[1.0], [-1.0], [-1.0], [1.0]])
    return np.array([[0.0], [0.7], [1.3], [2.0]])


def random_actions(rng: np.random.Generator, num_envs: int = NUM_ENVS) -> np.ndarray:
    """float64 actions in [-1.6, 1.6]: many components lie outside [-1, 1], so clipping matters."""
    return rng.uniform(-1.6, 1.6, size=(num_envs, ACTION_DIM))


def make_single(env_id: str, task) -> gymnasium.Env:
    """A single env through gymnasium.make (TimeLimit, checkers) with the given task."""
    env = gymnasium.make(env_id)
    env.unwrapped.set_task(task)
    return env


def make_reference(
    env_id: str, tasks: np.ndarray, autoreset_mode=AutoresetMode.NEXT_STEP, **env_kwargs
) -> SyncVectorEnv:
    """``SyncVectorEnv`` of single envs (TimeLimit = HORIZON), sub-env ``i`` on ``tasks[i]``."""
    reference = SyncVectorEnv(
        [lambda: gymnasium.make(env_id, max_episode_steps=HORIZON, **env_kwargs)] * len(tasks),
        autoreset_mode=autoreset_mode,
    )
    for sub_env, task in zip(reference.envs, tasks, strict=True):
        sub_env.unwrapped.set_task(task)
    return reference


def assert_same_step(native_out: tuple, reference_out: tuple) -> None:
    """Observations, rewards, flags, x velocities and tasks equal bit for bit."""
    obs, rewards, terminations, truncations, info = native_out
    ref_obs, ref_rewards, ref_terminations, ref_truncations, ref_info = reference_out
    assert obs.dtype == ref_obs.dtype == np.float64
    assert rewards.dtype == ref_rewards.dtype == np.float64
    np.testing.assert_array_equal(obs, ref_obs)
    np.testing.assert_array_equal(rewards, ref_rewards)
    np.testing.assert_array_equal(terminations, ref_terminations)
    np.testing.assert_array_equal(truncations, ref_truncations)
    # SyncVectorEnv has no x_velocity key when every sub-env was autoreset on this step; it is 0 there
    np.testing.assert_array_equal(info["x_velocity"], ref_info.get("x_velocity", np.zeros(len(obs))))
    # the single env's reset info has no task (see test_single_env_reset_info_holds_the_task), so the autoreset
    # sub-envs of SyncVectorEnv carry none: compare where it has one; the native env gives the task everywhere
    has_task = ref_info.get("_task", np.zeros(len(obs), dtype=bool))
    if has_task.any():
        np.testing.assert_array_equal(info["task"][has_task], ref_info["task"][has_task])
    np.testing.assert_array_equal(info["_task"], np.ones(len(obs), dtype=bool))


# ----------------------------------------------------------------------------------------- single env


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_check_env_and_registration(env_id: str) -> None:
    spec = gymnasium.spec(env_id)
    assert spec.max_episode_steps == 200
    assert spec.entry_point == f"meta_rl_envs.half_cheetah:{SINGLE_CLASS_NAMES[env_id]}"
    assert spec.vector_entry_point == f"meta_rl_envs.half_cheetah:{VECTOR_CLASSES[env_id].__name__}"
    env = gymnasium.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # infinite observation bounds: warnings, not errors
        check_env(env.unwrapped, skip_render_check=True)
    obs_dim = OBS_DIM + 1 if env_id in ORACLE_IDS else OBS_DIM
    assert env.observation_space == gymnasium.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float64)
    assert env.action_space == gymnasium.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
    low, high = (-1.0, 1.0) if env_id in DIRECTION_IDS else (0.0, 2.0)
    assert env.unwrapped.task_space == gymnasium.spaces.Box(low, high, (1,), np.float64)
    np.testing.assert_array_equal(env.unwrapped.task, [1.0])  # default task of both families
    assert env.unwrapped.dt == 0.05


@pytest.mark.parametrize("env_id", [VEL_ID, DIR_ORACLE_ID])
def test_check_env_at_the_papers_control_rate_and_start_state(env_id: str) -> None:
    env = gymnasium.make(env_id, frame_skip=1, reset_noise="rllab")  # rllab's cheetah: its rate and start state
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env.unwrapped, skip_render_check=True)
    assert env.unwrapped.dt == 0.01
    assert env.unwrapped.metadata["render_fps"] == 100


@pytest.mark.parametrize(("env_id", "task"), [(VEL_ID, 0.0), (VEL_ID, 1.7), (DIR_ID, 1.0), (DIR_ID, -1.0)])
def test_reward_formula_exact(env_id: str, task: float) -> None:
    env = make_single(env_id, [task])
    env.reset(seed=5)
    data = env.unwrapped.data
    rng = np.random.default_rng(0)
    for _ in range(12):
        action = rng.uniform(-1.6, 1.6, size=ACTION_DIM)
        x_before = float(data.qpos[0])
        _, reward, terminated, truncated, info = env.step(action)
        x_after = float(data.qpos[0])
        assert info["x_velocity"] == (x_after - x_before) / env.unwrapped.dt
        speed = info["x_velocity"]
        forward = task * speed if env_id in DIRECTION_IDS else -abs(speed - task)
        ctrl_cost = CTRL_COST_WEIGHT * np.sum(np.clip(action, -1.0, 1.0) ** 2)
        assert reward == forward - ctrl_cost
        assert info["reward_forward"] == forward
        assert info["reward_ctrl"] == -ctrl_cost
        np.testing.assert_array_equal(info["task"], [task])
        assert (terminated, truncated) == (False, False)


def test_out_of_range_action_acts_and_costs_as_the_clipped_one() -> None:
    raw, clipped = make_single(VEL_ID, [1.0]), make_single(VEL_ID, [1.0])
    raw.reset(seed=0)
    clipped.reset(seed=0)
    action = np.array([3.0, -2.0, 0.5, 0.0, -1.0, 1.5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the passive checker warns about actions outside the action space
        for _ in range(3):
            raw_out = raw.step(action)
            clipped_out = clipped.step(np.clip(action, -1.0, 1.0))
            np.testing.assert_array_equal(raw_out[0], clipped_out[0])  # MuJoCo clamps the control
            assert raw_out[1] == clipped_out[1]
            assert raw_out[4]["reward_ctrl"] == -CTRL_COST_WEIGHT * 4.25  # 1 + 1 + 0.25 + 0 + 1 + 1


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_observation_size_and_oracle_task_suffix(env_id: str) -> None:
    task = [-1.0] if env_id in DIRECTION_IDS else [0.3]
    env = make_single(env_id, task)
    obs, _ = env.reset(seed=1)
    step_obs, *_ = env.step(np.full(ACTION_DIM, 0.4))
    env.unwrapped.set_task([1.0])  # takes effect at once
    new_task_obs, *_ = env.step(np.full(ACTION_DIM, 0.4))
    if env_id in ORACLE_IDS:
        assert obs.shape == step_obs.shape == (OBS_DIM + 1,)
        assert obs[-1] == step_obs[-1] == task[0]
        assert new_task_obs[-1] == 1.0
    else:
        assert obs.shape == step_obs.shape == new_task_obs.shape == (OBS_DIM,)


def test_oracle_observation_is_the_plain_observation_plus_the_task() -> None:
    plain = make_single(VEL_ID, [0.9])
    oracle = make_single(VEL_ORACLE_ID, [0.9])
    obs, _ = plain.reset(seed=3)
    oracle_obs, _ = oracle.reset(seed=3)
    np.testing.assert_array_equal(oracle_obs, np.append(obs, 0.9))
    action = np.linspace(-1.2, 1.2, ACTION_DIM)
    obs, reward, *_ = plain.step(action)
    oracle_obs, oracle_reward, *_ = oracle.step(action)
    np.testing.assert_array_equal(oracle_obs, np.append(obs, 0.9))
    assert oracle_reward == reward


def test_centre_of_mass_speed_is_the_rate_of_the_centre_of_mass() -> None:
    """The paper's speed measure against finite differences of the whole body's centre of mass; it differs from
    the torso's speed (ours) by far more than the tolerance, so a mix-up fails."""
    env = gymnasium.make(VEL_ID, frame_skip=1).unwrapped
    env.reset(seed=0)
    scratch = mujoco.MjData(env.model)
    torso = env.model.body("torso").id

    def centre_of_mass_x() -> float:
        scratch.qpos[:], scratch.qvel[:] = env.data.qpos, env.data.qvel
        mujoco.mj_kinematics(env.model, scratch)
        mujoco.mj_comPos(env.model, scratch)
        return float(scratch.subtree_com[torso, 0])

    rng = np.random.default_rng(0)
    errors, torso_differences = [], []
    previous = centre_of_mass_x()
    for _ in range(300):
        *_, info = env.step(rng.uniform(-1.0, 1.0, ACTION_DIM))
        fields = ("qpos", "qvel", "qacc", "qacc_warmstart", "subtree_linvel")
        untouched = {name: getattr(env.data, name).copy() for name in fields}
        speed = centre_of_mass_speed(env.model, env.data)
        for name in fields:  # read from a scratch copy: the env's own data (and its next step) unchanged
            np.testing.assert_array_equal(getattr(env.data, name), untouched[name])
        current = centre_of_mass_x()
        errors.append(abs((current - previous) / env.dt - speed))
        torso_differences.append(abs(info["x_velocity"] - speed))
        previous = current
    assert max(errors) < 0.05 and np.mean(errors) < 0.01
    assert np.mean(torso_differences) > 0.1


def test_planar_centre_of_mass_speed_equals_mujocos_for_a_batch_of_states() -> None:
    """The numpy measure against MuJoCo's ``mj_subtreeVel`` on far-flung states (joints bent by up to several
    radians), and its refusal of models it would get wrong."""
    model = gymnasium.make(VEL_ID).unwrapped.model
    rng = np.random.default_rng(3)
    qpos, qvel = 1.5 * rng.standard_normal((64, model.nq)), 3.0 * rng.standard_normal((64, model.nv))
    data = mujoco.MjData(model)
    expected = []
    for position, velocity in zip(qpos, qvel, strict=True):
        data.qpos[:], data.qvel[:] = position, velocity
        expected.append(centre_of_mass_speed(model, data))
    speeds = PlanarCentreOfMassSpeed(model)(qpos, qvel)
    assert speeds.shape == (64,)
    np.testing.assert_allclose(speeds, expected, rtol=0, atol=1e-12)
    assert np.abs(speeds - qvel[:, 0]).mean() > 0.1  # not the root's slide speed

    def planar_model(body: str, joint: str) -> mujoco.MjModel:
        return mujoco.MjModel.from_xml_string(
            f'<mujoco><worldbody><body name="root"><joint type="slide" axis="1 0 0"/><geom size=".1"/>'
            f'<body {body}><joint {joint}/><geom size=".1" pos=".2 0 0"/></body></body></worldbody></mujoco>')

    good = planar_model('pos="0.3 0 0"', 'axis="0 1 0"')
    PlanarCentreOfMassSpeed(good, root="root")
    with pytest.raises(ValueError, match=r"body .* is rotated in its parent.*allowed: planar models"):
        PlanarCentreOfMassSpeed(planar_model('euler="0 0 30"', 'axis="0 1 0"'), root="root")
    with pytest.raises(ValueError, match=r"joint .* is not planar.*allowed: hinges about y"):
        PlanarCentreOfMassSpeed(planar_model('pos="0.3 0 0"', 'axis="1 0 0"'), root="root")


@pytest.mark.parametrize(("env_id", "task"), [(VEL_ID, 1.2), (DIR_ID, -1.0)])
def test_centre_of_mass_speed_measure_rewards_rllabs_speed(env_id: str, task: float) -> None:
    env = gymnasium.make(env_id, task=[task], frame_skip=1, speed_measure="centre_of_mass").unwrapped
    env.reset(seed=4)
    rng = np.random.default_rng(5)
    differences = []
    for _ in range(20):
        action = rng.uniform(-1.0, 1.0, size=ACTION_DIM)
        _, reward, _, _, info = env.step(action)
        speed = centre_of_mass_speed(env.model, env.data)
        forward = task * speed if env_id in DIRECTION_IDS else -abs(speed - task)
        assert reward == pytest.approx(forward - CTRL_COST_WEIGHT * np.sum(action**2), abs=1e-12)
        assert info["reward_forward"] == pytest.approx(forward, abs=1e-12)
        differences.append(abs(info["x_velocity"] - speed))  # x_velocity stays Gymnasium's torso speed
    assert np.mean(differences) > 0.1


def test_single_env_reset_info_holds_the_task() -> None:
    env = make_single(VEL_ID, [0.4])
    _, info = env.reset(seed=0)
    np.testing.assert_array_equal(info["task"], [0.4])


def _start_offsets(env_id: str, episodes: int, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Start positions and velocities minus the model's initial ones, over ``episodes`` resets."""
    env = gymnasium.make(env_id, **kwargs).unwrapped
    qpos, qvel = [], []
    for seed in range(episodes):
        env.reset(seed=seed)
        qpos.append(env.data.qpos - env.init_qpos)
        qvel.append(env.data.qvel - env.init_qvel)
    env.close()
    return np.array(qpos), np.array(qvel)


def test_rllab_start_noise_is_normal_with_rllabs_scales() -> None:
    qpos, qvel = _start_offsets(VEL_ID, 400, reset_noise="rllab")
    assert qpos.std() == pytest.approx(0.01, rel=0.05) and qvel.std() == pytest.approx(0.1, rel=0.05)
    assert np.abs(qpos).max() > 0.03  # normal tails: 3 standard deviations are passed among 3600 draws
    gym_qpos, gym_qvel = _start_offsets(VEL_ID, 400)  # Gymnasium's: uniform in [-0.1, 0.1], std 0.1 / sqrt(3)
    assert np.abs(gym_qpos).max() <= 0.1 and gym_qpos.std() == pytest.approx(0.1 / np.sqrt(3), rel=0.05)
    assert gym_qvel.std() == pytest.approx(0.1, rel=0.05)
    reference = gymnasium.make("HalfCheetah-v5").unwrapped  # the default is Gymnasium's own reset, draw for draw
    reference.reset(seed=3)
    env = gymnasium.make(VEL_ID).unwrapped
    env.reset(seed=3)
    np.testing.assert_array_equal(env.data.qpos, reference.data.qpos)
    np.testing.assert_array_equal(env.data.qvel, reference.data.qvel)


# ----------------------------------------------------------------------------------------- vector env


@pytest.mark.parametrize(
    ("env_id", "frame_skip", "observe_x", "reset_noise", "speed_measure"),
    [(env_id, 5, False, "gymnasium", "torso") for env_id in ALL_IDS]
    + [(VEL_ID, 1, False, "rllab", "torso"), (DIR_ORACLE_ID, 1, True, "gymnasium", "torso"),
       (DIR_ID, 3, True, "rllab", "torso"), (VEL_ID, 1, False, "rllab", "centre_of_mass"),
       (DIR_ORACLE_ID, 5, True, "gymnasium", "centre_of_mass")],
)
def test_vector_env_matches_sync_vector_env_next_step(env_id: str, frame_skip: int, observe_x: bool,
                                                      reset_noise: str, speed_measure: str) -> None:
    tasks = tasks_for(env_id)
    kwargs = {"frame_skip": frame_skip, "exclude_current_positions_from_observation": not observe_x,
              "reset_noise": reset_noise, "speed_measure": speed_measure}
    native = make_task_vec(env_id, NUM_ENVS, max_episode_steps=HORIZON, num_threads=2, **kwargs)
    assert type(native) is VECTOR_CLASSES[env_id]
    assert native.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert native.dt == pytest.approx(0.01 * frame_skip)
    native.set_tasks(tasks)
    reference = make_reference(env_id, tasks, **kwargs)
    assert reference.envs[0].unwrapped.dt == native.dt
    assert native.observation_space == reference.observation_space
    assert native.single_observation_space.shape[0] == OBS_DIM + observe_x + (env_id in ORACLE_IDS)
    assert native.action_space == reference.action_space

    obs, info = native.reset(seed=10)
    np.testing.assert_array_equal(obs, reference.reset(seed=10)[0])
    np.testing.assert_array_equal(info["task"], tasks)
    assert len(np.unique(obs[:, 0])) == NUM_ENVS  # seed + i: different start states

    rng = np.random.default_rng(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the passive checker warns about actions outside the action space
        for t in range(1, 2 * HORIZON + 4):  # two truncations, each followed by its autoreset step
            actions = random_actions(rng)
            out = native.step(actions)
            assert_same_step(out, reference.step(actions))
            _, rewards, terminations, truncations, _ = out
            assert not terminations.any()
            np.testing.assert_array_equal(truncations, np.full(NUM_ENVS, t % (HORIZON + 1) == HORIZON))
            if t % (HORIZON + 1) == 0:  # the autoreset step: reward 0 whatever the action
                np.testing.assert_array_equal(rewards, 0.0)
            else:
                assert (rewards != 0.0).all()
    native.close()
    reference.close()


def _staggered_disabled_run(env_id: str, num_threads: int = 2) -> None:
    """Native vs SyncVectorEnv with DISABLED autoreset and partial resets, so episodes end at different steps."""
    tasks = tasks_for(env_id)
    native = make_task_vec(
        env_id, NUM_ENVS, max_episode_steps=HORIZON, num_threads=num_threads, autoreset_mode=AutoresetMode.DISABLED
    )
    assert native.metadata["autoreset_mode"] == AutoresetMode.DISABLED
    native.set_tasks(tasks)
    reference = make_reference(env_id, tasks, autoreset_mode=AutoresetMode.DISABLED)
    obs, _ = native.reset(seed=20)
    np.testing.assert_array_equal(obs, reference.reset(seed=20)[0])
    rng = np.random.default_rng(2)
    truncated_at: list[tuple[int, list[int]]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the passive checker warns about actions outside the action space
        for t in range(1, 2 * HORIZON + 6):
            actions = random_actions(rng)
            out = native.step(actions)
            assert_same_step(out, reference.step(actions))
            truncations = out[3]
            mask = truncations.copy()
            if t == 4:
                mask[[0, 2]] = True  # an early partial reset: sub-envs 0 and 2 start their episode again
            if truncations.any():
                truncated_at.append((t, np.flatnonzero(truncations).tolist()))
                with pytest.raises(RuntimeError, match=r"autoreset is DISABLED"):
                    native.step(actions)
            if mask.any():
                obs, info = native.reset(options={"reset_mask": mask})
                np.testing.assert_array_equal(obs, reference.reset(options={"reset_mask": mask})[0])
                np.testing.assert_array_equal(info["_task"], mask)  # as SyncVectorEnv: infos of the reset ones
                np.testing.assert_array_equal(info["task"], np.where(mask[:, None], tasks, 0.0))
    # sub-envs 1 and 3 end at steps 15 and 30, sub-envs 0 and 2 (reset after step 4) at steps 19 and 34
    assert truncated_at == [(15, [1, 3]), (19, [0, 2]), (30, [1, 3]), (34, [0, 2])]
    native.close()
    reference.close()


@pytest.mark.parametrize("env_id", [VEL_ID, DIR_ORACLE_ID])
def test_vector_env_matches_sync_vector_env_disabled_autoreset(env_id: str) -> None:
    _staggered_disabled_run(env_id)


def _run_native(num_threads: int, num_envs: int = 6, num_steps: int = 2 * HORIZON + 3) -> list[tuple]:
    """A velocity run of the native env with the given thread count; every step's output."""
    env = make_task_vec(VEL_ID, num_envs, max_episode_steps=HORIZON, num_threads=num_threads)
    assert env.num_threads == num_threads
    env.set_tasks(np.linspace(0.0, 2.0, num_envs)[:, None])
    obs, _ = env.reset(seed=7)
    outputs = [(obs.copy(),)]
    rng = np.random.default_rng(3)
    for _ in range(num_steps):
        obs, rewards, terminations, truncations, info = env.step(random_actions(rng, num_envs))
        outputs.append((obs.copy(), rewards.copy(), terminations.copy(), truncations.copy(), info["x_velocity"].copy()))
    env.close()
    return outputs


def test_vector_env_identical_with_one_and_two_threads() -> None:
    one, two = _run_native(num_threads=1), _run_native(num_threads=2)
    for out_one, out_two in zip(one, two, strict=True):
        for a, b in zip(out_one, out_two, strict=True):
            np.testing.assert_array_equal(a, b)
    all_cores = make_task_vec(VEL_ID, 2, num_threads=0)  # 0 (or None): every core this process may use
    assert all_cores.num_threads == len(os.sched_getaffinity(0))
    all_cores.close()


def test_set_tasks_mid_episode_changes_rewards_immediately() -> None:
    env = make_task_vec(DIR_ID, 2, num_threads=1)
    env.reset(seed=0)
    env.set_tasks([[1.0], [-1.0]])
    _, rewards, _, _, info = env.step(np.zeros((2, ACTION_DIM)))
    np.testing.assert_array_equal(rewards, info["x_velocity"] * np.array([1.0, -1.0]))
    env.close()


# ----------------------------------------------------------------------------------------- tasks


@pytest.mark.parametrize("env_id", [DIR_ID, DIR_ORACLE_ID])
def test_direction_tasks_sampled_and_validated(env_id: str) -> None:
    env = gymnasium.make(env_id).unwrapped
    tasks = env.sample_tasks(2000, np.random.default_rng(0))
    assert tasks.shape == (2000, 1) and tasks.dtype == np.float64
    assert set(np.unique(tasks)) == {-1.0, 1.0}
    assert 0.45 < np.mean(tasks == 1.0) < 0.55
    np.testing.assert_array_equal(tasks, env.sample_tasks(2000, np.random.default_rng(0)))
    assert not np.array_equal(tasks, env.sample_tasks(2000, np.random.default_rng(1)))
    vec = make_task_vec(env_id, 3, num_threads=1)
    np.testing.assert_array_equal(vec.sample_tasks(2000, np.random.default_rng(0)), tasks)

    with pytest.raises(ValueError, match=r"direction 0\.5 is not allowed; allowed: -1\.0 or 1\.0"):
        env.set_task([0.5])
    with pytest.raises(ValueError, match=r"direction 0\.5 is not allowed"):
        env.set_task(0.5)  # a one-number task may be given bare
    with pytest.raises(ValueError, match=r"1\.5.*outside"):
        env.set_task([1.5])
    np.testing.assert_array_equal(env.task, [1.0])  # unchanged
    env.set_task([-1])
    np.testing.assert_array_equal(env.task, [-1.0])

    with pytest.raises(ValueError, match=r"set_tasks: direction 0\.5 is not allowed; allowed: -1\.0 or 1\.0"):
        vec.set_tasks([[1.0], [0.5], [-1.0]])
    np.testing.assert_array_equal(vec.tasks, np.ones((3, 1)))  # unchanged
    vec.set_tasks([[1.0], [-1.0], [-1.0]])
    np.testing.assert_array_equal(vec.tasks, [[1.0], [-1.0], [-1.0]])
    vec.close()
    with pytest.raises(ValueError, match=r"direction 0\.0 is not allowed"):
        gymnasium.make(env_id, task=[0.0])


@pytest.mark.parametrize("env_id", [VEL_ID, VEL_ORACLE_ID])
def test_velocity_tasks_sampled_and_validated(env_id: str) -> None:
    env = gymnasium.make(env_id).unwrapped
    tasks = env.sample_tasks(2000, np.random.default_rng(0))
    assert tasks.shape == (2000, 1) and tasks.dtype == np.float64
    assert tasks.min() >= 0.0 and tasks.max() <= 2.0
    assert tasks.min() < 0.05 and tasks.max() > 1.95  # covers the range
    assert 0.9 < tasks.mean() < 1.1
    np.testing.assert_array_equal(tasks, env.sample_tasks(2000, np.random.default_rng(0)))
    vec = make_task_vec(env_id, 3, num_threads=1)
    np.testing.assert_array_equal(vec.sample_tasks(2000, np.random.default_rng(0)), tasks)

    with pytest.raises(ValueError, match=r"2\.5.*outside the task space; allowed: \[0, 2\]"):
        env.set_task([2.5])
    with pytest.raises(ValueError, match=r"-0\.1.*outside"):
        env.set_task([-0.1])
    with pytest.raises(ValueError, match=r"2\.5.*outside"):
        env.set_task(2.5)
    np.testing.assert_array_equal(env.task, [1.0])  # unchanged
    env.set_task(0.25)  # a one-number task may be given bare, and a batch of them as a flat list
    np.testing.assert_array_equal(env.task, [0.25])
    vec.set_tasks([0.5, 1.0, 1.5])
    np.testing.assert_array_equal(vec.tasks, [[0.5], [1.0], [1.5]])
    env.set_task([2.0])  # bounds are inclusive
    np.testing.assert_array_equal(env.task, [2.0])
    with pytest.raises(ValueError, match=r"2\.5.*index \(1, 0\).*outside"):
        vec.set_tasks([[0.0], [2.5], [1.0]])
    vec.close()


# ----------------------------------------------------------------------------------------- errors


def test_bad_constructor_arguments() -> None:
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match=rf"frame_skip must be a positive int.*got {bad!r}"):
            gymnasium.make(VEL_ID, frame_skip=bad)
        with pytest.raises(ValueError, match=rf"frame_skip must be a positive int.*got {bad!r}"):
            make_task_vec(DIR_ID, 2, frame_skip=bad, num_threads=1)
    for make in (lambda **kw: gymnasium.make(VEL_ID, **kw), lambda **kw: make_task_vec(DIR_ID, 2, **kw)):
        with pytest.raises(ValueError, match=r"exclude_current_positions_from_observation must be true or false, "
                                             r"got 'false'"):
            make(exclude_current_positions_from_observation="false")
    for make in (lambda **kw: gymnasium.make(DIR_ID, **kw), lambda **kw: make_task_vec(VEL_ID, 2, **kw)):
        with pytest.raises(ValueError, match=r"reset_noise must be one of 'gymnasium', 'rllab', got 'mujoco'"):
            make(reset_noise="mujoco")
        with pytest.raises(ValueError, match=r"reset_noise_scale=0.05 applies to reset_noise='gymnasium' only"):
            make(reset_noise="rllab", reset_noise_scale=0.05)
        with pytest.raises(ValueError, match=r"speed_measure must be one of 'torso', 'centre_of_mass', got 'com'"):
            make(speed_measure="com")
    with pytest.raises(ValueError, match=r"num_threads must be a non-negative int.*-1"):
        make_task_vec(VEL_ID, 2, num_threads=-1)
    with pytest.raises(ValueError, match=r"num_threads must be a non-negative int.*1\.5"):
        HalfCheetahDirVectorEnv(2, num_threads=1.5)
    with pytest.raises(ValueError, match=r"num_envs must be a positive int, got 0"):
        make_task_vec(VEL_ID, 0, num_threads=1)
    with pytest.raises(ValueError, match=r"num_envs must be a positive int, got 0"):
        HalfCheetahVelVectorEnv(0, num_threads=1)
    with pytest.raises(ValueError, match=r"render_mode='human' is not supported"):
        make_task_vec(DIR_ID, 2, render_mode="human", num_threads=1)
    with pytest.raises(ValueError, match=r"render_mode='human' is not supported"):
        HalfCheetahVelOracleVectorEnv(2, render_mode="human")
    with pytest.raises(ValueError, match=r"max_episode_steps must be a positive int, got 0"):
        make_task_vec(VEL_ID, 2, max_episode_steps=0, num_threads=1)
    with pytest.raises(ValueError, match=r"SameStep.*not implemented"):
        HalfCheetahVelVectorEnv(2, autoreset_mode=AutoresetMode.SAME_STEP, num_threads=1)
    with pytest.raises(ValueError, match=r"2\.5.*outside"):
        HalfCheetahVelVectorEnv(2, task=[2.5], num_threads=1)
    # a misspelt keyword is named with the env and every keyword it takes (from its signature)
    with pytest.raises(TypeError, match=r"HalfCheetahDirVectorEnv: unexpected keyword argument\(s\) \['frameskip'\]; "
                                        r"allowed: num_envs, max_episode_steps, .*frame_skip, .*render_mode$"):
        make_task_vec(DIR_ID, 2, frameskip=1, num_threads=1)


def test_step_before_reset_and_bad_action_shape() -> None:
    env = make_task_vec(VEL_ID, 3, num_threads=1)
    with pytest.raises(gymnasium.error.ResetNeeded):
        env.step(np.zeros((3, ACTION_DIM)))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"\(3, 5\).*expected \(3, 6\)"):
        env.step(np.zeros((3, 5)))
    env.close()


# ----------------------------------------------------------------------------------------- sampler


def test_sampler_collects_half_cheetah_velocity_episodes() -> None:
    policy = GaussianMLPPolicy(OBS_DIM, ACTION_DIM, hidden_sizes=(16,))
    params = policy.init_params(torch.Generator().manual_seed(0))
    sampler = Sampler(VEL_ID, {}, num_tasks=2, episodes_per_task=2, horizon=10, policy=policy, num_threads=2)
    try:
        tasks = np.array([[0.5], [1.5]])
        episodes = sampler.collect(params, tasks, EpisodeStreams(0, (0,)))
        np.testing.assert_array_equal(sampler.envs.tasks, [[0.5], [0.5], [1.5], [1.5]])
    finally:
        sampler.close()
    assert episodes.observations.shape == (10, 2, 2, OBS_DIM)
    assert episodes.actions.shape == (10, 2, 2, ACTION_DIM)
    assert episodes.rewards.shape == episodes.mask.shape == episodes.log_probs.shape == (10, 2, 2)
    torch.testing.assert_close(episodes.mask, torch.ones(10, 2, 2), rtol=0, atol=0)  # no termination
    assert episodes.num_steps == 40
    assert torch.isfinite(episodes.rewards).all() and torch.isfinite(episodes.log_probs).all()
    assert (episodes.rewards != 0.0).all()
    # the two episodes of a task start from different (seeded) states
    assert not torch.equal(episodes.observations[0, :, 0], episodes.observations[0, :, 1])
