"""Tests for the 2D navigation family: exact dynamics, native vector env vs single envs, task interface."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import meta_rl_envs
from meta_rl_envs import (
    Navigation2DEnv,
    Navigation2DVectorEnv,
    TaskSyncVectorEnv,
    make_task_vec,
    validate_tasks,
)

ENV_ID = "meta_rl/Navigation2D-v0"
NOVEC_ID = "meta_rl/Navigation2DNoVec-v0"  # test-only: same env without a vector_entry_point

if NOVEC_ID not in gymnasium.envs.registry:
    gymnasium.register(
        id=NOVEC_ID, entry_point="meta_rl_envs.navigation:Navigation2DEnv", max_episode_steps=100
    )


def make_single(goal) -> gymnasium.Env:
    """A single env through gymnasium.make (so TimeLimit applies) with the given goal."""
    env = gymnasium.make(ENV_ID)
    env.unwrapped.set_task(goal)
    return env


# ----------------------------------------------------------------------------------------- single env


def test_check_env_passes() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # infinite observation bounds, wrapped env: warnings, not errors
        check_env(gymnasium.make(ENV_ID).unwrapped)
        check_env(gymnasium.make(ENV_ID))
        check_env(Navigation2DEnv(goal_low=0.1, goal_high=0.2))


def test_registration_and_spaces() -> None:
    spec = gymnasium.spec(ENV_ID)
    assert spec.max_episode_steps == 100
    assert spec.vector_entry_point == "meta_rl_envs.navigation:Navigation2DVectorEnv"
    meta_rl_envs.register_envs()  # a second registration is a no-op, not a warning or an error
    env = gymnasium.make(ENV_ID).unwrapped
    assert env.observation_space == gymnasium.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    assert env.action_space == gymnasium.spaces.Box(-0.1, 0.1, (2,), np.float32)
    assert env.task_space == gymnasium.spaces.Box(-0.5, 0.5, (2,), np.float64)
    np.testing.assert_array_equal(env.task, [0.0, 0.0])


def test_clipping_reward_and_termination_exact() -> None:
    env = make_single([0.05, 0.0])
    obs, info = env.reset(seed=0)
    np.testing.assert_array_equal(obs, [0.0, 0.0])
    assert obs.dtype == np.float32
    np.testing.assert_array_equal(info["task"], [0.05, 0.0])

    obs, reward, terminated, truncated, _ = env.step(np.array([0.2, 0.0]))  # clipped to 0.1
    np.testing.assert_allclose(obs, [0.1, 0.0], atol=1e-7)
    assert reward == pytest.approx(-0.05, abs=1e-6)
    assert (terminated, truncated) == (False, False)

    obs, reward, terminated, truncated, _ = env.step([-0.045, 0.0])  # new state 0.055: |dx| = 0.005
    np.testing.assert_allclose(obs, [0.055, 0.0], atol=1e-7)
    assert reward == pytest.approx(-0.005, abs=1e-6)
    assert (terminated, truncated) == (True, False)

    env.unwrapped.set_task([0.0, 0.0])
    env.reset()
    _, reward, terminated, _, _ = env.step([0.3, -0.4])  # clipped to (0.1, -0.1)
    assert reward == pytest.approx(-np.sqrt(0.02), abs=1e-6)
    assert not terminated
    _, reward, terminated, _, _ = env.step([-5.0, 5.0])  # back to the origin = the goal
    assert reward == pytest.approx(0.0, abs=1e-7)
    assert terminated


@pytest.mark.parametrize(
    ("gx", "gy", "expected"),
    [
        (0.0095, 0.0, True),
        (0.0105, 0.0, False),
        (0.0, -0.0099, True),
        (0.005, 0.012, False),
        (0.0095, -0.0095, True),  # per-axis box, not a disc: distance 0.0134 > 0.01 still terminates
    ],
)
def test_termination_threshold(gx: float, gy: float, expected: bool) -> None:
    env = make_single([gx, gy])
    env.reset()
    _, reward, terminated, _, _ = env.step([0.0, 0.0])
    assert terminated is expected
    assert reward == pytest.approx(-np.hypot(gx, gy), abs=1e-12)
    vec = make_task_vec(ENV_ID, 2)
    vec.set_tasks([[gx, gy], [0.3, 0.3]])
    vec.reset()
    _, rewards, terminations, _, _ = vec.step(np.zeros((2, 2), dtype=np.float32))
    np.testing.assert_array_equal(terminations, [expected, False])
    assert rewards[0] == reward


def test_time_limit_truncates_at_100_steps() -> None:
    env = make_single([0.5, 0.5])
    env.reset()
    for t in range(1, 101):
        _, reward, terminated, truncated, _ = env.step([0.0, 0.0])
        assert reward == pytest.approx(-np.sqrt(0.5), abs=1e-12)
        assert not terminated
        assert truncated is (t == 100)


def test_task_survives_reset_and_reset_returns_origin() -> None:
    env = make_single([0.3, -0.2])
    env.reset()
    env.step([0.1, 0.1])
    obs, _ = env.reset()
    np.testing.assert_array_equal(obs, [0.0, 0.0])
    np.testing.assert_array_equal(env.unwrapped.task, [0.3, -0.2])


# ----------------------------------------------------------------------------------------- vector env


def _trajectory_goals() -> np.ndarray:
    """Goals mixing random ones, ones close to the origin (instant termination) and ones at the edges."""
    rng = np.random.default_rng(123)
    goals = rng.uniform(-0.5, 0.5, size=(12, 2))
    goals[0] = [0.004, -0.006]  # terminates on the first step with any small action
    goals[1] = [0.0, 0.0]
    goals[2] = [0.5, -0.5]
    goals[3] = [0.2, 0.05]
    return goals


def _actions(obs: np.ndarray, goals: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random actions (beyond the bounds, to exercise clipping), but steer envs 0-5 straight to their goal."""
    actions = rng.uniform(-0.2, 0.2, size=obs.shape).astype(np.float32)
    steer = np.clip(goals[:6] - obs[:6], -0.1, 0.1) * 1.3  # overshoot the bound a little: clipped again
    actions[:6] = steer.astype(np.float32)
    return actions


