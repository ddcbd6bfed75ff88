"""ProMP's low-variance curvature (LVC) inner loss (Rothfuss et al., 2019).

``-mean(pi(a|s) / pi_sampling(a|s) * A)`` with the sampling policy's probability held constant: the same value and
gradient as MAML's surrogate at the sampling parameters, and a Hessian with the extra term
``A * grad log pi grad log pi^T`` of each step's own action. It drops the cross-time terms that DiCE keeps, which
is where its bias (exact for one-step episodes) and its low variance come from.
"""

from __future__ import annotations

import torch
from torch import Tensor

from meta_rl.estimators import SupportTerms, register


@register("lvc", "-mean(pi / pi_sampling * A): ProMP's low-variance curvature; adds each step's own sampling "
                 "term to the Hessian (exact for one-step episodes)")
def lvc_loss(log_probs: Tensor, terms: SupportTerms) -> Tensor:
    """Per-task ``-mean(ratio * A)``, the ratio to the stored sampling log-probabilities, ``[M]``."""
    return terms.task_mean(-torch.exp(log_probs - terms.behaviour_log_probs) * terms.advantages)
