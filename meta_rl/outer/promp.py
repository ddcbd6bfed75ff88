"""ProMP (Rothfuss et al., 2019): PPO's clipped surrogate on the query episodes, through the inner step, with a
penalty on each inner step's KL, optimised by several Adam steps on the same episodes.

The ratio of the outer objective is to the policy that sampled the query episodes; the inner steps are recomputed
from the current meta-parameters at every Adam step (with ``inner.estimator: lvc``, ProMP's own inner loss, their
support ratios are to the policies that sampled the supports too). The penalty ``mean_k(eta_k KL_k)`` keeps each
inner step's recomputed pre-step policy near the one that sampled its support episodes, so those samples stay
valid for its estimator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from meta_rl.episodes import Episodes, masked_task_mean
from meta_rl.outer.base import OuterAlgorithm, SurrogateResult, check_finite, register
from meta_rl.policy import gaussian_kl
from meta_rl.trpo import flatten

if TYPE_CHECKING:
    from meta_rl.meta_learner import MetaLearner

Distribution = tuple[Tensor, Tensor]  # a Gaussian's mean [M, T, N, A] and log-std (broadcastable)
PassResult = tuple[Tensor, SurrogateResult, list[Tensor], list[Distribution], Tensor]


class ProMP(OuterAlgorithm):
    """``outer.promp.steps`` Adam steps on ``-clipped surrogate + mean_k(inner_kl_coeff_k * KL_k)``."""

    def __init__(self, learner: MetaLearner) -> None:
        super().__init__(learner)
        self.settings = learner.outer.promp
        self.optimizer = torch.optim.Adam(learner.meta_parameters(), lr=self.settings.lr)
        self.inner_kl_coeff = [self.settings.inner_kl_coeff] * learner.inner.num_steps

    def _pass(self, supports: list[Episodes], query: Episodes, sampling: list[Distribution] | None,
              before: SurrogateResult | None) -> PassResult:
        """Adapt from the current meta-parameters: the clipped objective's loss, the plain surrogate (KL against
        ``before``), each inner step's KL to ``sampling`` (to itself when None), the inner steps' distributions and
        the share of query steps whose ratio was clipped."""
        learner, clip = self.learner, self.settings.clip_eps
        steps = learner.adapt_steps(supports)
        distributions = [learner.policy.forward(episodes.task_major("observations"), params)
                         for episodes, params in zip(supports, steps[:-1], strict=True)]
        reference = sampling if sampling is not None else [(m.detach(), s.detach()) for m, s in distributions]
        inner_kls = [
            masked_task_mean(gaussian_kl(old_mean, old_log_std, mean, log_std), episodes.task_major("mask")).mean()
            for episodes, (mean, log_std), (old_mean, old_log_std) in zip(supports, distributions, reference,
                                                                          strict=True)
        ]
        result = learner.query_objective(steps[-1], query, before)
        ratio = result.ratio
        advantages, mask = query.task_major("advantages"), query.task_major("mask")
        clipped = torch.minimum(ratio * advantages, ratio.clamp(1.0 - clip, 1.0 + clip) * advantages)
        loss = masked_task_mean(-clipped, mask).mean()
        clip_fraction = (((ratio - 1.0).abs() > clip).to(mask.dtype) * mask).sum() / mask.sum().clamp_min(1.0)
        return loss, result, inner_kls, reference, clip_fraction

    def update(self, supports: list[Episodes], query: Episodes) -> dict[str, float]:
        """The Adam steps; logs the inner KLs after them, their coefficients and the share of clipped ratios."""
        learner = self.learner
        tensors = learner.meta_parameters()
        sampling: list[Distribution] | None = None
        before: SurrogateResult | None = None
        grad_norm = 0.0
        for step in range(self.settings.steps):
            loss, result, inner_kls, sampling, _ = self._pass(supports, query, sampling, before)
            penalty = sum(c * kl for c, kl in zip(self.inner_kl_coeff, inner_kls, strict=True)) / max(1, len(inner_kls))
            objective = loss + penalty
            check_finite("the ProMP objective", objective)
            self.optimizer.zero_grad(set_to_none=True)
            objective.backward()
            grads = [t.grad for t in tensors if t.grad is not None]
            check_finite("the meta-gradient", *grads)
            if step == 0:
                before, grad_norm = result, flatten(grads).norm().item()
            self.optimizer.step()
            check_finite("the meta-parameters after the update", *tensors)
        with torch.no_grad():
            _, after, inner_kl_tensors, _, clip_fraction = self._pass(supports, query, sampling, before)
        assert before is not None
        inner_kls = torch.stack([*inner_kl_tensors, clip_fraction]).tolist()  # one host sync
        clip_fraction = inner_kls.pop()
        coefficients = list(self.inner_kl_coeff)
        if self.settings.adaptive_inner_kl:
            target = self.settings.target_inner_kl
            self.inner_kl_coeff = [c / 2 if kl < target / 1.5 else c * 2 if kl > target * 1.5 else c
                                   for c, kl in zip(self.inner_kl_coeff, inner_kls, strict=True)]
        mean = lambda values: sum(values) / len(values) if values else 0.0  # noqa: E731
        return {
            **self.outer_stats(before, after, grad_norm),
            "promp/inner_kl": mean(inner_kls),
            "promp/inner_kl_coeff": mean(coefficients),
            "promp/clip_fraction": clip_fraction,
        }

    def state_dict(self) -> Any:
        """Adam's state and the inner-KL coefficients (they change with ``adaptive_inner_kl``)."""
        return {"adam": self.optimizer.state_dict(), "inner_kl_coeff": list(self.inner_kl_coeff)}

    def load_state_dict(self, state: Any) -> None:
        """Restore what :meth:`state_dict` returned."""
        self.optimizer.load_state_dict(state["adam"])
        self.inner_kl_coeff = [float(c) for c in state["inner_kl_coeff"]]


@register("promp", "ProMP: clipped surrogate with an inner-KL penalty, several Adam steps (outer.promp)")
def make_promp(learner: MetaLearner) -> ProMP:
    """ProMP for ``learner``."""
    return ProMP(learner)
