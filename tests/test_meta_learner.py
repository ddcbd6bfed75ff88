"""The TRPO meta-update: exact Fisher-vector products, the trust region, the line search's accept/reject."""

from __future__ import annotations

import pytest
import torch
from helpers import flat, needs_cuda, tiny_episodes, tiny_params, tiny_policy, unflat
from reference import per_task_trpo_update

from meta_rl.adaptation import adapt, init_step_sizes, masked_task_mean
from meta_rl.config import ConfigError, InnerConfig, OuterConfig
from meta_rl.fisher import AnalyticMetaObjective
from meta_rl.meta_learner import MetaLearner, NonFiniteError
from meta_rl.outer.base import check_finite
from meta_rl.policy import GaussianMLPPolicy, gaussian_kl
from meta_rl.trpo import flatten


def make_learner(algorithm: str = "maml", estimator: str = "maml", **outer: object) -> MetaLearner:
    policy = tiny_policy()
    step_sizes = {k: v.double() for k, v in init_step_sizes(policy, 0.3).items()}
    return MetaLearner(policy, tiny_params(policy), InnerConfig(algorithm=algorithm, step_size=0.3,
                                                                estimator=estimator),
                       OuterConfig(**outer), step_sizes=step_sizes)


@pytest.mark.parametrize("estimator", ["maml", "lvc", "dice"])
@pytest.mark.parametrize(("algorithm", "inner_steps"), [("maml", 1), ("metasgd", 1), ("maml", 0)])
@pytest.mark.parametrize("fvp", ["analytic", "gauss_newton", "kl_hessian"])
def test_fisher_vector_product_equals_explicit_kl_hessian(algorithm: str, inner_steps: int, fvp: str,
                                                          estimator: str):
    """Also without adaptation (the pretrained/oracle baselines): one log-std shared by all tasks."""
    learner = make_learner(algorithm, estimator, fvp=fvp, cg_damping=0.0)
    assert_fisher_is_the_explicit_kl_hessian(learner, [tiny_episodes(seed=1)][:inner_steps], tiny_episodes(seed=11))


def assert_fisher_is_the_explicit_kl_hessian(learner: MetaLearner, support: list, query, kl_query=None) -> None:
    """The learner's Fisher-vector products equal the explicit Hessian of the mean KL (autograd, at the old
    meta-parameters) times three random vectors; the KL on ``kl_query`` (default ``query``)."""
    tensors = learner.meta_parameters()
    like = {f"t{i}": t.detach() for i, t in enumerate(tensors)}
    kl_query = query if kl_query is None else kl_query
    before = learner.surrogate(support, kl_query)

    def kl(vector: torch.Tensor) -> torch.Tensor:
        candidate = learner._split(list(unflat(vector, like).values()))
        return learner.surrogate(support, kl_query, *candidate, old=before).kl

    hessian = torch.autograd.functional.hessian(kl, flat(like))
    product = learner.algorithm.fisher_vector_product(learner.surrogate(support, query), query, tensors, support)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        v = torch.randn(hessian.shape[0], generator=g, dtype=torch.float64)
        torch.testing.assert_close(product(v), hessian @ v, rtol=1e-8, atol=1e-10)


def test_damping_is_added():
    learner = make_learner(cg_damping=0.5)
    support, query = tiny_episodes(seed=1), tiny_episodes(seed=11)
    tensors = learner.meta_parameters()
    before = learner.surrogate([support], query)
    v = torch.ones(sum(t.numel() for t in tensors), dtype=torch.float64)
    damped = learner.algorithm.fisher_vector_product(before, query, tensors, [support])(v)
    learner.outer.cg_damping = 0.0
    plain = learner.algorithm.fisher_vector_product(learner.surrogate([support], query), query, tensors, [support])(v)
    torch.testing.assert_close(damped - plain, 0.5 * v)


@pytest.mark.parametrize("algorithm", ["maml", "metasgd"])
def test_trpo_step_improves_the_surrogate_within_max_kl(algorithm: str):
    max_kl = 1e-3
    learner = make_learner(algorithm, max_kl=max_kl)
    support, query = tiny_episodes(seed=1), tiny_episodes(seed=11)
    old = flatten([t.detach() for t in learner.meta_parameters()]).clone()
    before = learner.surrogate([support], query)
    stats = learner.update([support], query)
    assert stats["trpo/accepted"] == 1.0
    new = flatten([t.detach() for t in learner.meta_parameters()])
    assert not torch.equal(old, new)
    after = learner.surrogate([support], query, old=before)  # KL against the pre-update adapted policy
    assert after.kl.item() <= max_kl * (1 + 1e-9)
    assert after.kl.item() > 0.05 * max_kl  # it took a real step, not a vanishing one
    assert after.loss.item() < before.loss.item()
    assert stats["losses/surrogate_after"] == pytest.approx(after.loss.item(), rel=1e-9)


