"""Tests for envs/ant.py: the ant velocity, direction and goal families, single and native vector."""

from __future__ import annotations

import re
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import meta_rl_envs
from meta_rl_envs import make_task_vec
from meta_rl_envs.ant import GOAL_RADIUS, AntDirVectorEnv, AntGoalEnv, AntVelEnv

VEL_ID, DIR_ID, GOAL_ID = "meta_rl/AntVel-v0", "meta_rl/AntDir-v0", "meta_rl/AntGoal-v0"
FAMILY_IDS = [VEL_ID, DIR_ID, GOAL_ID]
ALL_IDS = [*FAMILY_IDS, *(env_id.replace("-v0", "Oracle-v0") for env_id in FAMILY_IDS)]
ACTION_DIM, NUM_ENVS = 8, 5
NARROW = (0.35, 0.85)  # a healthy range random actions leave within a few dozen steps: terminations happen


def tasks_for(env_id: str) -> np.ndarray:
    if "Dir" in env_id:
        return np.array([[1.0], [-1.0], [-1.0], [1.0], [1.0]])
    if "Goal" in env_id:
        return np.array([[0.0, 0.0], [2.9, 0.0], [-1.0, 1.5], [0.5, -2.0], [-2.0, -2.0]])
    return np.array([[0.0], [0.7], [1.5], [2.2], [3.0]])


def make_reference(env_id: str, tasks: np.ndarray, horizon: int, **kwargs) -> SyncVectorEnv:
    reference = SyncVectorEnv([lambda: gymnasium.make(env_id, max_episode_steps=horizon, **kwargs)] * len(tasks),
                              autoreset_mode=kwargs.pop("autoreset_mode", AutoresetMode.NEXT_STEP))
    for env, task in zip(reference.envs, tasks, strict=True):
        env.unwrapped.set_task(task)
    return reference


def run_against_sync(env_id: str, steps: int, horizon: int, num_threads: int = 2, seed: int = 0,
                     **kwargs) -> tuple[int, list[np.ndarray]]:
    """Step the native vector env and SyncVectorEnv of the single env with the same random actions; every output
    equal bit for bit. Returns the number of terminations and the native observations."""
    tasks = tasks_for(env_id)
    native = make_task_vec(env_id, len(tasks), max_episode_steps=horizon, num_threads=num_threads, **kwargs)
    native.set_tasks(tasks)
    reference = make_reference(env_id, tasks, horizon, **kwargs)
    observations = [native.reset(seed=seed)[0]]
    np.testing.assert_array_equal(observations[0], reference.reset(seed=seed)[0])
    rng = np.random.default_rng(seed + 1)
    terminations = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # actions outside the action space: the passive checker warns
        for _ in range(steps):
            actions = rng.uniform(-1.5, 1.5, size=(len(tasks), ACTION_DIM))
            obs, rewards, terminated, truncated, info = native.step(actions)
            ref_obs, ref_rewards, ref_terminated, ref_truncated, ref_info = reference.step(actions)
            np.testing.assert_array_equal(obs, ref_obs)
            np.testing.assert_array_equal(rewards, ref_rewards)
            np.testing.assert_array_equal(terminated, ref_terminated)
            np.testing.assert_array_equal(truncated, ref_truncated)
            for key in ("x_velocity", "reward_forward", "reward_ctrl", "reward_survive"):
                np.testing.assert_array_equal(info[key], ref_info.get(key, np.zeros(len(tasks))))
            terminations += int(terminated.sum())
            observations.append(obs)
    native.close()
    reference.close()
    return terminations, observations


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_check_env_registration_and_spaces(env_id: str) -> None:
    spec = gymnasium.spec(env_id)
    assert spec.max_episode_steps == 200 and spec.entry_point.startswith("meta_rl_envs.ant:")
    env = gymnasium.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # infinite observation bounds: warnings, not errors
        check_env(env.unwrapped, skip_render_check=True)
    task_dim = 2 if "Goal" in env_id else 1
    oracle = "Oracle" in env_id
    obs_dim = (29 if "Goal" in env_id else 27) + task_dim * oracle
    assert env.observation_space.shape == (obs_dim,)
    assert env.action_space == gymnasium.spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
    assert env.unwrapped.task_space.shape == (task_dim,) and env.unwrapped.dt == pytest.approx(0.05)
    observation, _ = env.reset(seed=0)
    if oracle:
        np.testing.assert_array_equal(observation[-task_dim:], env.unwrapped.task)
    assert meta_rl_envs.family_class(env_id).observe_task == oracle
    env.close()


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_vector_env_equals_sync_vector_env_with_terminations_and_autoreset(env_id: str) -> None:
    terminations, _ = run_against_sync(env_id, steps=90, horizon=40, healthy_z_range=NARROW,
                                       terminate_when_unhealthy=True)
    assert terminations > 0, "the test must see episodes end early"


