"""The outer loop: the meta-objective and its optimisation (TRPO-style or a torch optimizer).

The meta-parameters are the policy's initial parameters and, for Meta-SGD, the per-parameter step sizes. The
meta-objective is the PPO/TRPO surrogate of the query episodes under the adapted policies, differentiated
through the inner step(s).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from meta_rl.adaptation import StepSize, adapt, init_step_sizes, masked_task_mean
from meta_rl.config import InnerConfig, OuterConfig, replace_validated
from meta_rl.episodes import Episodes
from meta_rl.fisher import AnalyticMetaObjective
from meta_rl.policy import GaussianMLPPolicy, Params, gaussian_kl, gaussian_log_prob
from meta_rl.trpo import conjugate_gradient, flatten, trust_region_step, unflatten

STEP_SIZE_PREFIX = "step_size/"


class NonFiniteError(FloatingPointError):
    """A loss, gradient or parameter became NaN or infinite; the message says where."""


@dataclass
class SurrogateResult:
    """The meta-objective at some meta-parameters."""

    loss: Tensor  # scalar: mean over tasks of -mean(ratio * advantage)
    kl: Tensor  # scalar: mean over tasks of KL(old adapted policy || adapted policy)
    task_kl: Tensor  # [M]: each task's mean KL (``kl`` is their mean); the trust region bounds only the mean
    old_mean: Tensor  # detached adapted-policy mean on the query observations, [M, T, N, A]
    old_log_std: Tensor  # detached adapted-policy log-std, [M, 1, 1, A]
    mean: Tensor  # the adapted-policy mean with its graph back to the meta-parameters, [M, T, N, A]
    log_std: Tensor  # the adapted log-std with its graph, [M, A]


def check_finite(where: str, *tensors: Tensor) -> None:
    """Raise :class:`NonFiniteError` naming ``where`` if any tensor holds NaN or inf."""
    for tensor in tensors:
        if not bool(torch.isfinite(tensor).all()):
            raise NonFiniteError(f"non-finite value (NaN or inf) in {where}")


class MetaLearner:
    """Holds the meta-parameters and performs one meta-update from support and query episodes.

    :param policy: the policy architecture.
    :param params: initial policy parameters (copied to ``device`` as leaf tensors).
    :param inner: inner-loop settings (algorithm, step size, first order).
    :param outer: outer-loop settings (optimizer and its hyper-parameters).
    :param device: where the update runs.
    :param step_sizes: Meta-SGD step sizes to start from (default: all ``inner.step_size``).
    """

    def __init__(
        self,
        policy: GaussianMLPPolicy,
        params: Params,
        inner: InnerConfig,
        outer: OuterConfig,
        device: torch.device | str = "cpu",
        step_sizes: Params | None = None,
    ) -> None:
        self.policy = policy
        self.inner = inner
        self.outer = outer
        self.device = torch.device(device)
        self.params = {k: v.detach().to(self.device).clone().requires_grad_(True) for k, v in params.items()}
        self.step_sizes: Params | None = None
        if inner.algorithm == "metasgd":
            start = step_sizes if step_sizes is not None else init_step_sizes(policy, inner.step_size)
            self.step_sizes = {
                k: v.detach().to(self.device).clone().requires_grad_(True) for k, v in start.items()
            }
        self.optimizer: torch.optim.Optimizer | None = None
        if outer.optimizer == "adam":
            self.optimizer = torch.optim.Adam(self.meta_parameters(), lr=outer.lr)
        elif outer.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(self.meta_parameters(), lr=outer.lr)

    def copy(self, device: torch.device | str | None = None, **outer_changes: object) -> MetaLearner:
        """An independent learner at the same meta-parameters and optimizer state, with some ``outer`` settings
        changed (e.g. ``fvp_subsample=0.25``): to compare update variants on the same episodes. A bad setting
        raises :class:`~meta_rl.config.ConfigError`, as it would in a config."""
        outer = replace_validated(self.outer, "outer.", **outer_changes)
        twin = MetaLearner(self.policy, self.params, self.inner, outer, device or self.device, self.step_sizes)
        if twin.optimizer is not None and self.optimizer is not None:
            # Deep-copied: loading keeps the very tensors of the state (exp_avg...), which the twin would then
            # update in place under the original's feet.
            twin.optimizer.load_state_dict(copy.deepcopy(self.optimizer.state_dict()))
        return twin

    # --- meta-parameters -------------------------------------------------------------------------------
    def meta_parameters(self) -> list[Tensor]:
        """All tensors the outer loop updates: policy parameters, then Meta-SGD step sizes."""
        tensors = list(self.params.values())
        if self.step_sizes is not None:
            tensors += list(self.step_sizes.values())
        return tensors

    def step_size(self) -> StepSize:
        """The inner step size: MAML's scalar or Meta-SGD's per-parameter tensors."""
        return self.step_sizes if self.step_sizes is not None else self.inner.step_size

    def _split(self, tensors: list[Tensor]) -> tuple[Params, StepSize]:
        """Inverse of :meth:`meta_parameters` for candidate values."""
        names = list(self.params)
        params = dict(zip(names, tensors[: len(names)], strict=True))
        if self.step_sizes is None:
            return params, self.inner.step_size
        return params, dict(zip(self.step_sizes, tensors[len(names) :], strict=True))

    # --- adaptation and objective ----------------------------------------------------------------------
    def adapt(self, supports: list[Episodes], params: Params | None = None, step_size: StepSize | None = None,
              ) -> Params:
        """Adapted parameters ``[M, ...]`` after one inner step per support batch (in order)."""
        adapted = self.params if params is None else params
        rate = self.step_size() if step_size is None else step_size
        for episodes in supports:
            adapted = adapt(self.policy, adapted, episodes, rate, self.inner.first_order, self.inner.estimator)
        return adapted

    def surrogate(
        self,
        supports: list[Episodes],
        query: Episodes,
        params: Params | None = None,
        step_size: StepSize | None = None,
        old: SurrogateResult | None = None,
    ) -> SurrogateResult:
        """Surrogate loss and KL of the adapted policies on the query episodes.

        The importance ratio is against the behaviour (sampling) policy's log-probs; the KL is against ``old``
        (by default the adapted policy itself, detached: KL = 0 with the right curvature for TRPO).
        """
        adapted = self.adapt(supports, params, step_size)
        mean, log_std = self.policy.forward(query.task_major("observations"), adapted)
        log_probs = gaussian_log_prob(query.task_major("actions"), mean, log_std)
        mask = query.task_major("mask")
        ratio = torch.exp(log_probs - query.task_major("log_probs"))
        loss = masked_task_mean(-ratio * query.task_major("advantages"), mask).mean()
        old_mean = mean.detach() if old is None else old.old_mean
        old_log_std = log_std.detach() if old is None else old.old_log_std
        task_kl = masked_task_mean(gaussian_kl(old_mean, old_log_std, mean, log_std), mask)
        return SurrogateResult(loss, task_kl.mean(), task_kl, old_mean, old_log_std, mean, adapted["log_std"])

    # --- the update --------------------------------------------------------------------------------------
    def update(self, supports: list[Episodes], query: Episodes) -> dict[str, float]:
        """One meta-update; returns statistics for logging (surrogate before/after, KL, line search)."""
        if self.optimizer is not None:
            return self._optimizer_update(supports, query)
        return self._trpo_update(supports, query)

    def _optimizer_update(self, supports: list[Episodes], query: Episodes) -> dict[str, float]:
        before = self.surrogate(supports, query)
        check_finite("the outer surrogate loss", before.loss)
        self.optimizer.zero_grad(set_to_none=True)
        before.loss.backward()
        grads = [t.grad for t in self.meta_parameters() if t.grad is not None]
        check_finite("the meta-gradient", *grads)
        grad_norm = flatten(grads).norm()
        self.optimizer.step()
        check_finite("the meta-parameters after the update", *self.meta_parameters())
        with torch.no_grad():
            after = self.surrogate(supports, query, *self._split([t.detach() for t in self.meta_parameters()]),
                                   old=before)
        return {
            "surrogate_before": before.loss.item(),
            "surrogate_after": after.loss.item(),
            "kl": after.kl.item(),
            "max_task_kl": after.task_kl.max().item(),
            "grad_norm": grad_norm.item(),
        }

    def _trpo_update(self, supports: list[Episodes], query: Episodes) -> dict[str, float]:
        outer = self.outer
        tensors = self.meta_parameters()
        if outer.fvp == "analytic":  # values only: the gradient and the products are written out by hand
            objective = self._analytic_objective(supports, query)
            before = self._analytic_surrogate(objective, query)
            check_finite("the outer surrogate loss", before.loss)
            gradient = objective.meta_gradient()
            subsampled = self._fisher_subset(query) is not None
            fisher_vector_product = self._fisher_vector_product(before, query, tensors, supports) if subsampled \
                else objective
        else:
            before = self.surrogate(supports, query)
            check_finite("the outer surrogate loss", before.loss)
            gradient = flatten(torch.autograd.grad(before.loss, tensors, retain_graph=True))
            fisher_vector_product = self._fisher_vector_product(before, query, tensors, supports)
        check_finite("the meta-gradient", gradient)
        step_direction, fisher_step = conjugate_gradient(fisher_vector_product, gradient, outer.cg_iters)
        full_step = trust_region_step(step_direction, fisher_step, outer.max_kl)
        check_finite("the TRPO step", full_step)
        fisher_vector_product = objective = None  # free the graphs and caches before the line search

        old_flat = flatten([t.detach() for t in tensors])
        fraction = 1.0
        accepted = False
        after_loss, after_kl, after_max_task_kl = before.loss.item(), 0.0, 0.0
        backtracks = 0
        with torch.no_grad():
            for backtracks in range(outer.line_search_steps):  # noqa: B007 (logged below)
                candidate = unflatten(old_flat - fraction * full_step, tensors)
                result = self.surrogate(supports, query, *self._split(candidate), old=before)
                loss, kl = result.loss.item(), result.kl.item()
                if math.isfinite(loss) and loss < before.loss.item() and kl <= outer.max_kl:
                    accepted, after_loss, after_kl = True, loss, kl
                    after_max_task_kl = result.task_kl.max().item()
                    for tensor, value in zip(tensors, candidate, strict=True):
                        tensor.copy_(value)
                    break
                fraction *= outer.line_search_backtrack_ratio
        check_finite("the meta-parameters after the update", *tensors)
        return {
            "surrogate_before": before.loss.item(),
            "surrogate_after": after_loss,
            "kl": after_kl,
            "max_task_kl": after_max_task_kl,
            "grad_norm": gradient.norm().item(),
            "line_search_accepted": float(accepted),
            "line_search_backtracks": float(backtracks if accepted else outer.line_search_steps),
            "step_fraction": fraction if accepted else 0.0,
        }

    def _analytic_objective(self, supports: list[Episodes], query: Episodes,
                            curvature_episodes: int | None = None) -> AnalyticMetaObjective:
        """The hand-written meta-gradient and Fisher-vector products (:mod:`meta_rl.fisher`) for these episodes."""
        if len(supports) > 1:
            raise ValueError(f"outer.fvp='analytic' supports at most one inner step, got {len(supports)}")
        return AnalyticMetaObjective(self.policy, self.params, self.step_size(), supports[0] if supports else None,
                                     query, self.inner.first_order, self.outer.cg_damping, curvature_episodes,
                                     self.inner.estimator)

    @staticmethod
    def _analytic_surrogate(objective: AnalyticMetaObjective, query: Episodes) -> SurrogateResult:
        """:meth:`surrogate` at the current meta-parameters (KL 0, no graph), from the analytic objective's own
        forward pass instead of a second adaptation and query pass (equal to rounding; the tests hold it so)."""
        loss, mean, log_std = objective.surrogate()
        num_tasks, horizon, num_eps = query.num_tasks, query.rewards.shape[0], query.episodes_per_task
        mean = mean.view(num_tasks, horizon, num_eps, mean.shape[-1])
        query_log_std = log_std.view(num_tasks, 1, 1, log_std.shape[-1]) if log_std.dim() == 2 else log_std
        task_kl = torch.zeros(num_tasks, dtype=loss.dtype, device=loss.device)
        return SurrogateResult(loss, task_kl.mean(), task_kl, mean, query_log_std, mean, log_std)

    def _fisher_subset(self, query: Episodes) -> tuple[str, int] | None:
        """What the Fisher-vector products keep with ``outer.fvp_subsample < 1``: ``("tasks", k)``, the first k
        tasks, or ``("episodes", k)``, the first k episodes of every task (``outer.fvp_subsample_by``), with
        ``k = ceil(fvp_subsample * M or N)``; None when that is everything. The meta-batch's tasks and each task's
        episodes are drawn i.i.d., so the first ones are a random subset."""
        by = self.outer.fvp_subsample_by
        total = query.num_tasks if by == "tasks" else query.episodes_per_task
        keep = min(total, max(1, math.ceil(self.outer.fvp_subsample * total - 1e-9)))
        return None if keep == total else (by, keep)

    def _fisher_vector_product(
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
        (:meth:`_fisher_subset`): a task subset is re-adapted on its own; an episode subset keeps the inner step
        on every episode and takes the KL on the subset's query episodes (``analytic`` also estimates the inner
        step's Hessian on the subset's support episodes).
        """
        damping = self.outer.cg_damping
        subset = self._fisher_subset(query)
        if subset is not None and subset[0] == "tasks":
            tasks = slice(0, subset[1])
            supports, query = [s.select_tasks(tasks) for s in supports], query.select_tasks(tasks)
        if self.outer.fvp == "analytic":
            curvature_episodes = subset[1] if subset is not None and subset[0] == "episodes" else None
            return self._analytic_objective(supports, query, curvature_episodes)
        if subset is not None:  # each product then only walks the subset's graph (and the full inner step's)
            if subset[0] == "episodes":
                query = query.select_episodes(slice(0, subset[1]))
            result = self.surrogate(supports, query)
        if self.outer.fvp == "kl_hessian":
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

    # --- state -------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Tensors and plain data only (for weights-only checkpoint loading)."""
        state = {
            "params": {k: v.detach().cpu() for k, v in self.params.items()},
            "step_sizes": None
            if self.step_sizes is None
            else {k: v.detach().cpu() for k, v in self.step_sizes.items()},
            "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
        }
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (shapes must match)."""
        with torch.no_grad():
            for name, tensor in self.params.items():
                tensor.copy_(state["params"][name])
            if self.step_sizes is not None:
                for name, tensor in self.step_sizes.items():
                    tensor.copy_(state["step_sizes"][name])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])