def test_line_search_rejects_and_keeps_the_old_parameters():
    """With all query advantages zero the surrogate cannot improve: every candidate is rejected."""
    learner = make_learner()
    support, query = tiny_episodes(seed=1), tiny_episodes(seed=11)
    query.advantages = torch.zeros_like(query.advantages)
    old = [t.detach().clone() for t in learner.meta_parameters()]
    stats = learner.update([support], query)
    assert stats["trpo/accepted"] == 0.0
    for before, after in zip(old, learner.meta_parameters(), strict=True):
        assert torch.equal(before, after.detach())


def test_adam_meta_update_moves_against_the_meta_gradient():
    learner = make_learner("metasgd", optimizer="adam", lr=1e-3)
    support, query = tiny_episodes(seed=1), tiny_episodes(seed=11)
    tensors = learner.meta_parameters()
    grad = flatten(torch.autograd.grad(learner.surrogate([support], query).loss, tensors))
    old = flatten([t.detach() for t in tensors]).clone()
    learner.update([support], query)
    delta = flatten([t.detach() for t in tensors]) - old
    # Adam's first step is -lr * sign(grad) elementwise (up to eps).
    nonzero = grad.abs() > 1e-6
    torch.testing.assert_close(delta[nonzero], -1e-3 * torch.sign(grad[nonzero]), rtol=1e-3, atol=1e-9)


def test_nan_in_the_loss_is_reported_with_its_place():
    learner = make_learner()
    support, query = tiny_episodes(seed=1), tiny_episodes(seed=11)
    query.advantages = query.advantages.clone()
    query.advantages[0, 0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match="outer surrogate loss"):
        learner.update([support], query)


CUDA_VARIANTS = [  # (algorithm, inner steps, estimator, outer settings): each outer path and inner estimator once
    ("metasgd", 1, "maml", {}),
    ("maml", 1, "lvc", {}),
    ("maml", 1, "dice", {"fvp": "gauss_newton"}),
    ("maml", 1, "lvc", {"fvp": "kl_hessian"}),
    ("maml", 1, "lvc", {"fvp_subsample": 0.5}),
    ("maml", 1, "lvc", {"fvp_subsample": 0.5, "fvp_subsample_by": "episodes"}),
    ("maml", 0, "lvc", {}),
    ("maml", 2, "lvc", {"fvp": "kl_hessian"}),
    ("metasgd", 1, "lvc", {"optimizer": "adam"}),
    ("maml", 1, "lvc", {"optimizer": "promp"}),
]


def test_check_finite_names_the_place_whichever_tensor_is_bad():
    """One host sync for all the tensors, still naming where: a NaN or inf in any of them raises."""
    finite = [torch.zeros(3), torch.ones(2, 2)]
    check_finite("nowhere", *finite)
    check_finite("nothing")
    for bad in (float("nan"), float("inf")):
        with pytest.raises(NonFiniteError, match="in the meta-gradient"):
            check_finite("the meta-gradient", *finite, torch.tensor([1.0, bad]))


