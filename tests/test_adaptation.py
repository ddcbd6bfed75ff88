"""The inner step and the meta-gradient through it, against finite differences and explicit Hessians."""

from __future__ import annotations

import pytest
import torch
from helpers import finite_difference_gradient, flat, tiny_episodes, tiny_params, tiny_policy, unflat

from meta_rl.adaptation import adapt, init_step_sizes, inner_loss, step_size_of_step
from meta_rl.config import InnerConfig, OuterConfig
from meta_rl.episodes import Episodes
from meta_rl.meta_learner import MetaLearner
from meta_rl.trpo import flatten

ALPHA = 0.3


def learner_for(algorithm: str, first_order: bool = False, estimator: str = "maml") -> MetaLearner:
    policy = tiny_policy()
    g = torch.Generator().manual_seed(5)  # distinct per-element step sizes, so a mixed-up index shows
    step_sizes = {
        name: ALPHA * (0.5 + torch.rand(shape, generator=g, dtype=torch.float64))
        for name, shape in policy.shapes.items()
    }
    return MetaLearner(
        policy,
        tiny_params(policy),
        InnerConfig(algorithm=algorithm, step_size=ALPHA, first_order=first_order, estimator=estimator),
        OuterConfig(),
        step_sizes=step_sizes,
    )


def test_batched_inner_step_equals_per_task_steps():
    policy, support = tiny_policy(), tiny_episodes()
    params = tiny_params(policy)
    batched = adapt(policy, params, support, ALPHA)
    for m in range(support.num_tasks):
        single = adapt(policy, params, support.select_tasks(slice(m, m + 1)), ALPHA)
        for name in params:
            torch.testing.assert_close(batched[name][m], single[name][0], rtol=1e-12, atol=1e-12)