def test_vector_env_equals_sync_vector_env_with_disabled_autoreset_and_partial_resets() -> None:
    tasks = tasks_for(DIR_ID)
    kwargs = {"healthy_z_range": NARROW, "autoreset_mode": AutoresetMode.DISABLED}
    native = make_task_vec(DIR_ID, len(tasks), max_episode_steps=25, num_threads=2, **kwargs)
    native.set_tasks(tasks)
    reference = make_reference(DIR_ID, tasks, 25, **kwargs)
    np.testing.assert_array_equal(native.reset(seed=4)[0], reference.reset(seed=4)[0])
    rng = np.random.default_rng(5)
    ended = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(80):
            actions = rng.uniform(-1.5, 1.5, size=(len(tasks), ACTION_DIM))
            out, ref = native.step(actions), reference.step(actions)
            for mine, theirs in zip(out[:4], ref[:4], strict=True):
                np.testing.assert_array_equal(mine, theirs)
            done = out[2] | out[3]
            if done.any():
                ended += int(done.sum())
                np.testing.assert_array_equal(native.reset(options={"reset_mask": done})[0],
                                              reference.reset(options={"reset_mask": done})[0])
    assert ended > len(tasks)
    native.close()
    reference.close()


def test_one_and_two_physics_threads_step_alike() -> None:
    _, one = run_against_sync(GOAL_ID, steps=30, horizon=200, num_threads=1, seed=7)
    _, two = run_against_sync(GOAL_ID, steps=30, horizon=200, num_threads=2, seed=7)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)


def test_rewards_are_the_documented_ones() -> None:
    for env_id, task in ((VEL_ID, [2.0]), (DIR_ID, [-1.0]), (GOAL_ID, [1.0, -2.0])):
        env = gymnasium.make(env_id, task=task)
        env.reset(seed=1)
        qpos_before = env.unwrapped.data.qpos[:2].copy()
        action = np.linspace(-1.4, 1.4, ACTION_DIM)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, reward, terminated, _, info = env.step(action)
        xy = env.unwrapped.data.qpos[:2]
        velocity = (xy - qpos_before) / 0.05
        clipped_cost = np.square(np.clip(action, -1.0, 1.0)).sum()
        if env_id == VEL_ID:
            expected = -abs(velocity[0] - 2.0) + 1.0 - 0.005 * clipped_cost
        elif env_id == DIR_ID:
            expected = -velocity[0] + 0.05 - 0.005 * clipped_cost  # the MAML paper's survive reward
        else:
            expected = -np.abs(xy - [1.0, -2.0]).sum() - 0.1 * clipped_cost
        assert reward == pytest.approx(expected, rel=1e-12) and not terminated
        assert info["x_velocity"] == pytest.approx(velocity[0], rel=1e-12)
        np.testing.assert_array_equal(info["task"], task)
        env.close()


def test_task_sampling_follows_each_family() -> None:
    rng = np.random.default_rng(0)
    speeds = AntVelEnv().sample_tasks(2000, rng)
    assert speeds.shape == (2000, 1) and speeds.min() >= 0.0 and speeds.max() <= 3.0
    directions = gymnasium.make(DIR_ID).unwrapped.sample_tasks(2000, rng)
    assert set(np.unique(directions)) == {-1.0, 1.0} and abs(directions.mean()) < 0.1
    goals = AntGoalEnv().sample_tasks(4000, rng)
    radius = np.linalg.norm(goals, axis=1)
    assert goals.shape == (4000, 2) and radius.max() <= GOAL_RADIUS
    assert np.mean(radius < GOAL_RADIUS / 2) == pytest.approx(0.25, abs=0.03)  # uniform in the disc's area
    vector = make_task_vec(GOAL_ID, 2, num_threads=1)
    np.testing.assert_array_equal(vector.sample_tasks(5, np.random.default_rng(3)),
                                  AntGoalEnv().sample_tasks(5, np.random.default_rng(3)))
    vector.close()


