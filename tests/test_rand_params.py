"""Tests for envs/rand_params.py: walker and hopper with randomised physical parameters, one model per task."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import SyncVectorEnv
from helpers import step_alike

import meta_rl_envs
from meta_rl_envs import make_task_vec
from meta_rl_envs.rand_params import PARAMETER_SCALES

WALKER_ID, HOPPER_ID = "meta_rl/Walker2dParams-v0", "meta_rl/HopperParams-v0"
ALL_IDS = [WALKER_ID, HOPPER_ID, "meta_rl/Walker2dParamsOracle-v0", "meta_rl/HopperParamsOracle-v0"]
TASK_DIM = {"Walker2d": 65, "Hopper": 41}
OBS_DIM = {"Walker2d": 17, "Hopper": 11}


def body(env_id: str) -> str:
    return "Walker2d" if "Walker2d" in env_id else "Hopper"


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_check_env_and_spaces(env_id: str) -> None:
    env = gymnasium.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # infinite observation bounds: warnings, not errors
        check_env(env.unwrapped, skip_render_check=True)
    oracle = "Oracle" in env_id
    task_dim = TASK_DIM[body(env_id)]
    assert env.unwrapped.task_space == gymnasium.spaces.Box(-3.0, 3.0, (task_dim,), np.float64)
    assert env.observation_space.shape == (OBS_DIM[body(env_id)] + task_dim * oracle,)
    assert meta_rl_envs.family_class(env_id).observe_task == oracle
    np.testing.assert_array_equal(env.unwrapped.task, np.zeros(task_dim))
    env.close()


def test_a_task_scales_the_model_as_documented() -> None:
    env = gymnasium.make(WALKER_ID).unwrapped
    base = {name: np.array(getattr(env.model, name)) for name in PARAMETER_SCALES}
    task = env.sample_tasks(1, np.random.default_rng(4))[0]
    env.set_task(task)
    offset = 0
    for name, scale in PARAMETER_SCALES.items():
        size = base[name].size
        np.testing.assert_allclose(getattr(env.model, name), base[name] * scale ** task[offset:offset + size]
                                   .reshape(base[name].shape), rtol=1e-13)
        offset += size
    assert offset == task.size
    total = env.model.body_mass.sum()
    np.testing.assert_allclose(env.model.body_subtreemass[0], total, rtol=1e-12)  # derived constants recomputed
    assert env.model.stat.meaninertia == pytest.approx(env.model.dof_M0.mean(), rel=1e-12)  # the solver's scale
    env.set_task(np.zeros(task.size))
    for name in PARAMETER_SCALES:
        np.testing.assert_allclose(getattr(env.model, name), base[name], rtol=1e-13)
    assert env.model.stat.meaninertia == pytest.approx(gymnasium.make("Walker2d-v5").unwrapped.model.stat.meaninertia,
                                                       rel=1e-12)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_vector_env_with_one_model_per_task_equals_sync_vector_env(env_id: str) -> None:
    distinct = meta_rl_envs.family_class(env_id)().sample_tasks(3, np.random.default_rng(0))
    tasks = np.concatenate([distinct, distinct[:2]])  # sub-envs 3 and 4 share the models of 0 and 1
    native = make_task_vec(env_id, len(tasks), max_episode_steps=40, num_threads=2)
    native.set_tasks(tasks)
    models = native.unwrapped._models
    assert models[3] is models[0] and models[4] is models[1] and len({id(m) for m in models}) == 3
    reference = SyncVectorEnv([lambda: gymnasium.make(env_id, max_episode_steps=40)] * len(tasks))
    for env, task in zip(reference.envs, tasks, strict=True):
        env.unwrapped.set_task(task)
    np.testing.assert_array_equal(native.reset(seed=3)[0], reference.reset(seed=3)[0])
    terminations = step_alike(native, reference, np.random.default_rng(1), 100, 1.5, ("x_velocity",))
    assert terminations > 0, "the test must see episodes end early"
    native.set_tasks(tasks[::-1])  # new tasks, new models, the same cache
    assert native.unwrapped._models[0] is models[4]
    native.close()
    reference.close()


def test_bad_tasks_and_keywords_are_named_with_what_is_allowed() -> None:
    with pytest.raises(ValueError, match=r"3\.5 at index \(2,\) is outside the task space; allowed: \[-3, 3\]"):
        gymnasium.make(HOPPER_ID, task=[0.0, 0.0, 3.5] + [0.0] * 38)
    with pytest.raises(ValueError, match=r"shape \(3,\), expected shape \(65,\)"):
        gymnasium.make(WALKER_ID).unwrapped.set_task([0.0, 0.0, 0.0])
    with pytest.raises(TypeError, match=r"HopperParamsVectorEnv: unexpected keyword argument\(s\) \['mass'\]; "
                                        r"allowed: num_envs, .*frame_skip, reset_noise_scale, render_mode$"):
        make_task_vec(HOPPER_ID, 2, mass=2.0, num_threads=1)
