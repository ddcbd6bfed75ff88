"""Outer algorithms: how the meta-parameters move from one meta-batch, each a module chosen by ``outer.optimizer``.

- ``trpo``: conjugate gradient on the KL between the old and new adapted policies, then a line search
  (:mod:`meta_rl.outer.trpo`; the analytic Fisher-vector products of :mod:`meta_rl.fisher` are its fast path);
- ``adam`` / ``sgd``: one step of a torch optimizer on the meta-gradient (:mod:`meta_rl.outer.gradient`);
- ``promp``: ProMP's clipped surrogate with a penalty on each inner step's KL, several Adam steps on the same
  episodes (:mod:`meta_rl.outer.promp`).

A new algorithm is one module here that subclasses :class:`OuterAlgorithm` and calls :func:`register`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from meta_rl.outer.base import (
    OUTER_ALGORITHMS,
    NonFiniteError,
    OuterAlgorithm,
    SurrogateResult,
    check_finite,
    register,
)

if TYPE_CHECKING:
    from meta_rl.meta_learner import MetaLearner

__all__ = ["OUTER_ALGORITHMS", "NonFiniteError", "OuterAlgorithm", "SurrogateResult", "algorithm_names",
           "check_finite", "make_outer_algorithm", "register"]


algorithm_names = OUTER_ALGORITHMS.names


def make_outer_algorithm(learner: MetaLearner) -> OuterAlgorithm:
    """The algorithm ``learner.outer.optimizer`` names, for ``learner``."""
    return OUTER_ALGORITHMS.get(learner.outer.optimizer)(learner)


for _module in ("trpo", "gradient", "promp"):  # each registers itself, in this order
    importlib.import_module(f"{__name__}.{_module}")
