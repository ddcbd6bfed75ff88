"""Meta-World's ML1 and ML10 as task families: the benchmark's own variations, check_env, the vector env against
single envs, the success flag as the benchmark defines it, held-out evaluation on the test split."""

from __future__ import annotations

import gymnasium
import metaworld
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import meta_rl_envs
from meta_rl.config import Config, config_from_dict
from meta_rl.episodes import Episodes
from meta_rl.evaluation import evaluate
from meta_rl.ray_sampler import _pack, _unpack
from meta_rl.rollout import make_policy
from meta_rl.sampler import Sampler
from meta_rl.streams import EpisodeStreams
from meta_rl.trainer import Trainer
from meta_rl_envs.metaworld import EPISODE_STEPS, MetaWorldEnv, benchmark_variations

ML1 = "meta_rl/MetaWorldML1-v0"
ML10 = "meta_rl/MetaWorldML10-v0"


def reach_expert(observation: np.ndarray, task: np.ndarray) -> np.ndarray:
    """Move the hand straight at reach-v3's goal (the task's last 3 numbers; the observation hides it)."""
    action = np.zeros(4, dtype=np.float32)
    action[:3] = np.clip(10.0 * (task[3:] - observation[:3]), -1.0, 1.0)
    return action


@pytest.mark.filterwarnings("ignore:.*Box observation space:UserWarning")  # Meta-World's own space
def test_ml1_builds_passes_check_env_and_uses_the_benchmark_variations() -> None:
    env = gymnasium.make(ML1, env_name="reach-v3").unwrapped
    check_env(env, skip_render_check=True)
    assert env.observation_space.shape == (39,) and env.action_space.shape == (4,)
    made = metaworld.ML1("reach-v3", seed=0)
    for split, ours in (("train", env.variations.train), ("test", env.variations.test)):
        theirs = np.stack([metaworld_rand_vec(task) for task in getattr(made, f"{split}_tasks")])
        np.testing.assert_array_equal(ours, theirs)
    assert len(env.variations.train) == len(env.variations.test) == 50
    assert not set(map(bytes, env.variations.train)) & set(map(bytes, env.variations.test))


def metaworld_rand_vec(task: object) -> np.ndarray:
    import pickle

    return pickle.loads(task.data)["rand_vec"]  # type: ignore[attr-defined]


@pytest.mark.filterwarnings("ignore:.*Box observation space:UserWarning")  # Meta-World's own space
def test_ml10_tasks_index_ten_training_and_five_held_out_environments() -> None:
    env = gymnasium.make(ML10).unwrapped
    check_env(env, skip_render_check=True)
    variations = env.variations
    assert len(env.env_names) == 15 and variations.train.shape == (500, 7) and variations.test.shape == (250, 7)
    assert set(variations.train[:, 0]) == set(range(10)) and set(variations.test[:, 0]) == set(range(10, 15))
    held_out = env.sample_held_out_tasks(3, np.random.default_rng(0))
    assert (held_out[:, 0] >= 10).all()
    env.set_task(held_out[0])  # switches to that environment's Meta-World env
    observation, _ = env.reset()
    assert env._env_name == env.env_names[int(held_out[0, 0])] and observation.shape == (39,)


def test_the_same_seed_gives_the_same_tasks_and_first_observations() -> None:
    first, second = (gymnasium.make(ML1, env_name="push-v3").unwrapped for _ in range(2))
    benchmark_variations.cache_clear()  # made again from scratch: metaworld's own seeding must repeat
    third = gymnasium.make(ML1, env_name="push-v3").unwrapped
    np.testing.assert_array_equal(first.variations.train, third.variations.train)
    tasks = first.sample_tasks(5, np.random.default_rng(3))
    np.testing.assert_array_equal(tasks, second.sample_tasks(5, np.random.default_rng(3)))
    assert len({row.tobytes() for row in tasks}) == 5  # no repeats while there are enough
    for task in tasks:
        first.set_task(task)
        third.set_task(task)
        np.testing.assert_array_equal(first.reset(seed=1)[0], third.reset(seed=2)[0])
    first.set_task(tasks[0])
    fresh = first.reset()[0]
    for _ in range(20):
        first.step(first.action_space.sample())
    np.testing.assert_array_equal(first.reset()[0], fresh)  # a used env starts the next episode as a fresh one
    other_seed = gymnasium.make(ML1, env_name="push-v3", benchmark_seed=1).unwrapped
    assert not np.array_equal(other_seed.variations.train, first.variations.train)