def _assert_same_step(a: tuple, b: tuple) -> None:
    obs_a, rew_a, term_a, trunc_a, info_a = a
    obs_b, rew_b, term_b, trunc_b, info_b = b
    assert obs_a.dtype == obs_b.dtype == np.float32
    assert rew_a.dtype == rew_b.dtype == np.float64
    np.testing.assert_array_equal(obs_a, obs_b)
    np.testing.assert_allclose(rew_a, rew_b, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(term_a, term_b)
    np.testing.assert_array_equal(trunc_a, trunc_b)
    np.testing.assert_array_equal(info_a["_task"], info_b["_task"])
    np.testing.assert_array_equal(info_a["task"], info_b["task"])


def test_vector_env_matches_sync_vector_env_next_step() -> None:
    goals = _trajectory_goals()
    n = len(goals)
    native = gymnasium.make_vec(ENV_ID, n, vectorization_mode="vector_entry_point")
    assert isinstance(native, Navigation2DVectorEnv)
    assert native.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    native.set_tasks(goals)
    reference = SyncVectorEnv([lambda: gymnasium.make(ENV_ID) for _ in range(n)])
    for env, goal in zip(reference.envs, goals, strict=True):
        env.unwrapped.set_task(goal)
    assert native.observation_space == reference.observation_space
    assert native.action_space == reference.action_space

    obs, info = native.reset(seed=1)
    ref_obs, ref_info = reference.reset(seed=1)
    np.testing.assert_array_equal(obs, ref_obs)
    np.testing.assert_array_equal(info["task"], ref_info["task"])

    rng = np.random.default_rng(7)
    n_term = n_trunc = n_autoreset = 0
    prev_done = np.zeros(n, dtype=bool)
    for _ in range(230):
        actions = _actions(obs, goals, rng)
        out = native.step(actions)
        _assert_same_step(out, reference.step(actions))
        obs, rewards, term, trunc, _ = out
        # the autoreset step: origin, reward 0, no flags, whatever the action
        np.testing.assert_array_equal(obs[prev_done], 0.0)
        np.testing.assert_array_equal(rewards[prev_done], 0.0)
        assert not (term[prev_done] | trunc[prev_done]).any()
        n_autoreset += prev_done.sum()
        n_term += term.sum()
        n_trunc += trunc.sum()
        prev_done = term | trunc
    # the comparison covered early terminations, truncations at 100 steps and their autoreset steps
    assert term[0] or n_term >= 10
    assert n_trunc >= 6
    assert n_autoreset == n_term + n_trunc - prev_done.sum()


def test_vector_env_matches_sync_vector_env_disabled_autoreset() -> None:
    goals = _trajectory_goals()
    n = len(goals)
    native = make_task_vec(ENV_ID, n, autoreset_mode=AutoresetMode.DISABLED, max_episode_steps=20)
    assert isinstance(native, Navigation2DVectorEnv)
    assert native.metadata["autoreset_mode"] == AutoresetMode.DISABLED
    reference = make_task_vec(NOVEC_ID, n, autoreset_mode=AutoresetMode.DISABLED, max_episode_steps=20)
    assert isinstance(reference, TaskSyncVectorEnv)
    native.set_tasks(goals)
    reference.set_tasks(goals)
    obs, _ = native.reset()
    reference.reset()
    rng = np.random.default_rng(3)
    n_resets = 0
    for _ in range(60):
        actions = _actions(obs, goals, rng)
        out = native.step(actions)
        _assert_same_step(out, reference.step(actions))
        obs, _, term, trunc, _ = out
        done = term | trunc
        if done.any():
            n_resets += 1
            obs, info = native.reset(options={"reset_mask": done.copy()})
            ref_obs, ref_info = reference.reset(options={"reset_mask": done.copy()})
            np.testing.assert_array_equal(obs, ref_obs)
            np.testing.assert_array_equal(info["_task"], ref_info["_task"])
            np.testing.assert_array_equal(info["task"], ref_info["task"])
    assert n_resets >= 3


def test_make_task_vec_native_and_fallback_give_identical_trajectories() -> None:
    native = make_task_vec(ENV_ID, 6)
    fallback = make_task_vec(NOVEC_ID, 6)
    assert isinstance(native, Navigation2DVectorEnv)
    assert isinstance(fallback, TaskSyncVectorEnv)
    tasks = native.sample_tasks(6, np.random.default_rng(0))
    np.testing.assert_array_equal(tasks, fallback.sample_tasks(6, np.random.default_rng(0)))
    tasks[0] = [0.01, 0.0]
    native.set_tasks(tasks)
    fallback.set_tasks(tasks.tolist())  # plain numbers are accepted
    np.testing.assert_array_equal(native.tasks, tasks)
    np.testing.assert_array_equal(fallback.tasks, tasks)
    obs, _ = native.reset(seed=0)
    fallback.reset(seed=0)
    rng = np.random.default_rng(11)
    for _ in range(120):
        actions = _actions(obs, tasks, rng)
        out = native.step(actions)
        _assert_same_step(out, fallback.step(actions))
        obs = out[0]


def test_set_tasks_mid_episode_changes_rewards_immediately() -> None:
    env = make_task_vec(ENV_ID, 2)
    env.reset()
    env.set_tasks([[0.1, 0.0], [0.0, 0.1]])
    _, rewards, term, _, _ = env.step(np.array([[0.1, 0.0], [0.0, 0.0]], dtype=np.float32))
    np.testing.assert_allclose(rewards, [0.0, -0.1], atol=1e-7)
    np.testing.assert_array_equal(term, [True, False])


def test_reset_mask_partial_reset_and_elapsed_steps() -> None:
    env = make_task_vec(ENV_ID, 3, max_episode_steps=5, autoreset_mode="Disabled")
    env.set_tasks([[0.5, 0.5]] * 3)
    env.reset()
    step = np.full((3, 2), 0.05, dtype=np.float32)
    for _ in range(3):
        obs, *_ = env.step(step)
    np.testing.assert_allclose(obs, 0.15, atol=1e-6)
    obs, info = env.reset(options={"reset_mask": np.array([True, False, True])})
    np.testing.assert_allclose(obs, [[0.0, 0.0], [0.15, 0.15], [0.0, 0.0]], atol=1e-6)
    np.testing.assert_array_equal(info["_task"], [True, False, True])
    obs, _, _, trunc, _ = env.step(step)
    np.testing.assert_array_equal(trunc, [False, False, False])
    obs, _, _, trunc, _ = env.step(step)  # sub-env 1 reaches its 5th step; 0 and 2 their 2nd
    np.testing.assert_array_equal(trunc, [False, True, False])
    np.testing.assert_allclose(obs, [[0.1, 0.1], [0.25, 0.25], [0.1, 0.1]], atol=1e-6)
    with pytest.raises(RuntimeError, match=r"sub-envs \[1\] ended"):
        env.step(step)  # DISABLED: the caller must reset sub-env 1 first
    obs, _ = env.reset(options={"reset_mask": np.array([False, True, False])})
    np.testing.assert_allclose(obs, [[0.1, 0.1], [0.0, 0.0], [0.1, 0.1]], atol=1e-6)
    _, _, _, trunc, _ = env.step(step)
    np.testing.assert_array_equal(trunc, [False, False, False])


def test_next_step_autoreset_ignores_action() -> None:
    env = make_task_vec(ENV_ID, 2, max_episode_steps=2)
    env.set_tasks([[0.1, 0.0], [-0.5, -0.5]])
    env.reset()
    act = np.array([[0.1, 0.0], [0.1, 0.1]], dtype=np.float32)
    _, _, term, trunc, _ = env.step(act)
    np.testing.assert_array_equal(term, [True, False])
    obs, rewards, term, trunc, _ = env.step(act)
    np.testing.assert_allclose(obs, [[0.0, 0.0], [0.2, 0.2]], atol=1e-6)
    assert rewards[0] == 0.0
    np.testing.assert_array_equal(term, [False, False])
    np.testing.assert_array_equal(trunc, [False, True])
    obs, rewards, term, trunc, _ = env.step(act)
    np.testing.assert_allclose(obs, [[0.1, 0.0], [0.0, 0.0]], atol=1e-6)
    np.testing.assert_array_equal(term, [True, False])
    assert rewards[1] == 0.0


# ----------------------------------------------------------------------------------------- tasks


def test_sample_tasks_seeded_in_range_and_configurable() -> None:
    env = gymnasium.make(ENV_ID).unwrapped
    a = env.sample_tasks(500, np.random.default_rng(42))
    b = env.sample_tasks(500, np.random.default_rng(42))
    c = env.sample_tasks(500, np.random.default_rng(43))
    assert a.shape == (500, 2) and a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= -0.5 and a.max() <= 0.5
    assert a.min() < -0.45 and a.max() > 0.45  # covers the range, not a corner of it
    np.testing.assert_array_equal(make_task_vec(ENV_ID, 3).sample_tasks(500, np.random.default_rng(42)), a)

    for vec in (
        make_task_vec(ENV_ID, 3, goal_low=0.2, goal_high=0.3),
        make_task_vec(NOVEC_ID, 3, goal_low=0.2, goal_high=0.3),
    ):
        tasks = vec.sample_tasks(1000, np.random.default_rng(0))
        assert tasks.min() >= 0.2 and tasks.max() <= 0.3
        np.testing.assert_array_equal(vec.tasks, np.full((3, 2), 0.25))  # default: centre of the range
        vec.set_tasks(tasks[:3])
        with pytest.raises(ValueError, match=r"0\.1.*\[0\.2, 0\.3\]"):
            vec.set_tasks([[0.1, 0.25]] * 3)


@pytest.mark.parametrize(
    ("task", "match"),
    [
        ([0.7, 0.0], r"0\.7.*outside.*\[-0\.5, 0\.5\]"),
        ([0.0, -0.51], r"-0\.51.*outside"),
        ([0.1, 0.2, 0.3], r"shape \(3,\).*expected shape \(2,\)"),
        ([[0.1, 0.2]], r"shape \(1, 2\)"),
        ([np.nan, 0.0], r"nan.*not finite"),
        ([0.0, np.inf], r"inf.*not finite"),
        ("ab", r"'ab'"),
    ],
)
def test_set_task_rejects_bad_tasks(task, match: str) -> None:
    env = gymnasium.make(ENV_ID).unwrapped
    with pytest.raises(ValueError, match=match) as err:
        env.set_task(task)
    assert "Navigation2DEnv(meta_rl/Navigation2D-v0).set_task" in str(err.value)
    np.testing.assert_array_equal(env.task, [0.0, 0.0])  # unchanged


def test_set_tasks_rejects_bad_batches() -> None:
    for env in (make_task_vec(ENV_ID, 4), make_task_vec(NOVEC_ID, 4)):
        with pytest.raises(ValueError, match=r"got 3 tasks but need exactly 4"):
            env.set_tasks(np.zeros((3, 2)))
        with pytest.raises(ValueError, match=r"shape \(2,\)"):
            env.set_tasks([0.1, 0.1])
        with pytest.raises(ValueError, match=r"0\.9.*index \(2, 1\).*outside"):
            env.set_tasks([[0, 0], [0, 0], [0, 0.9], [0, 0]])
        with pytest.raises(ValueError, match=r"nan"):
            env.set_tasks([[0, 0], [0, 0], [0, 0], [np.nan, 0]])
        np.testing.assert_array_equal(env.tasks, np.zeros((4, 2)))


def test_validate_tasks_directly() -> None:
    space = gymnasium.spaces.Box(-1.0, 2.0, (2,), np.float64)
    out = validate_tasks((2, -1), space, "here")
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [2.0, -1.0])  # bounds are inclusive
    with pytest.raises(ValueError, match=r"^here: .*2\.5"):
        validate_tasks([2.5, 0], space, "here")


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match=r"goal_low=0\.5, goal_high=0\.5"):
        gymnasium.make(ENV_ID, goal_low=0.5, goal_high=0.5)
    with pytest.raises(ValueError, match=r"goal_low=0\.3, goal_high=-0\.3"):
        make_task_vec(ENV_ID, 2, goal_low=0.3, goal_high=-0.3)
    with pytest.raises(ValueError, match=r"goal_low=0\.3, goal_high=-0\.3"):
        make_task_vec(NOVEC_ID, 2, goal_low=0.3, goal_high=-0.3)
    with pytest.raises(ValueError, match=r"0\.8.*outside"):
        gymnasium.make(ENV_ID, task=[0.8, 0.0])
    with pytest.raises(ValueError, match=r"SameStep.*not implemented"):
        Navigation2DVectorEnv(2, autoreset_mode=AutoresetMode.SAME_STEP)
    with pytest.raises(TypeError, match=r"Navigation2DVectorEnv: unexpected keyword argument\(s\) \['goal_hgih'\]; "
                                        r"allowed: num_envs, max_episode_steps, goal_low, .*normalized_actions$"):
        make_task_vec(ENV_ID, 2, goal_hgih=0.2)
    with pytest.raises(ValueError, match=r"num_envs.*0"):
        Navigation2DVectorEnv(0)


