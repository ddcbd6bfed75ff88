"""Tests for the vectorized sampler: layout, log-probs, masking of ended episodes, replay through single envs."""

from __future__ import annotations

import math
from collections.abc import Iterator

import gymnasium
import numpy as np
import pytest
import torch

import meta_rl_envs
from meta_rl.episodes import Episodes
from meta_rl.policy import GaussianMLPPolicy
from meta_rl.sampler import Sampler
from meta_rl.streams import EpisodeStreams

ENV_ID = "meta_rl/Navigation2D-v0"


@pytest.fixture
def make_sampler() -> Iterator:
    """Build samplers and close them all at the end of the test."""
    built: list[Sampler] = []

    def build(num_tasks: int, num_eps: int, horizon: int, policy: GaussianMLPPolicy) -> Sampler:
        sampler = Sampler(ENV_ID, {}, num_tasks, num_eps, horizon, policy)
        built.append(sampler)
        return sampler

    yield build
    for sampler in built:
        sampler.close()


def collect(sampler: Sampler, params: dict, tasks: np.ndarray, seed: int = 0, torch_seed: int = 0) -> Episodes:
    return sampler.collect(params, tasks, EpisodeStreams(seed, (torch_seed,)))


def homing_params(goals: np.ndarray, gains: list[float], std: float) -> dict[str, torch.Tensor]:
    """Task-batched params of a linear policy (no hidden layer) whose mean is ``gain_m * (goal_m - obs)``."""
    num_tasks = len(goals)
    gain = torch.tensor(gains, dtype=torch.float32).view(num_tasks, 1, 1)
    return {
        "mean.weight": -gain * torch.eye(2).expand(num_tasks, 2, 2),
        "mean.bias": gain.view(num_tasks, 1) * torch.as_tensor(goals, dtype=torch.float32),
        "log_std": torch.full((num_tasks, 2), math.log(std)),
    }


def replay(goal: np.ndarray, actions: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, list, list]:
    """Play ``actions`` in a single env (gymnasium.make, TimeLimit = horizon) until it ends.

    Returns the observations seen before each step, the rewards, and the terminated / truncated flags.
    """
    env = gymnasium.make(ENV_ID, max_episode_steps=horizon)
    env.unwrapped.set_task(goal)
    obs, _ = env.reset(seed=0)
    observations, rewards, terminated, truncated = [], [], [], []
    for action in actions:
        observations.append(obs)
        obs, reward, term, trunc, _ = env.step(action)
        rewards.append(reward)
        terminated.append(term)
        truncated.append(trunc)
        if term or trunc:
            break
    env.close()
    return np.array(observations), np.array(rewards), terminated, truncated


def check_against_replay(episodes: Episodes, tasks: np.ndarray, horizon: int) -> list[int]:
    """Every (task, episode) matches a single-env replay of its actions; returns the episode lengths."""
    num_tasks, num_eps = episodes.rewards.shape[1:]
    lengths = []
    for m in range(num_tasks):
        for n in range(num_eps):
            actions = episodes.actions[:, m, n].numpy()
            obs, rewards, terminated, truncated = replay(tasks[m], actions, horizon)
            length = len(rewards)
            lengths.append(length)
            mask = episodes.mask[:, m, n].numpy()
            np.testing.assert_array_equal(mask, (np.arange(horizon) < length).astype(np.float32))
            np.testing.assert_array_equal(episodes.observations[:length, m, n].numpy(), obs)
            np.testing.assert_array_equal(episodes.rewards[:length, m, n].numpy(), rewards.astype(np.float32))
            assert np.all(episodes.rewards[length:, m, n].numpy() == 0.0)
            assert terminated[-1] or truncated[-1]
            assert truncated[-1] == (length == horizon and not terminated[-1])
            np.testing.assert_allclose(
                float(episodes.episode_returns()[m, n]), float(rewards.sum()), rtol=1e-5, atol=1e-5
            )
    return lengths


# --------------------------------------------------------------------------------- layout, log-probs