def test_bad_env_name_task_and_seed_are_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"env_name must be one of .*'reach-v3'.*got 'reach'"):
        gymnasium.make(ML1, env_name="reach")
    with pytest.raises(ValueError, match="benchmark_seed must be an int >= 0"):
        gymnasium.make(ML1, benchmark_seed=-1)
    env = gymnasium.make(ML1).unwrapped
    near_one = env.variations.train[0].copy()
    near_one[0] += 1e-3
    with pytest.raises(ValueError, match="is not one of the ML1 reach-v3 variations"):
        env.set_task(near_one)
    with pytest.raises(ValueError, match="outside the task space"):
        env.set_task([5.0] * 6)
    with pytest.raises(ValueError, match="60 held-out tasks asked for, but the ML1 reach-v3 benchmark has 50 test"):
        env.sample_held_out_tasks(60, np.random.default_rng(0))
    many = env.sample_tasks(70, np.random.default_rng(0))  # more than there are: each once, then repeats
    assert len({row.tobytes() for row in many[:50]}) == 50
    policy = make_policy(tiny_config())
    with pytest.raises(ValueError, match="horizon 600 is longer than meta_rl/MetaWorldML1-v0's episodes, which end "
                                         "after 500 steps"):
        Sampler(ML1, {}, 2, 1, 600, policy)


def test_vector_env_equals_single_envs_step_for_step_through_autoreset() -> None:
    horizon = 15
    single_env = gymnasium.make(ML1, env_name="reach-v3").unwrapped
    tasks = np.repeat(single_env.sample_tasks(2, np.random.default_rng(0)), 2, axis=0)
    vector = meta_rl_envs.make_task_vec(ML1, 4, max_episode_steps=horizon)
    singles = [gymnasium.make(ML1, env_name="reach-v3", max_episode_steps=horizon) for _ in range(4)]
    vector.set_tasks(tasks)
    observations, _ = vector.reset(seed=[0, 1, 2, 3])
    for i, (env, task) in enumerate(zip(singles, tasks, strict=True)):
        env.unwrapped.set_task(task)
        np.testing.assert_array_equal(observations[i], env.reset(seed=i)[0])
    rng = np.random.default_rng(1)
    for t in range(horizon + 3):  # past the truncation: NEXT_STEP autoreset as SyncVectorEnv
        actions = rng.uniform(-1, 1, (4, 4)).astype(np.float32)
        observations, rewards, terminated, truncated, infos = vector.step(actions)
        for i, env in enumerate(singles):
            if t == horizon:  # the reset step
                expected = (env.reset()[0], 0.0, False, False, False)
            else:
                obs, reward, term, trunc, info = env.step(actions[i])
                expected = (obs, reward, term, trunc, info["success"])
            np.testing.assert_array_equal(observations[i], expected[0])
            success = infos["success"][i] if "success" in infos else False  # a step resetting every sub-env has none
            assert (rewards[i], terminated[i], truncated[i], success) == expected[1:]
        assert truncated.all() == (t == horizon - 1)


def test_success_is_the_benchmarks_flag_at_any_step_of_an_episode() -> None:
    env = gymnasium.make(ML1, env_name="reach-v3").unwrapped
    task = env.sample_held_out_tasks(1, np.random.default_rng(0))[0]
    env.set_task(task)
    made = metaworld.ML1("reach-v3", seed=0)
    theirs = made.test_classes["reach-v3"]()
    theirs.set_task(next(t for t in made.test_tasks if np.array_equal(metaworld_rand_vec(t), task)))
    observation, _ = env.reset()
    their_observation, _ = theirs.reset()
    flags = []
    for _ in range(EPISODE_STEPS):
        action = reach_expert(observation, task)
        observation, reward, _, truncated, info = env.step(action)
        their_observation, their_reward, _, _, their_info = theirs.step(action)
        np.testing.assert_array_equal(observation, their_observation)
        assert reward == their_reward and info["success"] == bool(their_info["success"])
        flags.append(info["success"])
    assert truncated and not flags[0] and any(flags)  # the expert reaches the goal; Meta-World ends at 500 steps

    # an episode counts as a success when the flag is set at any of its steps (masked steps do not count)
    successes = torch.zeros(4, 1, 3)
    successes[2, 0, 0] = 1.0
    successes[0, 0, 2] = 1.0
    batch = Episodes(*(torch.zeros(4, 1, 3, 1),) * 2, torch.zeros(4, 1, 3), torch.ones(4, 1, 3),
                     torch.zeros(4, 1, 3), successes=successes)
    assert batch.episode_successes().tolist() == [[1.0, 0.0, 1.0]]


def tiny_config(**changes: object) -> Config:
    raw = {"env": {"id": ML1, "kwargs": {"env_name": "reach-v3"}}, "policy": {"hidden_sizes": [8]},
           "meta_batch_size": 2, "episodes_per_task": 2, "horizon": 12, "iterations": 1, "torch_threads": 1}
    raw.update(changes)
    return config_from_dict(raw)


