"""TRPO on the meta-objective: conjugate gradient on the KL between the old and new adapted policies, then a
backtracking line search (the MAML paper's outer loop).

The KL's Hessian (TRPO's metric) is taken exactly, three ways (``outer.fvp``): hand-written R-operators
(:mod:`meta_rl.fisher`, the default), autograd's Gauss-Newton form, or double backward; ``outer.fvp_subsample``
estimates it on part of the meta-batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from meta_rl.episodes import Episodes
from meta_rl.fisher import AnalyticMetaObjective
from meta_rl.outer.base import OuterAlgorithm, SurrogateResult, check_finite, register
from meta_rl.trpo import conjugate_gradient, flatten, trust_region_step, unflatten

if TYPE_CHECKING:
    from meta_rl.meta_learner import MetaLearner


class TRPO(OuterAlgorithm):
    """One natural-gradient step within ``outer.max_kl``, accepted by a line search on the surrogate."""

    def update(self, supports: list[Episodes], query: Episodes) -> dict[str, float]:
        """The step; logs whether the line search accepted it, its backtracks and the fraction taken."""
        learner, outer = self.learner, self.learner.outer
        tensors = learner.meta_parameters()
        if outer.fvp == "analytic":  # values only: the gradient and the products are written out by hand
            objective = self.analytic_objective(supports, query)
            before = self.analytic_surrogate(objective, query)
            check_finite("the outer surrogate loss", before.loss)
            gradient = objective.meta_gradient()
            subsampled = self.fisher_subset(query) is not None
            fisher_vector_product = self.fisher_vector_product(before, query, tensors, supports) if subsampled \
                else objective
        else:
            before = learner.surrogate(supports, query)
            check_finite("the outer surrogate loss", before.loss)
            gradient = flatten(torch.autograd.grad(before.loss, tensors, retain_graph=True))
            fisher_vector_product = self.fisher_vector_product(before, query, tensors, supports)
        check_finite("the meta-gradient", gradient)
        step_direction, fisher_step = conjugate_gradient(fisher_vector_product, gradient, outer.cg_iters)
        full_step = trust_region_step(step_direction, fisher_step, outer.max_kl)
        check_finite("the TRPO step", full_step)
        fisher_vector_product = objective = None  # free the graphs and caches before the line search

        old_flat = flatten([t.detach() for t in tensors])
        fraction = 1.0
        after = None
        backtracks = 0
        loss_before = before.loss.item()
        with torch.no_grad():
            for backtracks in range(outer.line_search_steps):  # noqa: B007 (logged below)
                candidate = unflatten(old_flat - fraction * full_step, tensors)
                result = learner.surrogate(supports, query, *learner._split(candidate), old=before)
                loss, kl = torch.stack([result.loss, result.kl]).tolist()  # one host sync per trial
                if math.isfinite(loss) and loss < loss_before and kl <= outer.max_kl:
                    after = result
                    for tensor, value in zip(tensors, candidate, strict=True):
                        tensor.copy_(value)
                    break
                fraction *= outer.line_search_backtrack_ratio
        check_finite("the meta-parameters after the update", *tensors)
        accepted = after is not None
        if after is None:  # rejected: the parameters stay, so the surrogate does and the step's KL is 0
            after = SurrogateResult(before.loss, before.kl * 0.0, before.task_kl * 0.0, before.old_mean,
                                    before.old_log_std, before.mean, before.log_std)
        return {
            **self.outer_stats(before, after, gradient.norm().item()),
            "trpo/accepted": float(accepted),
            "trpo/backtracks": float(backtracks if accepted else outer.line_search_steps),
            "trpo/step_fraction": fraction if accepted else 0.0,
        }

    def analytic_objective(self, supports: list[Episodes], query: Episodes,
                           curvature_episodes: int | None = None) -> AnalyticMetaObjective:
        """The hand-written meta-gradient and Fisher-vector products (:mod:`meta_rl.fisher`) for these episodes."""
        learner = self.learner
        if len(supports) > 1:
            raise ValueError(f"outer.fvp='analytic' supports at most one inner step, got {len(supports)}")
        return AnalyticMetaObjective(learner.policy, learner.params, learner.step_size(),
                                     supports[0] if supports else None, query, learner.inner.first_order,
                                     learner.outer.cg_damping, curvature_episodes, learner.inner.estimator)

    @staticmethod
    def analytic_surrogate(objective: AnalyticMetaObjective, query: Episodes) -> SurrogateResult:
        """:meth:`MetaLearner.surrogate` at the current meta-parameters (KL 0, no graph), from the analytic
        objective's own forward pass instead of a second adaptation and query pass (equal to rounding; the tests
        hold it so)."""
        loss, mean, log_std = objective.surrogate()
        num_tasks, horizon, num_eps = query.num_tasks, query.rewards.shape[0], query.episodes_per_task
        mean = mean.view(num_tasks, horizon, num_eps, mean.shape[-1])
        query_log_std = log_std.view(num_tasks, 1, 1, log_std.shape[-1]) if log_std.dim() == 2 else log_std
        task_kl = torch.zeros(num_tasks, dtype=loss.dtype, device=loss.device)
        return SurrogateResult(loss, task_kl.mean(), task_kl, mean, query_log_std, mean, log_std)

    def fisher_subset(self, query: Episodes) -> tuple[str, int] | None:
        """What the Fisher-vector products keep with ``outer.fvp_subsample < 1``: ``("tasks", k)``, the first k
        tasks, or ``("episodes", k)``, the first k episodes of every task (``outer.fvp_subsample_by``), with
        ``k = ceil(fvp_subsample * M or N)``; None when that is everything. The meta-batch's tasks and each task's
        episodes are drawn i.i.d., so the first ones are a random subset."""
        outer = self.learner.outer
        total = query.num_tasks if outer.fvp_subsample_by == "tasks" else query.episodes_per_task
        keep = min(total, max(1, math.ceil(outer.fvp_subsample * total - 1e-9)))
        return None if keep == total else (outer.fvp_subsample_by, keep)

    def fisher_vector_product(
        self, result: SurrogateResult, query: Episodes, tensors: list[Tensor], supports: list[Episodes]
    ) -> Callable[[Tensor], Tensor]:
        """``v -> (H_KL + damping I) v``: the Hessian of the mean KL w.r.t. the meta-parameters, at the old ones.

        ``gauss_newton``: at the old parameters the KL's gradient w.r.t. the policy outputs is zero,
        so its Hessian is exactly ``J^T D J`` with ``J`` the Jacobian of the adapted policy's outputs (query
        means and log-stds) w.r.t. the meta-parameters, through the inner step, and ``D`` the Gaussian KL's
        diagonal Hessian (``1/sigma^2`` per mean, 2 per log-std). ``J v`` comes from a backward pass through
        the graph of ``J^T u`` (built once, linear in ``u``), ``J^T w`` from a backward pass of the outputs.
        ``kl_hessian``: double backward through the KL gradient (third-order through the inner step; slower).
        ``analytic`` (default): the same ``J^T D J`` by hand-written R-operators (:mod:`meta_rl.fisher`).
        ``supports`` are the inner step's episodes. With ``outer.fvp_subsample < 1`` only some count
        (:meth:`fisher_subset`): a task subset is re-adapted on its own; an episode subset keeps the inner step
        on every episode and takes the KL on the subset's query episodes (``analytic`` also estimates the inner
        step's Hessian on the subset's support episodes).
        """
        learner = self.learner
        damping = learner.outer.cg_damping
        subset = self.fisher_subset(query)
        if subset is not None and subset[0] == "tasks":
            tasks = slice(0, subset[1])
            supports, query = [s.select_tasks(tasks) for s in supports], query.select_tasks(tasks)
        if learner.outer.fvp == "analytic":
            curvature_episodes = subset[1] if subset is not None and subset[0] == "episodes" else None
            return self.analytic_objective(supports, query, curvature_episodes)
        if subset is not None:  # each product then only walks the subset's graph (and the full inner step's)
            if subset[0] == "episodes":
                query = query.select_episodes(slice(0, subset[1]))
            result = learner.surrogate(supports, query)
        if learner.outer.fvp == "kl_hessian":
            kl_grad = flatten(torch.autograd.grad(result.kl, tensors, create_graph=True))

            def kl_hessian_product(vector: Tensor) -> Tensor:
                product = torch.autograd.grad(kl_grad @ vector, tensors, retain_graph=True)
                return flatten(product) + damping * vector

            return kl_hessian_product

        mask = query.task_major("mask")  # [M, T, N]
        num_tasks = mask.shape[0]
        weights = mask / (mask.sum(dim=(1, 2), keepdim=True).clamp_min(1.0) * num_tasks)
        log_std = result.log_std.detach()  # [M, A] adapted, or [A] when there is no inner step
        inverse_variance = torch.exp(-2.0 * log_std).view(-1, 1, 1, log_std.shape[-1])
        mean_curvature = weights.unsqueeze(-1) * inverse_variance
        log_std_curvature = 2.0 / num_tasks if log_std.dim() == 2 else 2.0  # a shared log-std serves all M tasks
        outputs = [result.mean, result.log_std]
        dummies = [torch.zeros_like(o, requires_grad=True) for o in outputs]
        vjp = torch.autograd.grad(outputs, tensors, grad_outputs=dummies, create_graph=True, retain_graph=True)

        def gauss_newton_product(vector: Tensor) -> Tensor:
            jvp_mean, jvp_log_std = torch.autograd.grad(
                vjp, dummies, grad_outputs=unflatten(vector, tensors), retain_graph=True
            )
            product = torch.autograd.grad(
                outputs, tensors, grad_outputs=[jvp_mean * mean_curvature, jvp_log_std * log_std_curvature],
                retain_graph=True,
            )
            return flatten(product) + damping * vector

        return gauss_newton_product


@register("trpo", "conjugate gradient on the KL between the old and new adapted policies plus a line search")
def make_trpo(learner: MetaLearner) -> TRPO:
    """TRPO for ``learner``."""
    return TRPO(learner)