@pytest.mark.parametrize("task_batched", [False, True])
def test_shapes_and_log_probs_match_policy(make_sampler, task_batched: bool) -> None:
    num_tasks, num_eps, horizon = 3, 4, 15
    policy = GaussianMLPPolicy(2, 2, hidden_sizes=(8,), init_std=0.3)
    params = policy.init_params(torch.Generator().manual_seed(0))
    if task_batched:
        gen = torch.Generator().manual_seed(1)
        params = {
            k: v.expand(num_tasks, *v.shape) + 0.3 * torch.randn(num_tasks, *v.shape, generator=gen)
            for k, v in params.items()
        }
    tasks = np.random.default_rng(0).uniform(-0.5, 0.5, size=(num_tasks, 2))
    episodes = collect(make_sampler(num_tasks, num_eps, horizon, policy), params, tasks)

    assert episodes.observations.shape == (horizon, num_tasks, num_eps, 2)
    assert episodes.actions.shape == (horizon, num_tasks, num_eps, 2)
    for name in ("rewards", "mask", "log_probs"):
        assert getattr(episodes, name).shape == (horizon, num_tasks, num_eps), name

    params64 = {k: v.double() for k, v in params.items()}
    obs, actions = episodes.observations.double(), episodes.actions.double()
    if task_batched:  # the task-batched forward wants [M, ..., obs_dim]
        expected = policy.log_prob(obs.transpose(0, 1), actions.transpose(0, 1), params64).transpose(0, 1)
    else:
        expected = policy.log_prob(obs, actions, params64)
    valid = episodes.mask.bool()
    assert valid.any()
    torch.testing.assert_close(episodes.log_probs.double()[valid], expected[valid], rtol=1e-5, atol=1e-4)
    # task-batched: each task really uses its own parameters (the log-probs under task 0's params differ)
    if task_batched:
        p0 = {k: v[0] for k, v in params64.items()}
        other = policy.log_prob(obs[:, 1], actions[:, 1], p0)
        assert (other - expected[:, 1]).abs().max() > 1e-2


# ------------------------------------------------------------------------------------------ masking


def test_early_termination_is_masked_and_matches_replay(make_sampler) -> None:
    """A policy that heads straight for the goal terminates early; later steps are masked out."""
    horizon, num_eps = 10, 2
    goals = np.array([[0.35, -0.25], [0.05, 0.02], [-0.45, 0.45], [0.3, 0.3]])
    gains = [1.0, 1.0, 1.0, 0.05]  # the last task creeps towards its goal and never gets there
    policy = GaussianMLPPolicy(2, 2, hidden_sizes=())
    params = homing_params(goals, gains, std=1e-4)
    episodes = collect(make_sampler(len(goals), num_eps, horizon, policy), params, goals)

    # steps of 0.1 per axis: the goal is reached on step 4, 1, 5 (index 3, 0, 4); the last one truncates
    expected_lengths = [4, 1, 5, horizon]
    t = torch.arange(horizon).view(horizon, 1)
    for m, length in enumerate(expected_lengths):
        torch.testing.assert_close(episodes.mask[:, m], (t < length).float().expand(horizon, num_eps))
    assert torch.all(episodes.rewards[episodes.mask == 0] == 0.0)
    assert torch.all(episodes.rewards[episodes.mask == 1] < 0.0)
    lengths = check_against_replay(episodes, goals, horizon)
    assert lengths == [n for n in expected_lengths for _ in range(num_eps)]


def test_observations_and_rewards_match_single_env_replay(make_sampler) -> None:
    num_tasks, num_eps, horizon = 2, 3, 8
    policy = GaussianMLPPolicy(2, 2, hidden_sizes=(6,), init_std=0.1)
    params = policy.init_params(torch.Generator().manual_seed(2))
    tasks = np.random.default_rng(1).uniform(-0.5, 0.5, size=(num_tasks, 2))
    episodes = collect(make_sampler(num_tasks, num_eps, horizon, policy), params, tasks, seed=3, torch_seed=4)
    assert episodes.observations[1:].abs().sum() > 0  # the points actually moved
    check_against_replay(episodes, tasks, horizon)


# ------------------------------------------------------------------------------------------- seeding