def test_sampler_runs_a_tasks_episodes_in_rounds_and_records_success_like_the_envs() -> None:
    config = tiny_config()
    policy = make_policy(config)
    params = policy.init_params(torch.Generator().manual_seed(0))
    sampler = Sampler(ML1, {"env_name": "reach-v3"}, 2, 3, 12, policy)
    assert sampler.envs_per_task == 1 and sampler.envs.num_envs == 2  # a whole MuJoCo model per sub-env
    tasks = sampler.sample_tasks(2, np.random.default_rng(0))
    batch = sampler.collect(params, tasks, EpisodeStreams(0, (1,)))
    assert batch.successes is not None and batch.successes.shape == (12, 2, 3)
    # every episode again, alone in a single env, from its own seed with its actions: the same steps and flags
    seeds, _ = EpisodeStreams(0, (1,)).draw(np.arange(6), 12, 4)
    env = gymnasium.make(ML1, env_name="reach-v3", max_episode_steps=12)
    for m in range(2):
        env.unwrapped.set_task(tasks[m])
        for n in range(3):
            observation, _ = env.reset(seed=seeds[m * 3 + n])
            for t in range(12):
                np.testing.assert_allclose(batch.observations[t, m, n].numpy(), observation.astype(np.float32))
                observation, reward, _, _, info = env.step(batch.actions[t, m, n].numpy())
                assert batch.rewards[t, m, n].item() == pytest.approx(reward, rel=1e-6)
                assert batch.successes[t, m, n].item() == float(info["success"])
    assert batch.successes.sum() == 0  # a random policy does not reach in 12 steps: the flags below are set by hand
    restored = _unpack([_pack(batch.select_tasks(slice(0, 1))), _pack(batch.select_tasks(slice(1, 2)))])
    torch.testing.assert_close(restored.successes, batch.successes)  # the Ray backend carries it too
    sampler.close()


def test_training_logs_success_and_evaluate_reports_it_on_the_test_variations(tmp_path) -> None:
    runs = []
    for name in ("run", "again"):  # the same seed: the same tasks, episodes and update
        trainer = Trainer(tiny_config(), tmp_path / name)
        stats = trainer.train_iteration()
        runs.append({key: value for key, value in stats.items() if key.startswith(("returns/", "success/"))})
        trainer.sampler.close()
    assert {"success/step_0", "success/step_1"} <= set(runs[0]) and runs[0] == runs[1]
    assert all(0.0 <= runs[0][f"success/step_{k}"] <= 1.0 for k in range(2))

    result = evaluate(untrained=tiny_config(), num_tasks=3, grad_steps=1, episodes=1)
    test_split = {row.tobytes() for row in benchmark_variations("ML1", "reach-v3", 0).test}
    assert all(np.asarray(task).tobytes() in test_split for task in result["tasks"])
    success = result["success"]
    assert len(success["mean"]) == len(success["stderr"]) == 2 and np.shape(success["per_task"]) == (3, 2)


def test_success_flags_land_on_their_steps_episodes_and_tasks(monkeypatch) -> None:
    """Steps of task 0 report success from an episode's 5th step on (task 1 never): the batch has them there."""
    real_step = MetaWorldEnv.step
    first_task: list[np.ndarray] = []

    def step(self, action):
        observation, reward, terminated, truncated, info = real_step(self, action)
        info["success"] = bool(np.array_equal(self.task, first_task[0]) and self._env.curr_path_length >= 5)
        return observation, reward, terminated, truncated, info

    monkeypatch.setattr(MetaWorldEnv, "step", step)
    policy = make_policy(tiny_config())
    sampler = Sampler(ML1, {}, 2, 2, 8, policy)
    tasks = sampler.sample_tasks(2, np.random.default_rng(1))
    first_task.append(tasks[0])
    batch = sampler.collect(policy.init_params(torch.Generator().manual_seed(0)), tasks, EpisodeStreams(0, (2,)))
    expected = torch.zeros(8, 2, 2)
    expected[4:, 0] = 1.0  # step t leaves the env at path length t + 1
    torch.testing.assert_close(batch.successes, expected, rtol=0, atol=0)
    assert batch.episode_successes().tolist() == [[1.0, 1.0], [0.0, 0.0]]
    sampler.close()


def test_a_large_task_set_is_adapted_to_a_chunk_at_a_time(monkeypatch) -> None:
    import meta_rl.api as api

    meta = api.MetaPolicy.untrained(tiny_config(horizon=6))
    tasks = meta.sample_held_out_tasks(3, np.random.default_rng(0))
    _, first_two = meta.adapt_tasks(tasks[:2], 1, episodes=1)
    monkeypatch.setattr(api, "HEAVY_TASKS_AT_ONCE", 2)
    params, log = meta.adapt_tasks(tasks, 1, episodes=1)
    assert params["log_std"].shape[0] == 3 and log.episodes[0].num_tasks == 3 and len(log.per_task[1]) == 3
    for step in range(2):  # the first chunk is the same adaptation as those two tasks alone
        np.testing.assert_array_equal(log.per_task[step][:2], first_two.per_task[step])
        np.testing.assert_array_equal(log.successes[step][:2], first_two.successes[step])
