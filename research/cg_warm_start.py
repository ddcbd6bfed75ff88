#!/usr/bin/env python
"""Would warm-starting TRPO's conjugate gradient from the previous iteration's solution let it stop sooner?

Trains a preset for ``--iterations`` and, at every update, solves the same system ``F x = g`` several ways next to
the step training takes: cold starts (from 0) of 3, 5 and 10 steps, warm starts of 3, 5 and 10 steps from the
previous iteration's solution (scaled to fit ``g``), and a converged solve (``--converged`` steps); with
``--jacobi-probes P``, also 3, 5 and 10 steps preconditioned by F's diagonal (estimated from P Rademacher probes
``z * F z``, P more products: an upper bound on what a cheaper diagonal estimate would do). Each is scored
by its F-cosine to the converged solution, ``<x, x*>_F / (|x|_F |x*|_F)``: the fraction of the best linear
improvement a trust-region step along ``x`` reaches (1 is the exact natural gradient). ``previous`` scores the
previous solution itself. Training takes the cold 10-step (default ``outer.cg_iters``) step, as always.

    python research/cg_warm_start.py navigation-maml --iterations 25
    python research/cg_warm_start.py cheetah-vel-maml --iterations 6
    python research/cg_warm_start.py navigation-maml --iterations 12 --jacobi-probes 20
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable

import meta_rl  # before torch loads: meta_rl sets the OpenMP spin

# isort: split

import numpy as np
import torch
from torch import Tensor

import meta_rl.outer.trpo
from meta_rl.trainer import make_trainer
from meta_rl.trpo import CGResult, conjugate_gradient

STEPS = (3, 5, 10)


def f_cosine(matvec: Callable[[Tensor], Tensor], x: Tensor, target: Tensor, target_product: Tensor) -> float:
    """``<x, target>_F / (|x|_F |target|_F)`` with ``target_product = F target``."""
    return float((x @ target_product) / torch.sqrt((x @ matvec(x)) * (target @ target_product)))


def warm_solve(matvec: Callable[[Tensor], Tensor], b: Tensor, start: Tensor, steps: int) -> Tensor:
    """``steps`` CG steps on ``F x = b`` from ``start`` scaled by its best fit ``a = start.b / start.F start``."""
    product = matvec(start)
    scale = (start @ b) / (start @ product)
    return scale * start + conjugate_gradient(matvec, b - scale * product, steps).solution


def preconditioned_solve(matvec: Callable[[Tensor], Tensor], b: Tensor, diagonal: Tensor, steps: int) -> Tensor:
    """``steps`` steps of conjugate gradient on ``F x = b`` preconditioned by ``diag(diagonal)``, from 0: plain CG
    on ``S F S y = S b`` with ``S = diag(diagonal)^(-1/2)``, then ``x = S y`` (the same iterates)."""
    scale = diagonal.rsqrt()
    return scale * conjugate_gradient(lambda v: scale * matvec(scale * v), scale * b, steps).solution


def estimated_diagonal(matvec: Callable[[Tensor], Tensor], like: Tensor, probes: int, seed: int) -> Tensor:
    """Hutchinson's estimate of ``diag(F)``, the mean of ``z * F z`` over Rademacher ``z``, kept positive."""
    generator = torch.Generator().manual_seed(seed)
    total = torch.zeros_like(like)
    for _ in range(probes):
        z = (torch.randint(0, 2, like.shape, generator=generator) * 2 - 1).to(like)
        total += z * matvec(z)
    estimate = total / probes
    return estimate.clamp_min(1e-3 * estimate.abs().mean())


class Study:
    """Stands in for TRPO's ``conjugate_gradient``: returns the solve training asks for, scores the others."""

    def __init__(self, converged_steps: int, jacobi_probes: int = 0) -> None:
        self.converged_steps, self.jacobi_probes = converged_steps, jacobi_probes
        self.previous: Tensor | None = None
        self.rows: list[dict[str, float]] = []

    def __call__(self, matvec: Callable[[Tensor], Tensor], b: Tensor, iterations: int) -> CGResult:
        result = conjugate_gradient(matvec, b, iterations)
        with torch.no_grad():
            target = conjugate_gradient(matvec, b, self.converged_steps).solution
            target_product = matvec(target)
            row = {f"cold-{k}": f_cosine(matvec, conjugate_gradient(matvec, b, k).solution, target, target_product)
                   for k in STEPS}
            if self.previous is not None:
                row["previous"] = f_cosine(matvec, self.previous, target, target_product)
                for k in STEPS:
                    row[f"warm-{k}"] = f_cosine(matvec, warm_solve(matvec, b, self.previous, k), target,
                                                target_product)
            if self.jacobi_probes:
                diagonal = estimated_diagonal(matvec, b, self.jacobi_probes, seed=len(self.rows))
                for k in STEPS:
                    row[f"jacobi-{k}"] = f_cosine(matvec, preconditioned_solve(matvec, b, diagonal, k), target,
                                                  target_product)
        self.previous = result.solution.detach().clone()
        self.rows.append(row)
        print(f"update {len(self.rows):3d}: " + "  ".join(f"{k} {v:.3f}" for k, v in row.items()), flush=True)
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset")
    parser.add_argument("--iterations", type=int, default=25)
    parser.add_argument("--converged", type=int, default=60, help="CG steps of the reference solve")
    parser.add_argument("--jacobi-probes", type=int, default=0, help="probes of F's diagonal (0: no preconditioning)")
    parser.add_argument("overrides", nargs="*", default=[], metavar="key=value")
    args = parser.parse_intermixed_args()
    study = Study(args.converged, args.jacobi_probes)
    meta_rl.outer.trpo.conjugate_gradient = study  # TRPO looks the function up in its module at each update
    trainer = make_trainer(args.preset, tempfile.mkdtemp(), args.overrides)
    if trainer.config.outer.optimizer != "trpo":
        parser.error(f"{args.preset} does not use TRPO (outer.optimizer={trainer.config.outer.optimizer})")
    try:
        for _ in range(args.iterations):
            trainer.train_iteration()
    finally:
        trainer.close()
    warm = [row for row in study.rows if "previous" in row]
    if warm:
        print(f"mean F-cosine to the converged solve over updates 2-{len(study.rows)} "
              f"(cg_iters={trainer.config.outer.cg_iters} in training):")
        print("  ".join(f"{key} {np.mean([row[key] for row in warm]):.3f}" for key in warm[-1]))


if __name__ == "__main__":
    main()