def test_same_seeds_same_episodes_different_seed_different(make_sampler) -> None:
    num_tasks, num_eps, horizon = 2, 3, 12
    policy = GaussianMLPPolicy(2, 2, hidden_sizes=(8,), init_std=0.2)
    params = policy.init_params(torch.Generator().manual_seed(0))
    tasks = np.array([[0.2, -0.1], [-0.3, 0.4]])
    sampler = make_sampler(num_tasks, num_eps, horizon, policy)
    first = collect(sampler, params, tasks, seed=5, torch_seed=6)
    second = collect(sampler, params, tasks, seed=5, torch_seed=6)
    fresh = collect(make_sampler(num_tasks, num_eps, horizon, policy), params, tasks, seed=5, torch_seed=6)
    other = collect(sampler, params, tasks, seed=5, torch_seed=7)
    for name in ("observations", "actions", "rewards", "mask", "log_probs"):
        assert torch.equal(getattr(first, name), getattr(second, name)), name
        assert torch.equal(getattr(first, name), getattr(fresh, name)), name
    assert not torch.equal(first.actions, other.actions)
    assert not torch.equal(first.observations, other.observations)
    assert not torch.equal(first.rewards, other.rewards)


# ---------------------------------------------------------------------------------- horizon, layout


@pytest.mark.parametrize("horizon", [7, 120])
def test_horizon_truncates_and_sub_env_runs_its_task(make_sampler, horizon: int) -> None:
    """Episodes last exactly ``horizon`` steps (shorter or longer than the registered 100), and sub-env
    ``m * N + n`` runs task ``m``: its reward is minus the distance from the new position to goal ``m``."""
    num_tasks, num_eps = 3, 2
    policy = GaussianMLPPolicy(2, 2, hidden_sizes=(4,), init_std=0.05)
    params = policy.init_params(torch.Generator().manual_seed(3))
    params = {k: torch.zeros_like(v) if k != "log_std" else v for k, v in params.items()}  # zero mean: no goal
    tasks = np.array([[0.45, 0.45], [-0.45, 0.3], [0.1, -0.45]])
    sampler = make_sampler(num_tasks, num_eps, horizon, policy)
    episodes = collect(sampler, params, tasks)
    assert episodes.rewards.shape == (horizon, num_tasks, num_eps)
    assert torch.all(episodes.mask == 1.0)

    # the vector env itself truncated after `horizon` steps: the next step is an autoreset step
    obs, reward, *_ = sampler.envs.step(np.zeros((num_tasks * num_eps, 2), np.float32))
    np.testing.assert_array_equal(obs, 0.0)
    np.testing.assert_array_equal(reward, 0.0)

    # reward at step t is -|position after the step - goal of task m|
    obs = episodes.observations.numpy()
    velocity = np.clip(episodes.actions[-1].numpy(), -0.1, 0.1)
    next_obs = np.concatenate([obs[1:], (obs[-1] + velocity)[None]])  # [T, M, N, 2], float32 like the env
    distance = np.linalg.norm(next_obs.astype(np.float64) - tasks[None, :, None, :], axis=-1)
    np.testing.assert_allclose(episodes.rewards.numpy(), -distance, rtol=1e-6, atol=1e-7)
    # and not the distance to another task's goal (the check above would catch a task permutation)
    wrong = np.linalg.norm(next_obs.astype(np.float64) - tasks[None, [1, 2, 0], None, :], axis=-1)
    assert np.abs(episodes.rewards.numpy() + wrong).max() > 0.1


# ---------------------------------------------------------------------------------------------- errors


def test_wrong_number_of_tasks_or_params_tasks_raises(make_sampler) -> None:
    num_tasks, num_eps, horizon = 3, 2, 5
    policy = GaussianMLPPolicy(2, 2, hidden_sizes=(4,))
    params = policy.init_params(torch.Generator().manual_seed(0))
    sampler = make_sampler(num_tasks, num_eps, horizon, policy)
    tasks = np.zeros((num_tasks, 2))
    with pytest.raises(ValueError, match=r"got 2 tasks.*built for 3"):
        collect(sampler, params, tasks[:2])
    with pytest.raises(ValueError, match=r"got 4 tasks.*built for 3"):
        collect(sampler, params, np.zeros((4, 2)))
    batched = {k: v.expand(2, *v.shape).clone() for k, v in params.items()}  # 2 tasks, sampler wants 3
    with pytest.raises(ValueError, match="2 tasks; expected 3"):
        collect(sampler, batched, tasks)
    # the matching task dimension works
    batched3 = {k: v.expand(3, *v.shape).clone() for k, v in params.items()}
    assert collect(sampler, batched3, tasks).rewards.shape == (horizon, num_tasks, num_eps)