def assert_updates_agree(algorithm: str, inner_steps: int, estimator: str, outer: dict, dtype: torch.dtype,
                         device: str, task_order: list[int] | None = None) -> None:
    """Two updates of one learner here and of its copy on ``device`` (given the episodes' tasks in ``task_order``)
    give the same meta-parameters and statistics to the dtype's tolerance.

    Conjugate gradient runs 3 steps: 10 float32 steps on this tiny policy's ill-conditioned Fisher amplify a
    change in summation order 10-300x past the tolerance (:func:`test_update_is_robust_to_summation_order`)."""
    inner = InnerConfig(algorithm=algorithm, step_size=0.3, estimator=estimator, num_steps=inner_steps)
    policy = tiny_policy()
    step_sizes = {k: v.to(dtype) for k, v in init_step_sizes(policy, 0.3).items()}
    params = {k: v.to(dtype) for k, v in tiny_params(policy).items()}
    here = MetaLearner(policy, params, inner, OuterConfig(**{"cg_iters": 3, **outer}), step_sizes=step_sizes)
    there = here.copy(device)
    order = torch.tensor(task_order) if task_order is not None else slice(None)
    tolerance = {"rtol": 1e-6, "atol": 1e-8} if dtype == torch.float64 else {"rtol": 2e-4, "atol": 1e-5}
    for seed in (1, 2):
        supports = [tiny_episodes(num_tasks=4, seed=seed + 10 * k).to(dtype) for k in range(inner_steps)]
        query = tiny_episodes(num_tasks=4, seed=seed + 100).to(dtype)
        stats = here.update(supports, query)
        their_stats = there.update([s.select_tasks(order).to(device) for s in supports],
                                   query.select_tasks(order).to(device))
        assert their_stats.keys() == stats.keys()
        for key, value in stats.items():
            assert their_stats[key] == pytest.approx(value, rel=tolerance["rtol"] * 10, abs=tolerance["atol"] * 10), key
    if outer.get("optimizer", "trpo") == "trpo":
        assert stats["trpo/accepted"] == 1.0  # a rejected step would leave both sides equal trivially
    for a, b in zip(here.meta_parameters(), there.meta_parameters(), strict=True):
        assert b.device.type == torch.device(device).type and b.dtype == dtype
        torch.testing.assert_close(a.detach(), b.detach().cpu(), **tolerance)


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("algorithm", "inner_steps", "estimator", "outer"), CUDA_VARIANTS)
def test_update_on_cuda_matches_cpu(algorithm: str, inner_steps: int, estimator: str, outer: dict,
                                    dtype: torch.dtype):
    """Two updates on CUDA give the CPU's meta-parameters and statistics (float32: what real runs use)."""
    assert_updates_agree(algorithm, inner_steps, estimator, outer, dtype, "cuda")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize(("algorithm", "inner_steps", "estimator", "outer"), CUDA_VARIANTS)
def test_update_is_robust_to_summation_order(algorithm: str, inner_steps: int, estimator: str, outer: dict,
                                             dtype: torch.dtype):
    """A GPU sums in another order: the same update with the tasks reordered (the same maths; pairs swapped, so a
    half-of-the-tasks Fisher keeps its tasks) must agree to the CUDA test's tolerance, or that test would fail on
    rounding alone."""
    assert_updates_agree(algorithm, inner_steps, estimator, outer, dtype, "cpu", task_order=[1, 0, 3, 2])


@pytest.mark.parametrize("fvp", ["analytic", "gauss_newton", "kl_hessian"])
def test_subsampled_fisher_is_the_exact_fisher_of_the_first_tasks(fvp: str):
    """fvp_subsample=0.5 of 4 tasks: the products equal the exact products of a learner that only sees tasks 0-1."""
    subsampling, exact = make_learner(fvp=fvp, fvp_subsample=0.5), make_learner(fvp=fvp)
    support, query = tiny_episodes(num_tasks=4, seed=1), tiny_episodes(num_tasks=4, seed=2)
    tensors = subsampling.meta_parameters()
    subsampled = subsampling.algorithm.fisher_vector_product(subsampling.surrogate([support], query), query, tensors,
                                                    [support])
    first_two = [support.select_tasks(slice(0, 2))], query.select_tasks(slice(0, 2))
    reference = exact.algorithm.fisher_vector_product(exact.surrogate(*first_two), first_two[1],
                                                      exact.meta_parameters(), first_two[0])
    vector = torch.linspace(-1.0, 1.0, flatten(tensors).numel(), dtype=torch.float64)
    torch.testing.assert_close(subsampled(vector), reference(vector))
    everything = exact.algorithm.fisher_vector_product(exact.surrogate([support], query), query,
                                                       exact.meta_parameters(), [support])
    assert not torch.allclose(everything(vector), reference(vector))  # the subset really differs


@pytest.mark.parametrize("algorithm", ["maml", "metasgd"])
@pytest.mark.parametrize("fvp", ["gauss_newton", "kl_hessian"])
def test_episode_subsampled_fisher_is_the_kl_hessian_on_the_first_query_episodes(algorithm: str, fvp: str):
    """fvp_subsample_by=episodes with autograd products: the inner step on every support episode, the KL on the
    first half of every task's query episodes."""
    learner = make_learner(algorithm, fvp=fvp, cg_damping=0.0, fvp_subsample=0.5, fvp_subsample_by="episodes")
    support, query = tiny_episodes(num_eps=4, seed=1), tiny_episodes(num_eps=4, seed=11)
    assert_fisher_is_the_explicit_kl_hessian(learner, [support], query, kl_query=query.select_episodes(slice(0, 2)))


