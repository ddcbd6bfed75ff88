"""Inner-loop estimators: the per-task loss the inner policy-gradient step differentiates.

An estimator is a function of the support samples' log-probabilities under the parameters being adapted,
``log_probs [M, T, N]``, given what the sampler recorded (:class:`SupportTerms`); it returns one loss per task
``[M]``. At the parameters that sampled the episodes every estimator has the same value's gradient (the policy
gradient with the episodes' advantages); they differ in the second derivative, which the meta-gradient
differentiates through the inner step:

- ``maml``: ``-mean(log pi * A)``, the MAML paper's surrogate. It treats the support episodes as fixed, so its
  Hessian lacks the term that credits the initial parameters for how they shape the support episodes.
- ``lvc``: ``-mean(pi / pi_sampling * A)``, ProMP's low-variance curvature objective: adds that term for each
  step's own action (exact for one-step episodes, low variance, biased across time steps).
- ``dice``: DiCE's magic box over each episode's cumulative log-probabilities with its baseline: unbiased to every
  order, higher variance.

The ratio to the sampling policy uses the log-probabilities the sampler stored, so away from the sampling
parameters (the TRPO line search, ProMP's later steps) ``lvc`` and ``dice`` are importance-weighted estimates.
Because an estimator sees only log-probabilities, the analytic Fisher-vector products (:mod:`meta_rl.fisher`)
cover every one of them: its first and second derivatives w.r.t. the log-probabilities are taken by autograd on
the small ``[M, T, N]`` tensor. A new estimator is one module here that calls :func:`register`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from meta_rl.episodes import masked_task_mean
from meta_rl.registry import Registry


@dataclass(frozen=True)
class SupportTerms:
    """What an estimator needs of the support episodes besides the log-probabilities, task-major ``[M, T, N]``."""

    behaviour_log_probs: Tensor  # log-probabilities under the policy that sampled the episodes
    advantages: Tensor  # zero where masked
    mask: Tensor  # 1.0 for steps that belong to an episode (a prefix of each episode's T steps)

    def task_mean(self, values: Tensor) -> Tensor:
        """Mean over each task's valid steps: ``[M]`` (the scale of every estimator, as MAML's loss has it)."""
        return masked_task_mean(values, self.mask)


Estimator = Callable[[Tensor, SupportTerms], Tensor]
"""``(log_probs [M, T, N], terms) -> loss [M]``."""


ESTIMATORS: Registry[Estimator] = Registry("inner estimator")
register = ESTIMATORS.register
"""Decorator ``@register(name, summary)``: make a loss available as ``inner.estimator: name``."""
get_estimator = ESTIMATORS.get
estimator_names = ESTIMATORS.names

for _module in ("maml", "lvc", "dice"):  # each registers itself, in this order
    importlib.import_module(f"{__name__}.{_module}")
