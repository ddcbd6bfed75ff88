"""A torch optimizer on the meta-gradient: one Adam or SGD step per meta-iteration (``outer.lr``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from meta_rl.episodes import Episodes
from meta_rl.outer.base import OuterAlgorithm, check_finite, register
from meta_rl.trpo import flatten

if TYPE_CHECKING:
    from meta_rl.meta_learner import MetaLearner


class GradientStep(OuterAlgorithm):
    """One step of ``optimizer`` on the surrogate's meta-gradient; its state (Adam's moments) is checkpointed."""

    def __init__(self, learner: MetaLearner, optimizer: torch.optim.Optimizer) -> None:
        super().__init__(learner)
        self.optimizer = optimizer

    def update(self, supports: list[Episodes], query: Episodes) -> dict[str, float]:
        """The step; the surrogate after it and its KL are measured on the same episodes."""
        learner = self.learner
        before = learner.surrogate(supports, query)
        check_finite("the outer surrogate loss", before.loss)
        self.optimizer.zero_grad(set_to_none=True)
        before.loss.backward()
        grads = [t.grad for t in learner.meta_parameters() if t.grad is not None]
        check_finite("the meta-gradient", *grads)
        grad_norm = flatten(grads).norm().item()
        self.optimizer.step()
        check_finite("the meta-parameters after the update", *learner.meta_parameters())
        with torch.no_grad():
            after = learner.surrogate(supports, query, *learner._split([t.detach() for t in
                                                                        learner.meta_parameters()]), old=before)
        return self.outer_stats(before, after, grad_norm)

    def state_dict(self) -> Any:
        """The torch optimizer's state."""
        return self.optimizer.state_dict()

    def load_state_dict(self, state: Any) -> None:
        """Restore the torch optimizer's state."""
        self.optimizer.load_state_dict(state)


@register("adam", "one Adam step on the meta-gradient (outer.lr)")
def make_adam(learner: MetaLearner) -> GradientStep:
    """Adam on ``learner``'s meta-parameters."""
    return GradientStep(learner, torch.optim.Adam(learner.meta_parameters(), lr=learner.outer.lr))


@register("sgd", "one plain gradient step on the meta-gradient (outer.lr)")
def make_sgd(learner: MetaLearner) -> GradientStep:
    """Plain SGD on ``learner``'s meta-parameters."""
    return GradientStep(learner, torch.optim.SGD(learner.meta_parameters(), lr=learner.outer.lr))