def test_unknown_env_id() -> None:
    with pytest.raises(ValueError, match=r"'meta_rl/Nope-v0'.*meta_rl/Navigation2D-v0"):
        make_task_vec("meta_rl/Nope-v0", 2)


def test_step_before_reset_and_bad_action_shape() -> None:
    env = make_task_vec(ENV_ID, 3)
    with pytest.raises(gymnasium.error.ResetNeeded):
        env.step(np.zeros((3, 2), dtype=np.float32))
    env.reset()
    with pytest.raises(ValueError, match=r"\(2, 2\).*expected \(3, 2\)"):
        env.step(np.zeros((2, 2), dtype=np.float32))


# ------------------------------------------------------------------------------------------ oracle env
ORACLE_ID = "meta_rl/Navigation2DOracle-v0"


def test_oracle_env_checks_and_appends_the_goal() -> None:
    env = gymnasium.make(ORACLE_ID)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # infinite observation bounds: warnings, not errors
        check_env(env.unwrapped, skip_render_check=True)
    env.unwrapped.set_task([0.2, -0.1])
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, np.float32([0.0, 0.0, 0.2, -0.1]))
    obs, reward, *_ = env.step(np.array([0.1, 0.1], dtype=np.float32))
    np.testing.assert_array_equal(obs, np.float32([0.1, 0.1, 0.2, -0.1]))
    assert reward == pytest.approx(-np.hypot(0.1 - 0.2, 0.1 + 0.1), abs=1e-6)


