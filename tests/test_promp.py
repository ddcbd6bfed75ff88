"""ProMP's outer algorithm (meta_rl/outer/promp.py): its first step is Adam on the meta-gradient, the inner-KL
penalty holds each inner step's policy near its sampling policy, the clip stops the push, the coefficient adapts."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from helpers import tiny_episodes, tiny_params, tiny_policy

from meta_rl.config import InnerConfig, OuterConfig, ProMPConfig
from meta_rl.episodes import Episodes
from meta_rl.meta_learner import MetaLearner
from meta_rl.policy import gaussian_log_prob
from meta_rl.trpo import flatten


def make_learner(optimizer: str = "promp", algorithm: str = "maml", num_steps: int = 1, **promp: object
                 ) -> MetaLearner:
    policy = tiny_policy()
    outer = OuterConfig(optimizer=optimizer, lr=1e-3, promp=ProMPConfig(**promp))
    return MetaLearner(policy, tiny_params(policy), InnerConfig(algorithm=algorithm, step_size=0.3, estimator="lvc",
                                                                num_steps=num_steps), outer)


def on_policy(episodes: Episodes, learner: MetaLearner, params: dict) -> Episodes:
    """The episodes with the log-probabilities of the parameters that would have sampled them (ratio 1)."""
    mean, log_std = learner.policy.forward(episodes.task_major("observations"), params)
    log_probs = gaussian_log_prob(episodes.task_major("actions"), mean, log_std).detach().transpose(0, 1)
    return dataclasses.replace(episodes, log_probs=log_probs.contiguous())


def sampled_batch(learner: MetaLearner, num_steps: int = 1) -> tuple[list[Episodes], Episodes]:
    """Supports and query whose stored log-probabilities are those of the policies that sampled them."""
    supports = []
    for k in range(num_steps):
        supports.append(on_policy(tiny_episodes(seed=1 + k), learner, learner.adapt(supports)))
    with torch.no_grad():
        query = on_policy(tiny_episodes(seed=11), learner, learner.adapt(supports))
    return supports, query


def meta_parameters(learner: MetaLearner) -> torch.Tensor:
    return flatten([t.detach() for t in learner.meta_parameters()]).clone()


def test_one_step_is_adam_on_the_meta_gradient():
    """At the sampling parameters the clipped surrogate equals the plain one and the inner KL's gradient is zero,
    so one ProMP step is one Adam step of the same learning rate on the same meta-gradient."""
    promp, adam = make_learner(lr=1e-3, steps=1), make_learner("adam")
    supports, query = sampled_batch(promp)
    promp_stats, adam_stats = promp.update(supports, query), adam.update(supports, query)
    torch.testing.assert_close(meta_parameters(promp), meta_parameters(adam), rtol=1e-12, atol=1e-14)
    assert promp_stats["losses/grad_norm"] == pytest.approx(adam_stats["losses/grad_norm"], rel=1e-12)
    assert promp_stats["losses/surrogate_before"] == pytest.approx(adam_stats["losses/surrogate_before"], rel=1e-12)


@pytest.mark.parametrize(("algorithm", "num_steps"), [("maml", 1), ("metasgd", 1), ("maml", 2)])
def test_several_steps_improve_the_surrogate_and_the_penalty_holds_the_inner_policies(algorithm: str,
                                                                                      num_steps: int):
    stats, moved = {}, {}
    for coefficient in (0.0, 100.0):
        learner = make_learner(algorithm=algorithm, num_steps=num_steps, lr=0.01, steps=5,
                               inner_kl_coeff=coefficient)
        supports, query = sampled_batch(learner, num_steps)
        start = meta_parameters(learner)
        stats[coefficient] = learner.update(supports, query)
        moved[coefficient] = (meta_parameters(learner) - start).norm().item()
    for result in stats.values():
        assert result["losses/surrogate_after"] < result["losses/surrogate_before"]
        assert result["losses/kl"] > 0.0 and result["promp/inner_kl"] > 0.0
    assert stats[100.0]["promp/inner_kl"] < 0.9 * stats[0.0]["promp/inner_kl"]
    assert moved[0.0] > 1e-3 and moved[100.0] > 1e-4


def test_ratio_beyond_the_clip_stops_the_update():
    """Every query ratio 2 with positive advantages: the clipped objective is flat, so nothing moves."""
    learner = make_learner(steps=3, inner_kl_coeff=0.0)
    supports, query = sampled_batch(learner)
    query = dataclasses.replace(query, log_probs=query.log_probs - torch.log(torch.tensor(2.0)),
                                advantages=query.advantages.abs() + 0.1)
    start = meta_parameters(learner)
    stats = learner.update(supports, query)
    assert torch.equal(meta_parameters(learner), start)
    assert stats["promp/clip_fraction"] == 1.0 and stats["losses/grad_norm"] == 0.0


@pytest.mark.parametrize(("target", "factor"), [(1e-12, 2.0), (1e3, 0.5)])
def test_adaptive_coefficient_doubles_above_and_halves_below_the_target(target: float, factor: float):
    learner = make_learner(lr=0.01, inner_kl_coeff=1e-3, adaptive_inner_kl=True, target_inner_kl=target)
    supports, query = sampled_batch(learner)
    stats = learner.update(supports, query)
    assert stats["promp/inner_kl_coeff"] == 1e-3  # the coefficient this update used
    assert learner.algorithm.inner_kl_coeff == [1e-3 * factor]
    fixed = make_learner(lr=0.01, inner_kl_coeff=1e-3)
    fixed.update(*sampled_batch(fixed))
    assert fixed.algorithm.inner_kl_coeff == [1e-3]


def test_state_round_trip_restores_adam_and_the_coefficients():
    learner = make_learner(lr=0.01, adaptive_inner_kl=True, target_inner_kl=1e-12)
    batch = sampled_batch(learner)
    learner.update(*batch)
    twin = make_learner(lr=0.01, adaptive_inner_kl=True, target_inner_kl=1e-12)
    twin.load_state_dict(copy.deepcopy(learner.state_dict()))  # as from a checkpoint: no shared Adam moments
    assert twin.algorithm.inner_kl_coeff == learner.algorithm.inner_kl_coeff == [1e-3]
    assert twin.update(*batch) == learner.update(*batch)
    torch.testing.assert_close(meta_parameters(twin), meta_parameters(learner), rtol=0, atol=0)
