"""Tests for envs/humanoid.py: humanoid direction, single and native vector, the centre of mass from a sensor."""

from __future__ import annotations

import warnings

import gymnasium
import mujoco
import numpy as np
import pytest
from gymnasium.envs.mujoco.humanoid_v5 import mass_center
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import SyncVectorEnv
from helpers import step_alike

from meta_rl_envs import make_task_vec

DIR_ID, ORACLE_ID = "meta_rl/HumanoidDir-v0", "meta_rl/HumanoidDirOracle-v0"


@pytest.mark.parametrize("env_id", [DIR_ID, ORACLE_ID])
def test_check_env_and_spaces(env_id: str) -> None:
    env = gymnasium.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # infinite observation bounds: warnings, not errors
        check_env(env.unwrapped, skip_render_check=True)
    assert env.observation_space.shape == (46 if env_id == ORACLE_ID else 45,)
    assert env.action_space.shape == (17,)
    assert env.unwrapped.task_space == gymnasium.spaces.Box(0.0, 2.0 * np.pi, (1,), np.float64)
    env.close()


def test_the_centre_of_mass_is_gymnasiums_of_the_state_after_the_step_and_the_reward_is_documented() -> None:
    env = gymnasium.make(DIR_ID, task=[np.pi / 2])
    env.reset(seed=2)
    unwrapped = env.unwrapped
    # right after a reset (mj_forward) Gymnasium's mass_center is of the current state: the two agree exactly
    np.testing.assert_array_equal(unwrapped._centre_of_mass(), mass_center(unwrapped.model, unwrapped.data))
    before = unwrapped._centre_of_mass()
    action = np.linspace(-0.6, 0.6, 17)
    _, reward, terminated, _, info = env.step(action)
    fresh = mujoco.MjData(unwrapped.model)  # the state after the step, from scratch
    fresh.qpos[:], fresh.qvel[:] = unwrapped.data.qpos, unwrapped.data.qvel
    mujoco.mj_forward(unwrapped.model, fresh)
    after = mass_center(unwrapped.model, fresh)
    np.testing.assert_array_equal(unwrapped._centre_of_mass(), after)
    velocity = (after - before) / unwrapped.dt
    assert info["y_velocity"] == velocity[1]
    clipped = np.clip(action, -0.4, 0.4)  # the action space is [-0.4, 0.4]^17
    expected = 1.25 * velocity[1] + 5.0 - 0.1 * np.square(clipped).sum()  # direction pi / 2: along +y
    assert reward == pytest.approx(expected, rel=1e-9, abs=1e-9) and not terminated
    env.close()


@pytest.mark.parametrize("env_id", [DIR_ID, ORACLE_ID])
def test_vector_env_equals_sync_vector_env_with_terminations_and_autoreset(env_id: str) -> None:
    tasks = np.array([[0.0], [1.0], [np.pi], [4.5], [2.0 * np.pi]])
    native = make_task_vec(env_id, len(tasks), max_episode_steps=40, num_threads=2)
    native.set_tasks(tasks)
    reference = SyncVectorEnv([lambda: gymnasium.make(env_id, max_episode_steps=40)] * len(tasks))
    for env, task in zip(reference.envs, tasks, strict=True):
        env.unwrapped.set_task(task)
    np.testing.assert_array_equal(native.reset(seed=3)[0], reference.reset(seed=3)[0])
    terminations = step_alike(native, reference, np.random.default_rng(1), 100, 0.6, ("reward_forward",))
    assert terminations > 0, "the test must see episodes end early"
    native.close()
    reference.close()


def test_bad_task_and_keyword() -> None:
    with pytest.raises(ValueError, match=r"7\.0.*outside the task space; allowed: \[0, 6\.28319\]"):
        gymnasium.make(DIR_ID, task=[7.0])
    with pytest.raises(TypeError, match=r"HumanoidDirVectorEnv: unexpected keyword argument\(s\) "
                                        r"\[.contact_cost_weight.\]"):
        make_task_vec(DIR_ID, 2, contact_cost_weight=1e-3, num_threads=1)