@pytest.mark.parametrize("algorithm", ["maml", "metasgd"])
def test_episode_subsampled_analytic_fisher_takes_the_inner_hessian_from_the_first_episodes(algorithm: str):
    """fvp_subsample_by=episodes with analytic products: the Hessian of the KL on the first half of every task's
    query episodes, through adapted parameters ``theta' = theta'_0 + (I - alpha H_first)(theta - theta_0)
    - (alpha - alpha_0) g``: the step and its gradient ``g`` from every support episode, the inner loss's Hessian
    from the first half (what the products estimate it on)."""
    learner = make_learner(algorithm, cg_damping=0.0, fvp_subsample=0.5, fvp_subsample_by="episodes")
    policy = learner.policy
    support, query = tiny_episodes(num_eps=4, seed=1), tiny_episodes(num_eps=4, seed=11)
    first_support, first_query = support.select_episodes(slice(0, 2)), query.select_episodes(slice(0, 2))
    tensors = learner.meta_parameters()
    like = {f"t{i}": t.detach() for i, t in enumerate(tensors)}
    params0, step0 = learner._split([t.detach() for t in tensors])

    def gradient(params, episodes):  # every task's inner-loss gradient: theta - adapt(theta, step 1)
        return {k: v - adapt(policy, params, episodes, 1.0)[k] for k, v in params.items()}

    adapted0, full_gradient0 = adapt(policy, params0, support, step0), gradient(params0, support)
    first_gradient0 = gradient(params0, first_support)
    old_mean, old_log_std = policy.forward(first_query.task_major("observations"), adapted0)

    def kl(vector: torch.Tensor) -> torch.Tensor:
        params, step = learner._split(list(unflat(vector, like).values()))
        first_gradient = gradient(params, first_support)
        adapted = {}
        for k in params:
            rate0 = step0[k] if isinstance(step0, dict) else step0
            value = adapted0[k] + (params[k] - params0[k]) - rate0 * (first_gradient[k] - first_gradient0[k])
            if isinstance(step, dict):
                value = value - (step[k] - step0[k]) * full_gradient0[k]
            adapted[k] = value
        mean, log_std = policy.forward(first_query.task_major("observations"), adapted)
        return masked_task_mean(gaussian_kl(old_mean, old_log_std, mean, log_std),
                                first_query.task_major("mask")).mean()

    hessian = torch.autograd.functional.hessian(kl, flat(like))
    product = learner.algorithm.fisher_vector_product(learner.surrogate([support], query), query, tensors, [support])
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        v = torch.randn(hessian.shape[0], generator=g, dtype=torch.float64)
        torch.testing.assert_close(product(v), hessian @ v, rtol=1e-8, atol=1e-10)
    exact = make_learner(algorithm, cg_damping=0.0)
    exact_product = exact.algorithm.fisher_vector_product(exact.surrogate([support], query), query, tensors, [support])
    assert not torch.allclose(exact_product(v), product(v))  # the subset really differs
    with pytest.raises(RuntimeError, match="products only"):
        product.meta_gradient()


def test_episode_subsampled_update_steps_within_the_trust_region():
    learner = make_learner("metasgd", fvp_subsample=0.5, fvp_subsample_by="episodes")
    stats = learner.update([tiny_episodes(num_eps=4, seed=1)], tiny_episodes(num_eps=4, seed=11))
    assert stats["trpo/accepted"] == 1.0 and 0.0 < stats["losses/kl"] <= learner.outer.max_kl


@pytest.mark.parametrize("optimizer", ["trpo", "adam"])
def test_max_task_kl_is_the_largest_task_kl_of_the_step(optimizer: str):
    """``max_task_kl`` is the largest per-task KL between the adapted policies before and after the step, each
    computed on its own; their mean is the logged ``kl``."""
    learner = make_learner(optimizer=optimizer, lr=0.05)
    support, query = tiny_episodes(num_tasks=3, seed=1), tiny_episodes(num_tasks=3, seed=2)
    with torch.no_grad():
        old_mean, old_log_std = learner.policy.forward(query.task_major("observations"), learner.adapt([support]))
    stats = learner.update([support], query)
    with torch.no_grad():
        mean, log_std = learner.policy.forward(query.task_major("observations"), learner.adapt([support]))
    task_kls = [masked_task_mean(gaussian_kl(old_mean[m:m + 1], old_log_std[m:m + 1], mean[m:m + 1],
                                             log_std[m:m + 1]), query.task_major("mask")[m:m + 1]).item()
                for m in range(3)]
    assert min(task_kls) > 0.0 and max(task_kls) > min(task_kls) * 1.01  # the tasks moved, and unequally
    assert stats["losses/max_task_kl"] == pytest.approx(max(task_kls), rel=1e-9)
    assert stats["losses/kl"] == pytest.approx(sum(task_kls) / 3, rel=1e-9)