def test_inner_step_is_gradient_descent_on_the_task_loss():
    policy, support = tiny_policy(), tiny_episodes()
    params = tiny_params(policy)
    adapted = adapt(policy, params, support, ALPHA)
    for m in range(support.num_tasks):
        vector = flat(params).clone().requires_grad_(True)
        loss = inner_loss(policy, unflat(vector, params), support.select_tasks(slice(m, m + 1)))[0]
        (grad,) = torch.autograd.grad(loss, vector)
        expected = unflat(vector.detach() - ALPHA * grad, params)
        for name in params:
            torch.testing.assert_close(adapted[name][m], expected[name], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("estimator", ["maml", "lvc", "dice"])
@pytest.mark.parametrize("algorithm", ["maml", "metasgd"])
@pytest.mark.parametrize("num_steps", [1, 2])
def test_second_order_meta_gradient_matches_finite_differences(algorithm: str, num_steps: int, estimator: str):
    """Every estimator is a function of the parameters (its ratios are to the stored sampling log-probabilities),
    so its meta-gradient through one or two inner steps is what finite differences of the surrogate give."""
    learner = learner_for(algorithm, estimator=estimator)
    supports = [tiny_episodes(seed=1 + k) for k in range(num_steps)]
    query = tiny_episodes(seed=11)
    tensors = learner.meta_parameters()
    names = list(learner.params) + [f"alpha/{n}" for n in (learner.step_sizes or {})]
    like = dict(zip(names, [t.detach() for t in tensors], strict=True))

    def objective(vector: torch.Tensor) -> torch.Tensor:
        values = list(unflat(vector, like).values())
        return learner.surrogate(supports, query, *learner._split(values)).loss.detach()

    analytic = flat(dict(zip(names, torch.autograd.grad(learner.surrogate(supports, query).loss, tensors),
                             strict=True)))
    numeric = finite_difference_gradient(objective, flat(like))
    torch.testing.assert_close(analytic, numeric, rtol=1e-5, atol=1e-7)
    if algorithm == "metasgd":  # the step sizes really get a (non-zero) meta-gradient
        assert analytic[flat(learner.params).numel():].abs().max() > 1e-4


def test_first_order_drops_exactly_the_second_order_term():
    """MAML's meta-gradient is (I - alpha H_support) g'; first-order MAML is g', per task, summed."""
    second = learner_for("maml", first_order=False)
    first = learner_for("maml", first_order=True)
    support, query = tiny_episodes(seed=1), tiny_episodes(seed=11)
    params = second.params
    grad_second = flat(dict(zip(params, torch.autograd.grad(second.surrogate([support], query).loss,
                                                             list(params.values())), strict=True)))
    grad_first = flat(dict(zip(params, torch.autograd.grad(first.surrogate([support], query).loss,
                                                            list(first.params.values())), strict=True)))
    # g'_m: gradient of the outer loss w.r.t. task m's adapted parameters.
    adapted = {k: v.detach().requires_grad_(True) for k, v in adapt(second.policy, params, support, ALPHA).items()}
    outer = second.surrogate([], query, params=adapted).loss
    adapted_grads = torch.autograd.grad(outer, list(adapted.values()))
    expected_first = torch.zeros_like(grad_first)
    expected_second = torch.zeros_like(grad_second)
    base = flat(params).detach()
    for m in range(support.num_tasks):
        g_m = torch.cat([g[m].reshape(-1) for g in adapted_grads])
        task = support.select_tasks(slice(m, m + 1))

        def task_loss(vector: torch.Tensor, task: Episodes = task) -> torch.Tensor:
            return inner_loss(second.policy, unflat(vector, params), task)[0]

        hessian = torch.autograd.functional.hessian(task_loss, base)
        expected_first += g_m
        expected_second += g_m - ALPHA * hessian @ g_m
    torch.testing.assert_close(grad_first, expected_first, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad_second, expected_second, rtol=1e-9, atol=1e-11)
    assert (grad_second - grad_first).abs().max() > 1e-4  # the dropped term is not trivially zero here


def test_metasgd_learns_one_set_of_step_sizes_per_inner_step():
    """Trained with two inner steps, Meta-SGD has two sets of step sizes; each step uses its own, both get their own
    meta-gradient (checked by finite differences), and steps beyond those trained reuse the last set."""
    policy = tiny_policy()
    step_sizes = {k: ALPHA * (0.5 + torch.rand(v.shape, generator=torch.Generator().manual_seed(len(k)),
                                               dtype=torch.float64))
                  for k, v in init_step_sizes(policy, ALPHA, num_steps=2).items()}
    assert set(step_sizes) == set(policy.shapes) | {f"step2/{name}" for name in policy.shapes}
    learner = MetaLearner(policy, tiny_params(policy), InnerConfig(algorithm="metasgd", step_size=ALPHA, num_steps=2,
                                                                   estimator="lvc"), OuterConfig(),
                          step_sizes=step_sizes)
    assert step_size_of_step(learner.step_sizes, 1)["log_std"] is learner.step_sizes["step2/log_std"]
    assert step_size_of_step(learner.step_sizes, 2)["log_std"] is learner.step_sizes["step2/log_std"]
    assert step_size_of_step(learner.step_sizes, 0)["log_std"] is learner.step_sizes["log_std"]
    supports, query = [tiny_episodes(seed=1), tiny_episodes(seed=2)], tiny_episodes(seed=11)
    by_hand = adapt(policy, learner.params, supports[0], step_size_of_step(learner.step_sizes, 0), estimator="lvc")
    by_hand = adapt(policy, by_hand, supports[1], step_size_of_step(learner.step_sizes, 1), estimator="lvc")
    for name, value in learner.adapt(supports).items():
        torch.testing.assert_close(value, by_hand[name], rtol=0, atol=0)

    tensors = learner.meta_parameters()
    like = {f"t{i}": t.detach() for i, t in enumerate(tensors)}

    def objective(vector: torch.Tensor) -> torch.Tensor:
        return learner.surrogate(supports, query, *learner._split(list(unflat(vector, like).values()))).loss.detach()

    analytic = flatten(torch.autograd.grad(learner.surrogate(supports, query).loss, tensors))
    torch.testing.assert_close(analytic, finite_difference_gradient(objective, flat(like)), rtol=1e-5, atol=1e-7)
    size = flat(learner.params).numel()
    first, second = analytic[size:2 * size], analytic[2 * size:]
    assert second.abs().max() > 1e-4 and not torch.allclose(first, second)
