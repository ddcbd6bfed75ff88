"""MAML's inner loss: the REINFORCE surrogate ``-mean(log pi(a|s) * A)`` (Finn et al., 2017)."""

from __future__ import annotations

from torch import Tensor

from meta_rl.estimators import SupportTerms, register


@register("maml", "-mean(log pi * A): the MAML paper's surrogate; its meta-gradient ignores how the initial "
                  "parameters shape the support episodes (biased)")
def maml_loss(log_probs: Tensor, terms: SupportTerms) -> Tensor:
    """Per-task ``-mean(log pi * A)`` over valid steps, ``[M]``."""
    return terms.task_mean(-log_probs * terms.advantages)