def test_bad_tasks_and_keywords_are_named_with_what_is_allowed() -> None:
    with pytest.raises(ValueError, match=r"3\.5.*outside the task space; allowed: \[0, 3\]"):
        gymnasium.make(VEL_ID, task=[3.5])
    with pytest.raises(ValueError, match=r"direction 0\.5 is not allowed; allowed: -1\.0 or 1\.0"):
        gymnasium.make(DIR_ID).unwrapped.set_task([0.5])
    vector = AntDirVectorEnv(2, num_threads=1)
    with pytest.raises(ValueError, match=r"set_tasks: direction 0\.0 is not allowed"):
        vector.set_tasks([[1.0], [0.0]])
    vector.close()
    with pytest.raises(ValueError, match=r"goal \[2\.5, 2\.5\] is 3\.53553 from the start; allowed: goals within 3"):
        gymnasium.make(GOAL_ID, task=[2.5, 2.5])
    goal_vector = make_task_vec(GOAL_ID, 2, num_threads=1)
    with pytest.raises(ValueError, match=r"set_tasks: goal .* allowed: goals within 3"):
        goal_vector.set_tasks([[0.0, 0.0], [-3.0, 1.0]])
    goal_vector.close()
    with pytest.raises(ValueError, match=r"healthy_z_range must be \(low, high\) with low < high"):
        gymnasium.make(VEL_ID, healthy_z_range=(1.0, 0.2))
    with pytest.raises(ValueError, match=r"terminate_when_unhealthy must be true or false, got 'no'"):
        gymnasium.make(DIR_ID, terminate_when_unhealthy="no")
    with pytest.raises(TypeError, match=r"AntVelVectorEnv: unexpected keyword argument\(s\) \['frameskip'\]; "
                                        r"allowed: num_envs, max_episode_steps, .*frame_skip, .*render_mode$"):
        make_task_vec(VEL_ID, 2, frameskip=1, num_threads=1)


@pytest.mark.parametrize("env_id", ["meta_rl/AntVel-v0", "meta_rl/HumanoidDir-v0", "meta_rl/Walker2dParams-v0",
                                    "meta_rl/HopperParams-v0"])
@pytest.mark.parametrize(("keyword", "value", "message"), [
    ("frame_skip", 0, "frame_skip must be a positive int, got 0"),
    ("frame_skip", 2.5, "frame_skip must be a positive int, got 2.5"),
    ("reset_noise_scale", -1.0, "reset_noise_scale must be a number >= 0, got -1.0"),
])
def test_every_locomotion_family_refuses_bad_physics_keywords(env_id: str, keyword: str, value, message: str) -> None:
    for make in (lambda: gymnasium.make(env_id, **{keyword: value}),
                 lambda: make_task_vec(env_id, 2, num_threads=1, **{keyword: value})):
        with pytest.raises(ValueError, match=re.escape(message)):
            make()


@pytest.mark.parametrize("env_id", ["meta_rl/AntDir-v0", "meta_rl/HumanoidDir-v0"])
def test_healthy_range_and_flags_are_checked(env_id: str) -> None:
    for bad in ((2.0, 1.0), (1.0,), 1.0):
        with pytest.raises(ValueError, match=r"healthy_z_range must be \(low, high\) with low < high"):
            gymnasium.make(env_id, healthy_z_range=bad)
    with pytest.raises(ValueError, match=r"terminate_when_unhealthy must be true or false, got 'false'"):
        gymnasium.make(env_id, terminate_when_unhealthy="false")


def test_inactive_sub_envs_keep_their_state_until_a_full_reset() -> None:
    env = make_task_vec(VEL_ID, 4, num_threads=1)
    env.reset(seed=0)
    native = env.unwrapped
    before = native.qpos.copy()
    native.set_active(np.array([True, False, True, False]))
    env.step(np.full((4, ACTION_DIM), 0.5))
    moved = (native.qpos != before).any(axis=1)
    np.testing.assert_array_equal(moved, [True, False, True, False])
    with pytest.raises(ValueError, match=r"set_active: mask has shape \(3,\), expected \(4,\)"):
        native.set_active(np.ones(3, dtype=bool))
    env.reset(seed=1)
    assert native._active is None
    env.close()
