"""A plain per-task TRPO meta-update: the readable specification the task-batched update is tested against.

It loops over tasks (one surrogate and one KL per task, each through its own inner step) and takes Fisher-vector
products by double backward through the mean KL's gradient, the structure of the best-known PyTorch MAML-RL code.
:class:`~meta_rl.meta_learner.MetaLearner` must produce the same step to float tolerance
(``tests/test_meta_learner.py``); ``scripts/benchmark_update.py`` times both.
"""

from __future__ import annotations

import torch

from meta_rl.episodes import Episodes
from meta_rl.meta_learner import MetaLearner
from meta_rl.trpo import conjugate_gradient, flatten, trust_region_step, unflatten


def per_task_trpo_update(learner: MetaLearner, support: Episodes, query: Episodes) -> None:
    """One TRPO meta-update of ``learner``'s meta-parameters (in place), task by task, from one inner step."""
    outer, tensors = learner.outer, learner.meta_parameters()
    tasks = range(support.num_tasks)
    supports = [support.select_tasks(slice(m, m + 1)) for m in tasks]
    queries = [query.select_tasks(slice(m, m + 1)) for m in tasks]
    results = [learner.surrogate([s], q) for s, q in zip(supports, queries, strict=True)]
    loss = torch.stack([r.loss for r in results]).mean()
    kl = torch.stack([r.kl for r in results]).mean()
    gradient = flatten(torch.autograd.grad(loss, tensors, retain_graph=True))
    kl_grad = flatten(torch.autograd.grad(kl, tensors, create_graph=True))

    def fvp(vector: torch.Tensor) -> torch.Tensor:
        return flatten(torch.autograd.grad(kl_grad @ vector, tensors, retain_graph=True)) + outer.cg_damping * vector

    direction = conjugate_gradient(fvp, gradient, outer.cg_iters).solution
    step = trust_region_step(direction, fvp(direction), outer.max_kl)
    old = flatten([t.detach() for t in tensors])
    fraction = 1.0
    with torch.no_grad():
        for _ in range(outer.line_search_steps):
            candidate = learner._split(unflatten(old - fraction * step, tensors))
            new = [learner.surrogate([s], q, *candidate, old=r) for s, q, r in zip(supports, queries, results,
                                                                                   strict=True)]
            new_loss = torch.stack([r.loss for r in new]).mean().item()
            new_kl = torch.stack([r.kl for r in new]).mean().item()
            if new_loss < loss.item() and new_kl <= outer.max_kl:
                for tensor, value in zip(tensors, unflatten(old - fraction * step, tensors), strict=True):
                    tensor.copy_(value)
                break
            fraction *= outer.line_search_backtrack_ratio
