"""DiCE's inner loss: the magic box over each episode's cumulative log-probabilities (Foerster et al., 2018).

With ``W_t = exp(sum_{t' <= t} (log pi_t' - log pi_sampling_t'))`` (1 at the sampling parameters, with every
derivative of the trajectory's probability up to step t), the loss is ``-mean(W_t * (A_t - A_{t+1}))``. The
advantage differences telescope, so the gradient is the usual ``sum_t grad log pi_t * A_t``; with undiscounted
reward-to-go minus a state baseline ``b``, ``A_t - A_{t+1} = r_t - b_t + b_{t+1}``, and the loss is DiCE's
``sum_t W_t r_t`` plus the baseline term ``sum_t W_{t-1} (1 - box(a_t)) b_t`` (Mao et al., 2019), which has zero
expectation at every order. So every derivative is unbiased for the expected return, the Hessian included.
"""

from __future__ import annotations

import torch
from torch import Tensor

from meta_rl.estimators import SupportTerms, register


@register("dice", "-mean(box(cumulative log pi) * (A_t - A_t+1)): DiCE with its baseline; unbiased to every "
                  "order, higher variance")
def dice_loss(log_probs: Tensor, terms: SupportTerms) -> Tensor:
    """Per-task DiCE loss on ``[M, T, N]`` log-probabilities (time is dimension 1), ``[M]``."""
    cumulative = torch.cumsum((log_probs - terms.behaviour_log_probs) * terms.mask, dim=1)
    advantages = terms.advantages * terms.mask
    next_advantages = torch.cat([advantages[:, 1:], torch.zeros_like(advantages[:, :1])], dim=1)
    return terms.task_mean(-torch.exp(cumulative) * (advantages - next_advantages))