def test_collect_restores_torch_threads(make_sampler) -> None:
    """Stepping runs torch on one thread (idle OpenMP workers would take CPU from threaded physics); the caller's
    setting is restored afterwards."""
    policy = GaussianMLPPolicy(2, 2, hidden_sizes=(8,))
    params = policy.init_params(torch.Generator().manual_seed(0))
    sampler = make_sampler(2, 2, 5, policy)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        collect(sampler, params, np.zeros((2, 2)), seed=0, torch_seed=0)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("env_id", ["meta_rl/HopperParams-v0", "meta_rl/HumanoidDir-v0", "meta_rl/AntDir-v0"])
def test_freezing_ended_episodes_changes_no_valid_step(env_id: str, monkeypatch) -> None:
    """The batched MuJoCo envs stop stepping sub-envs whose episode ended; every valid step, and the advantages
    computed from the batch, stay what stepping every sub-env gave."""
    from meta_rl.baseline import compute_advantages
    from meta_rl.config import load_config
    from meta_rl.rollout import make_policy

    # env units (no action scale), so that untrained episodes end early
    policy = make_policy(load_config("ant-dir-maml", [f"env.id={env_id}", "policy.action_scale=0"]))
    params = policy.init_params(torch.Generator().manual_seed(0))
    batches = []
    for freeze in (True, False):
        sampler = Sampler(env_id, {}, 3, 4, 60, policy, num_threads=2)
        if not freeze:
            monkeypatch.setattr(sampler.envs.unwrapped, "set_active", None, raising=False)
        tasks = sampler.envs.sample_tasks(3, np.random.default_rng(1))
        batches.append(collect(sampler, params, tasks, seed=2, torch_seed=3))
        if freeze:  # the last steps moved only the sub-envs whose episode had not ended
            active = sampler.envs.unwrapped._active
            assert active is not None and not active.all()
        sampler.close()
        monkeypatch.undo()
    frozen, stepped = batches
    assert frozen.mask.sum() < frozen.mask.numel(), "episodes must end early for the test to mean something"
    torch.testing.assert_close(frozen.mask, stepped.mask, rtol=0, atol=0)
    valid = frozen.mask.bool()
    for name in ("observations", "actions", "rewards", "log_probs"):
        torch.testing.assert_close(getattr(frozen, name)[valid], getattr(stepped, name)[valid], rtol=0, atol=0)
    torch.testing.assert_close(compute_advantages(frozen, 0.99, 1.0), compute_advantages(stepped, 0.99, 1.0),
                               rtol=0, atol=0)


@pytest.mark.parametrize("hidden", [(8,), (64, 64)], ids=["small-matmul-path", "blas-path"])
@pytest.mark.parametrize("num_eps, first_task", [(3, 2), (1, 3)])
def test_any_split_of_a_collect_draws_the_same_episodes(make_sampler, num_eps: int, first_task: int,
                                                       hidden: tuple[int, ...]) -> None:
    """Per-episode streams: the episodes of the last tasks collected alone (with their collect-wide indices) equal
    the same episodes collected with all four tasks, so how the episodes are shared out never changes the numbers.
    A one-episode shard is one row through the policy, which BLAS rounds differently from a block of rows; torch
    multiplies matrices under 400 multiply-adds itself, larger ones (64 wide) in BLAS."""
    policy = GaussianMLPPolicy(2, 2, hidden, "tanh")
    params = policy.init_params(torch.Generator().manual_seed(0))
    tasks = np.array([[0.3, -0.2], [-0.4, 0.1], [0.2, 0.45], [-0.1, -0.35]])
    streams = EpisodeStreams(5, (0, 7, 1))
    whole = make_sampler(4, num_eps, 20, policy).collect(params, tasks, streams)
    part = make_sampler(4 - first_task, num_eps, 20, policy).collect(
        params, tasks[first_task:], streams, episodes=np.arange(first_task * num_eps, 4 * num_eps))
    for name in ("observations", "actions", "rewards", "mask", "log_probs"):
        torch.testing.assert_close(getattr(part, name), getattr(whole, name)[:, first_task:], rtol=0, atol=0)
    other = make_sampler(4, num_eps, 20, policy).collect(params, tasks, EpisodeStreams(5, (0, 7, 2)))
    assert not torch.equal(other.actions, whole.actions)  # another collect's key: other numbers
    with pytest.raises(ValueError, match=f"got 5 episode indices; this sampler steps {4 * num_eps}"):
        make_sampler(4, num_eps, 20, policy).collect(params, tasks, streams, episodes=np.arange(5))


