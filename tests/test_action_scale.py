"""``policy.action_scale``: the policy acts in units of a fraction of the action bounds, as ProMP's normalize(env)."""

from __future__ import annotations

import re

import gymnasium
import numpy as np
import pytest
import torch

from meta_rl.api import AdaptedPolicy, MetaPolicy
from meta_rl.config import ConfigError, load_config
from meta_rl.policy import GaussianMLPPolicy
from meta_rl.rollout import make_policy
from meta_rl.sampler import Sampler
from meta_rl.streams import EpisodeStreams

SMALL = ["meta_batch_size=2", "episodes_per_task=3", "horizon=5"]


def _recorded_collect(config_overrides: list[str]) -> tuple[list[np.ndarray], torch.Tensor, GaussianMLPPolicy]:
    """One collect on the half-cheetah with the given overrides; the actions the env got at each step."""
    config = load_config("cheetah-vel-maml", [*SMALL, *config_overrides])
    policy = make_policy(config)
    params = policy.init_params(torch.Generator().manual_seed(0))
    sampler = Sampler(config.env.id, config.env.kwargs, 2, 3, config.horizon, policy, num_threads=1)
    received: list[np.ndarray] = []
    step = sampler.envs.step
    sampler.envs.step = lambda actions: (received.append(np.array(actions)), step(actions))[1]
    try:
        batch = sampler.collect(params, np.array([[0.5], [2.0]]), EpisodeStreams(0, (0,)))
    finally:
        sampler.close()
    return received, batch.actions, policy


def test_the_env_gets_the_scaled_actions_and_the_episodes_keep_the_policys() -> None:
    plain, plain_actions, _ = _recorded_collect([])
    scaled, scaled_actions, policy = _recorded_collect(["policy.action_scale=0.1"])
    assert policy.action_offset == [0.0] * 6 and policy.action_multiplier == pytest.approx([0.1] * 6)
    # the first step's observations are the same, so the policy draws the same actions in its own units
    torch.testing.assert_close(scaled_actions[0], plain_actions[0])
    np.testing.assert_allclose(plain[0], scaled_actions[0].reshape(-1, 6).numpy(), rtol=0, atol=0)
    np.testing.assert_allclose(scaled[0], 0.1 * scaled_actions[0].reshape(-1, 6).numpy(), rtol=1e-6)
    for step, actions in enumerate(scaled):  # every step: the env's action is 0.1 x the stored one
        np.testing.assert_allclose(actions, 0.1 * scaled_actions[step].reshape(-1, 6).numpy(), rtol=1e-6)
    assert not np.allclose(scaled[1], plain[1])  # after one scaled step the episodes differ


def test_offset_and_multiplier_come_from_the_bounds() -> None:
    navigation = make_policy(load_config("navigation-maml", ["policy.action_scale=0.5"]))  # bounds [-0.1, 0.1]
    assert navigation.action_offset == [0.0, 0.0] and navigation.action_multiplier == pytest.approx([0.05, 0.05])
    assert make_policy(load_config("navigation-maml")).action_offset is None  # the default: the env's units
    policy = GaussianMLPPolicy(3, 2, (4,), action_offset=[1.0, -2.0], action_multiplier=[0.5, 3.0])
    np.testing.assert_allclose(policy.to_env(np.array([[2.0, 1.0], [0.0, -1.0]])), [[2.0, 1.0], [1.0, -5.0]])


def test_predict_acts_in_the_envs_units_and_a_saved_policy_keeps_the_scale(tmp_path) -> None:
    meta = MetaPolicy.untrained(load_config("cheetah-vel-maml", [*SMALL, "policy.action_scale=0.1"]))
    unscaled = MetaPolicy(load_config("cheetah-vel-maml", SMALL), meta.params)
    obs = np.linspace(-1.0, 1.0, 17)
    adapted = AdaptedPolicy(meta.policy, meta.params, meta.env_id, {}, np.array([1.0]), 5)
    plain = AdaptedPolicy(unscaled.policy, unscaled.params, meta.env_id, {}, np.array([1.0]), 5)
    np.testing.assert_allclose(adapted.predict(obs), 0.1 * plain.predict(obs), rtol=1e-6)
    sampled = adapted.predict(obs, deterministic=False, rng=np.random.default_rng(3))
    np.testing.assert_allclose(sampled, 0.1 * plain.predict(obs, deterministic=False, rng=np.random.default_rng(3)),
                               rtol=1e-6)
    loaded = AdaptedPolicy.load(adapted.save(tmp_path / "adapted.pt"))
    np.testing.assert_allclose(loaded.predict(obs), adapted.predict(obs), rtol=0)
    assert GaussianMLPPolicy(**meta.policy.spec()).action_multiplier == meta.policy.action_multiplier  # for workers


def test_bad_scales_are_refused_before_any_work(monkeypatch) -> None:
    with pytest.raises(ConfigError, match=re.escape("policy.action_scale: -0.1 is not allowed; expected a value >= 0")):
        load_config("navigation-maml", ["policy.action_scale=-0.1"])
    config = load_config("navigation-maml", ["policy.action_scale=0.1"])
    unbounded = gymnasium.spaces.Box(-np.inf, np.inf, shape=(2,))
    real_make = gymnasium.make

    def make_unbounded(*args, **kwargs):
        env = real_make(*args, **kwargs)
        env.action_space = unbounded
        return env

    monkeypatch.setattr(gymnasium, "make", make_unbounded)
    message = "policy.action_scale: 0.1 needs bounded actions; meta_rl/Navigation2D-v0"
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_policy(config)
    with pytest.raises(ValueError, match="action_offset and action_multiplier go together"):
        GaussianMLPPolicy(3, 2, action_offset=[0.0, 0.0])
    with pytest.raises(ValueError, match="action_multiplier has 1 entries; expected action_dim = 2"):
        GaussianMLPPolicy(3, 2, action_offset=[0.0, 0.0], action_multiplier=[1.0])