def test_oracle_vector_env_matches_sync_vector_env() -> None:
    goals = _trajectory_goals()
    n = len(goals)
    native = gymnasium.make_vec(ORACLE_ID, n, vectorization_mode="vector_entry_point")
    native.set_tasks(goals)
    reference = SyncVectorEnv([lambda: gymnasium.make(ORACLE_ID) for _ in range(n)])
    for env, goal in zip(reference.envs, goals, strict=True):
        env.unwrapped.set_task(goal)
    assert native.observation_space == reference.observation_space
    obs, _ = native.reset(seed=1)
    np.testing.assert_array_equal(obs, reference.reset(seed=1)[0])
    rng = np.random.default_rng(7)
    for _ in range(120):
        actions = _actions(obs[:, :2], goals, rng)
        out = native.step(actions)
        _assert_same_step(out, reference.step(actions))
        obs = out[0]
        np.testing.assert_array_equal(obs[:, 2:], goals.astype(np.float32))


def test_normalized_actions_scale_to_the_velocity_bound_and_vector_matches_single() -> None:
    env = gymnasium.make(ENV_ID, normalized_actions=True)
    assert env.action_space == gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)
    env.unwrapped.set_task([0.3, 0.0])
    env.reset(seed=0)
    obs, *_ = env.step(np.array([0.5, -3.0], dtype=np.float32))  # 0.5 -> 0.05; -3 clipped to -1 -> -0.1
    np.testing.assert_allclose(obs, [0.05, -0.1], rtol=1e-6)

    goals = _trajectory_goals()
    n = len(goals)
    native = meta_rl_envs.make_task_vec(ENV_ID, n, normalized_actions=True)
    native.set_tasks(goals)
    reference = SyncVectorEnv([lambda: gymnasium.make(ENV_ID, normalized_actions=True) for _ in range(n)])
    for sub_env, goal in zip(reference.envs, goals, strict=True):
        sub_env.unwrapped.set_task(goal)
    assert native.action_space == reference.action_space
    obs, _ = native.reset(seed=1)
    reference.reset(seed=1)
    rng = np.random.default_rng(3)
    for _ in range(120):
        actions = 10.0 * _actions(obs, goals, rng)  # the same motions in normalized units
        out = native.step(actions)
        _assert_same_step(out, reference.step(actions))
        obs = out[0]


@pytest.mark.parametrize("env_id", sorted(meta_rl_envs.FAMILIES))
def test_each_family_says_what_it_supports(env_id: str) -> None:
    family = meta_rl_envs.family_class(env_id)
    env = gymnasium.make(env_id)
    try:
        task_size = int(np.prod(family().task_space.shape))
        observation = env.reset(seed=0)[0]
        if family.observe_task:  # the observation ends with the task
            np.testing.assert_allclose(observation[-task_size:], env.unwrapped.task, rtol=1e-6)
        assert family.plots_trajectories == env_id.startswith("meta_rl/Navigation2D")
    finally:
        env.close()
    assert family.observe_task == ("Oracle" in env_id)


def test_family_class_refuses_an_id_that_is_not_a_family() -> None:
    with pytest.raises(ValueError, match="'CartPole-v1' is not a registered meta_rl task family"):
        meta_rl_envs.family_class("CartPole-v1")