def test_fisher_subset_keeps_the_first_tasks_or_episodes():
    query = tiny_episodes(num_tasks=4, num_eps=3)
    assert make_learner(fvp_subsample=0.5).algorithm.fisher_subset(query) == ("tasks", 2)
    by_episodes = {"fvp_subsample_by": "episodes"}
    assert make_learner(fvp_subsample=0.5, **by_episodes).algorithm.fisher_subset(query) == ("episodes", 2)
    assert make_learner(fvp_subsample=0.1, **by_episodes).algorithm.fisher_subset(query) == ("episodes", 1)
    assert make_learner(fvp_subsample=0.9, **by_episodes).algorithm.fisher_subset(query) is None


@pytest.mark.parametrize("estimator", ["maml", "lvc", "dice"])
@pytest.mark.parametrize("algorithm", ["maml", "metasgd"])
@pytest.mark.parametrize("fvp", ["analytic", "gauss_newton", "kl_hessian"])
def test_batched_update_takes_the_per_task_reference_step(algorithm: str, fvp: str, estimator: str):
    """The task-batched TRPO update moves the meta-parameters exactly as the plain loop over tasks does."""
    batched, reference = make_learner(algorithm, estimator, fvp=fvp), make_learner(algorithm, estimator)
    support, query = tiny_episodes(num_tasks=3, seed=1), tiny_episodes(num_tasks=3, seed=2)
    start = flatten([t.detach().clone() for t in batched.meta_parameters()])
    stats = batched.update([support], query)
    per_task_trpo_update(reference, support, query)
    moved = flatten([t.detach() for t in batched.meta_parameters()])
    assert stats["trpo/accepted"] == 1.0 and (moved - start).norm() > 1e-3  # a real step was taken
    torch.testing.assert_close(moved, flatten([t.detach() for t in reference.meta_parameters()]),
                               rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("estimator", ["maml", "lvc", "dice"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize(("algorithm", "inner_steps", "first_order"),
                         [("maml", 1, False), ("metasgd", 1, False), ("maml", 1, True), ("metasgd", 1, True),
                          ("metasgd", 0, False)])
def test_analytic_fisher_on_a_deeper_policy_equals_explicit_kl_hessian(activation, algorithm, inner_steps,
                                                                       first_order, estimator):
    """Two hidden layers (so the R-operators' layer-to-layer terms count), both activations, first order too."""
    policy = GaussianMLPPolicy(2, 2, (5, 4), activation, init_std=0.8)
    step_sizes = {k: 0.3 + 0.05 * torch.rand(v.shape, dtype=torch.float64,
                                              generator=torch.Generator().manual_seed(5))
                  for k, v in init_step_sizes(policy, 0.3).items()}
    learner = MetaLearner(policy, tiny_params(policy, seed=3),
                          InnerConfig(algorithm=algorithm, step_size=0.3, first_order=first_order,
                                      estimator=estimator),
                          OuterConfig(fvp="analytic", cg_damping=0.0), step_sizes=step_sizes)
    support = [tiny_episodes(num_tasks=2, seed=4)][:inner_steps]
    assert_fisher_is_the_explicit_kl_hessian(learner, support, tiny_episodes(num_tasks=2, seed=12))


@pytest.mark.parametrize("estimator", ["maml", "lvc", "dice"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize(("algorithm", "inner_steps", "first_order"),
                         [("maml", 1, False), ("metasgd", 1, False), ("metasgd", 1, True), ("maml", 0, False)])
def test_analytic_meta_gradient_equals_autograd(activation, algorithm, inner_steps, first_order, estimator):
    """The hand-written meta-gradient equals autograd's through the inner step (behaviour log-probs != current)."""
    policy = GaussianMLPPolicy(2, 2, (5, 4), activation, init_std=0.8)
    learner = MetaLearner(policy, tiny_params(policy, seed=3),
                          InnerConfig(algorithm=algorithm, step_size=0.3, first_order=first_order,
                                      estimator=estimator),
                          OuterConfig(fvp="analytic"),
                          step_sizes={k: v.double() for k, v in init_step_sizes(policy, 0.3).items()})
    support = [tiny_episodes(num_tasks=2, seed=4)][:inner_steps]
    query = tiny_episodes(num_tasks=2, seed=12)
    tensors = learner.meta_parameters()
    expected = flatten(torch.autograd.grad(learner.surrogate(support, query).loss, tensors, allow_unused=True,
                                           materialize_grads=True))
    objective = AnalyticMetaObjective(policy, learner.params, learner.step_size(), (support or [None])[0], query,
                               first_order, damping=0.0, estimator=estimator)
    torch.testing.assert_close(objective.meta_gradient(), expected, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize(("algorithm", "inner_steps", "first_order"),
                         [("maml", 1, False), ("metasgd", 1, False), ("maml", 1, True), ("maml", 0, False)])
def test_analytic_surrogate_equals_the_autograd_surrogate(algorithm, inner_steps, first_order):
    """The TRPO update takes its "before" surrogate (loss, adapted query means and log-stds, the line search's
    reference) from the analytic objective's forward pass: it must be what :meth:`MetaLearner.surrogate` gives."""
    policy = GaussianMLPPolicy(2, 2, (5, 4), "relu", init_std=0.8)
    learner = MetaLearner(policy, tiny_params(policy, seed=3),
                          InnerConfig(algorithm=algorithm, step_size=0.3, first_order=first_order),
                          OuterConfig(fvp="analytic"),
                          step_sizes={k: v.double() for k, v in init_step_sizes(policy, 0.3).items()})
    support = [tiny_episodes(num_tasks=2, seed=4)][:inner_steps]
    query = tiny_episodes(num_tasks=2, num_eps=3, seed=12)  # T=4 != N=3: a wrong reshape cannot pass
    with torch.no_grad():
        expected = learner.surrogate(support, query)
    result = learner.algorithm.analytic_surrogate(learner.algorithm.analytic_objective(support, query), query)
    for name in ("loss", "kl", "task_kl", "old_mean", "old_log_std", "mean", "log_std"):
        torch.testing.assert_close(getattr(result, name), getattr(expected, name), rtol=1e-10, atol=1e-12,
                                   msg=lambda text, name=name: f"{name}: {text}")
    assert result.loss.item() != 0.0 and result.mean.shape == (2, 4, 3, 2)
    with pytest.raises(RuntimeError, match="curvature_episodes"):
        learner.algorithm.analytic_objective(support, query, curvature_episodes=1).surrogate()


@pytest.mark.parametrize(("algorithm", "optimizer"), [("maml", "trpo"), ("metasgd", "trpo"), ("metasgd", "adam")])
def test_copy_updates_like_the_original_and_leaves_it_alone(algorithm: str, optimizer: str):
    learner = make_learner(algorithm, optimizer=optimizer)
    support, query = tiny_episodes(seed=1), tiny_episodes(seed=11)
    learner.update([support], query)  # so Adam has state to copy
    start = flatten([t.detach() for t in learner.meta_parameters()])
    twin = learner.copy()
    twin_stats = twin.update([support], query)
    assert torch.equal(flatten([t.detach() for t in learner.meta_parameters()]), start), "the original moved"
    assert twin_stats == learner.update([support], query)
    torch.testing.assert_close(flatten(twin.meta_parameters()), flatten(learner.meta_parameters()), rtol=0, atol=0)


def test_copy_changes_only_the_named_outer_settings():
    learner = make_learner(max_kl=0.02)
    twin = learner.copy(fvp_subsample=0.5, cg_iters=3)
    assert (twin.outer.fvp_subsample, twin.outer.cg_iters, twin.outer.max_kl) == (0.5, 3, 0.02)
    assert (learner.outer.fvp_subsample, learner.outer.cg_iters) == (1.0, 10)
    with pytest.raises(ConfigError, match=r"outer\.no_such_setting"):
        learner.copy(no_such_setting=1)
    with pytest.raises(ConfigError, match=r"outer\.fvp_subsample: 1\.5 is not allowed"):
        learner.copy(fvp_subsample=1.5)
    with pytest.raises(ConfigError, match=r"outer\.optimizer: 'lbfgs' is not allowed"):
        learner.copy(optimizer="lbfgs")
