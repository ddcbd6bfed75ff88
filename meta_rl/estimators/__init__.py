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


@dataclass(frozen=True)
class EstimatorSpec:
    """A registered estimator: its loss and a one-line description (shown in the config reference)."""

    name: str
    loss: Estimator
    summary: str


ESTIMATORS: dict[str, EstimatorSpec] = {}


def register(name: str, summary: str) -> Callable[[Estimator], Estimator]:
    """Decorator: make ``loss`` available as ``inner.estimator: name``."""

    def decorate(loss: Estimator) -> Estimator:
        if name in ESTIMATORS:
            raise ValueError(f"estimator {name!r} is registered twice")
        ESTIMATORS[name] = EstimatorSpec(name, loss, summary)
        return loss

    return decorate


def get_estimator(name: str) -> Estimator:
    """The loss registered as ``name``; an unknown name is a ``ValueError`` listing the allowed ones."""
    if name not in ESTIMATORS:
        raise ValueError(f"unknown inner estimator {name!r}; allowed: {', '.join(ESTIMATORS)}")
    return ESTIMATORS[name].loss


def estimator_names() -> list[str]:
    """The registered estimators' names, in registration order."""
    return list(ESTIMATORS)


for _module in ("maml", "lvc", "dice"):  # each registers itself, in this order
    importlib.import_module(f"{__name__}.{_module}")
