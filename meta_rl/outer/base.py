"""What every outer algorithm shares: its interface, its registry, and the checks and results it works with."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from meta_rl.registry import Registry

if TYPE_CHECKING:
    from meta_rl.episodes import Episodes
    from meta_rl.meta_learner import MetaLearner


class NonFiniteError(FloatingPointError):
    """A loss, gradient or parameter became NaN or infinite; the message says where."""


def check_finite(where: str, *tensors: Tensor) -> None:
    """Raise :class:`NonFiniteError` naming ``where`` if any tensor holds NaN or inf (one host sync for all)."""
    if tensors and not bool(torch.stack([torch.isfinite(tensor).all() for tensor in tensors]).all()):
        raise NonFiniteError(f"non-finite value (NaN or inf) in {where}")


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
    ratio: Tensor | None = None  # query likelihood ratios to the behaviour policy, with their graph, [M, T, N]


class OuterAlgorithm(ABC):
    """Updates a :class:`~meta_rl.meta_learner.MetaLearner`'s meta-parameters from one meta-batch.

    :meth:`update` returns statistics already named by their TensorBoard tags (:data:`meta_rl.logger.TAGS`), so
    the trainer and logger need not know which algorithm ran. State beyond the meta-parameters (an optimizer's
    moments, an adaptive coefficient) goes through :meth:`state_dict`, into checkpoints.
    """

    def __init__(self, learner: MetaLearner) -> None:
        self.learner = learner

    @abstractmethod
    def update(self, supports: list[Episodes], query: Episodes) -> dict[str, float]:
        """One meta-update from the support episodes (one batch per inner step) and the query episodes."""

    def state_dict(self) -> Any:
        """Tensors and plain data only (for weights-only checkpoint loading); None when stateless."""
        return None

    def load_state_dict(self, state: Any) -> None:  # noqa: B027 (stateless algorithms have nothing to restore)
        """Restore what :meth:`state_dict` returned."""

    def outer_stats(self, before: SurrogateResult, after: SurrogateResult, grad_norm: float) -> dict[str, float]:
        """The statistics every algorithm logs: the surrogate before and after, the KL of the step, the gradient."""
        return {
            "losses/surrogate_before": before.loss.item(),
            "losses/surrogate_after": after.loss.item(),
            "losses/kl": after.kl.item(),
            "losses/max_task_kl": after.task_kl.max().item(),
            "losses/grad_norm": grad_norm,
        }


AlgorithmFactory = Callable[["MetaLearner"], OuterAlgorithm]

OUTER_ALGORITHMS: Registry[AlgorithmFactory] = Registry("outer algorithm")
register = OUTER_ALGORITHMS.register
"""Decorator ``@register(name, summary)``: make ``factory(learner)`` available as ``outer.optimizer: name``."""
