"""The inner loop: one policy-gradient step per task, for all M tasks at once (MAML and Meta-SGD).

The loss the step differentiates is the configured inner estimator (:mod:`meta_rl.estimators`).

The initial parameters are expanded to ``[M, ...]``; the per-task losses are summed and a single
``torch.autograd.grad`` returns every task's own gradient, because the tasks do not interact. With
``create_graph=True`` the step stays differentiable (second-order meta-gradient); ``first_order`` detaches the
gradient so the meta-gradient drops exactly the second-order term.
"""

from __future__ import annotations

import torch
from torch import Tensor

from meta_rl.episodes import Episodes, masked_task_mean
from meta_rl.estimators import SupportTerms, get_estimator
from meta_rl.policy import GaussianMLPPolicy, Params, gaussian_kl, gaussian_log_prob, is_task_batched

StepSize = float | Params

__all__ = ["StepSize", "adapt", "expand_to_tasks", "init_step_sizes", "inner_loss", "masked_task_mean",
           "step_kl", "step_size_of_step", "step_size_shapes", "support_terms"]


def support_terms(episodes: Episodes) -> SupportTerms:
    """What the estimators need of the support episodes, task-major ``[M, T, N]``."""
    if episodes.advantages is None:
        raise ValueError("episodes have no advantages yet; call baseline.compute_advantages first")
    return SupportTerms(episodes.task_major("log_probs"), episodes.task_major("advantages"),
                        episodes.task_major("mask"))


def inner_loss(policy: GaussianMLPPolicy, params: Params, episodes: Episodes, estimator: str = "maml") -> Tensor:
    """The inner estimator's loss on the support episodes, one value per task ``[M]`` (``maml``:
    ``-mean(log pi(a|s) * A)`` over valid steps)."""
    loss = get_estimator(estimator)
    terms = support_terms(episodes)
    mean, log_std = policy.forward(episodes.task_major("observations"), params)
    return loss(gaussian_log_prob(episodes.task_major("actions"), mean, log_std), terms)


def expand_to_tasks(params: Params, num_tasks: int) -> Params:
    """Give shared parameters a leading task dimension (a view: gradients flow back to the shared tensor)."""
    if is_task_batched(params):
        return params
    return {k: v.expand(num_tasks, *v.shape) for k, v in params.items()}


def step_kl(policy: GaussianMLPPolicy, params: Params, adapted: Params, episodes: Episodes) -> Tensor:
    """Per-task KL ``[M]`` from the policy under ``params`` to the one under ``adapted``, averaged over the valid
    observations of ``episodes``: how far an inner step moved each task's policy."""
    observations, mask = episodes.task_major("observations"), episodes.task_major("mask")
    with torch.no_grad():
        pre_mean, pre_log_std = policy.forward(observations, params)
        post_mean, post_log_std = policy.forward(observations, adapted)
        return masked_task_mean(gaussian_kl(pre_mean, pre_log_std, post_mean, post_log_std), mask)


def adapt(
    policy: GaussianMLPPolicy,
    params: Params,
    episodes: Episodes,
    step_size: StepSize,
    first_order: bool = False,
    estimator: str = "maml",
) -> Params:
    """One inner step for every task: ``theta_m' = theta - step_size * grad L_m(theta)``.

    :param params: shared ``[...]`` or task-batched ``[M, ...]`` parameters.
    :param episodes: the support episodes, with advantages.
    :param step_size: a scalar (MAML) or a dict of per-element step sizes shaped like the shared parameters
        (Meta-SGD).
    :param first_order: treat the inner gradient as a constant in the meta-gradient.
    :param estimator: the inner loss (:mod:`meta_rl.estimators`): ``maml``, ``lvc`` or ``dice``.
    :return: task-batched adapted parameters ``[M, ...]``; differentiable w.r.t. ``params`` and Meta-SGD's step
        sizes whenever those require gradients.
    """
    batched = expand_to_tasks(params, episodes.num_tasks)
    step_needs_grad = isinstance(step_size, dict) and any(v.requires_grad for v in step_size.values())
    # under torch.no_grad() nothing is differentiated through the step (views made there do not carry gradients)
    tracking = torch.is_grad_enabled() and any(v.requires_grad for v in batched.values())
    meta_grad = torch.is_grad_enabled() and (tracking or step_needs_grad)
    create_graph = meta_grad and not first_order
    with torch.enable_grad():
        leaves = batched
        if not tracking:
            leaves = {k: v.detach().clone().requires_grad_(True) for k, v in batched.items()}
        loss = inner_loss(policy, leaves, episodes, estimator).sum()
        grads = torch.autograd.grad(loss, list(leaves.values()), create_graph=create_graph)
    adapted = {}
    for (name, value), grad in zip(batched.items(), grads, strict=True):
        if not create_graph:
            grad = grad.detach()
        rate = step_size[name] if isinstance(step_size, dict) else step_size
        adapted[name] = value - rate * grad
    return adapted


def step_size_shapes(policy: GaussianMLPPolicy, num_steps: int = 1) -> dict[str, tuple[int, ...]]:
    """Meta-SGD's step-size tensors for ``num_steps`` inner steps: one set per step (at least one), each shaped like
    the parameters. The first set is keyed by the parameter names, inner step k's (k >= 2) by ``stepK/NAME``."""
    shapes = dict(policy.shapes)
    for step in range(2, num_steps + 1):
        shapes.update({f"step{step}/{name}": shape for name, shape in policy.shapes.items()})
    return shapes


def init_step_sizes(policy: GaussianMLPPolicy, value: float, device: torch.device | str = "cpu",
                    num_steps: int = 1) -> Params:
    """Meta-SGD's per-parameter step sizes, one set per inner step, all equal to ``value`` initially."""
    shapes = step_size_shapes(policy, num_steps)
    return {name: torch.full(shape, value, device=device) for name, shape in shapes.items()}


def step_size_of_step(step_size: StepSize, step: int) -> StepSize:
    """The step size of inner step ``step`` (0-based): MAML's scalar as it is; Meta-SGD's set learned for that step,
    or the last learned set for a step beyond those it was trained with."""
    if not isinstance(step_size, dict):
        return step_size
    while step > 0 and f"step{step + 1}/log_std" not in step_size:
        step -= 1
    prefix = f"step{step + 1}/" if step > 0 else ""
    return {name: step_size[prefix + name] for name in step_size if "/" not in name}