def test_episode_streams_refuse_bad_seeds_and_keys() -> None:
    with pytest.raises(ValueError, match="seed must be a non-negative int, got -1"):
        EpisodeStreams(-1, (0,))
    with pytest.raises(ValueError, match=r"a collect's key must be non-negative ints, got \(0, -2\)"):
        EpisodeStreams(0, (0, -2))
    seeds, noise = EpisodeStreams(3, (1,)).draw([4, 9], horizon=5, action_dim=2)
    again_seeds, again = EpisodeStreams(3, (1,)).draw([9], horizon=5, action_dim=2)
    assert seeds[1] == again_seeds[0] and noise.shape == (5, 2, 2) and noise.dtype == np.float32
    np.testing.assert_array_equal(noise[:, 1], again[:, 0])


def test_the_ray_backend_without_ray_installed_says_what_to_install(monkeypatch) -> None:
    import sys

    from meta_rl.config import ConfigError, load_config
    from meta_rl.rollout import make_policy
    from meta_rl.sampler import make_sampler

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    monkeypatch.delitem(sys.modules, "meta_rl.ray_sampler", raising=False)
    config = load_config("navigation-maml", ["sampler.backend=ray"])
    with pytest.raises(ConfigError, match=r"sampler.backend: 'ray' needs Ray, which is not installed .*pip install "
                                          r"-e '.\[ray\]'"):
        make_sampler(config, make_policy(config), 2, 2)


@pytest.mark.parametrize(("env_id", "episodes", "cap", "per_round"), [
    ("meta_rl/Navigation2D-v0", 4, 2, 2),
    ("meta_rl/HalfCheetahVel-v0", 6, 4, 3),  # the most up to the cap that divide the episodes into equal rounds
])
def test_a_family_that_caps_its_sub_envs_plays_each_episode_from_its_own_streams_in_rounds(
        monkeypatch, env_id, episodes, cap, per_round) -> None:
    """Round r of a capped collect equals an uncapped collect of the same episodes (their collect-wide indices): the
    same reset seeds, noise and columns. (Against all episodes at once it agrees only up to the rounding of the
    policy's forward pass over a smaller batch, which a chaotic simulator then grows.)"""
    family = meta_rl_envs.family_class(env_id)
    env = gymnasium.make(env_id).unwrapped
    policy = GaussianMLPPolicy(env.observation_space.shape[0], env.action_space.shape[0], (8,), "tanh")
    params = policy.init_params(torch.Generator().manual_seed(0))
    tasks = env.sample_tasks(3, np.random.default_rng(4))
    reference = Sampler(env_id, {}, 3, per_round, 12, policy)
    monkeypatch.setattr(family, "max_envs_per_task", cap)
    rounds = Sampler(env_id, {}, 3, episodes, 12, policy)
    assert (rounds.envs_per_task, rounds.envs.num_envs) == (per_round, 3 * per_round)
    streams = EpisodeStreams(2, (0, 3))
    got = rounds.collect(params, tasks, streams)
    for start in range(0, episodes, per_round):
        indices = np.array([m * episodes + start + j for m in range(3) for j in range(per_round)])
        expected = reference.collect(params, tasks, streams, episodes=indices)
        for name in ("observations", "actions", "rewards", "mask", "log_probs"):
            torch.testing.assert_close(getattr(got, name)[:, :, start:start + per_round], getattr(expected, name),
                                       rtol=0, atol=0)
    assert not torch.equal(got.actions[:, :, 0], got.actions[:, :, per_round])  # the rounds are other episodes
    reference.close()
    rounds.close()
    monkeypatch.setattr(family, "max_envs_per_task", 0)
    with pytest.raises(ValueError, match="max_envs_per_task must be a positive int or None, got 0"):
        Sampler(env_id, {}, 3, episodes, 12, policy)
