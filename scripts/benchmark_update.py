#!/usr/bin/env python
"""Seconds per TRPO meta-update: ours (task-batched) against the plain per-task reference, in one run.

For each preset (default: 2D navigation and half-cheetah velocity, the issue's two sizes) it samples one support
and one query batch with the preset's sizes, then times on the same episodes and starting parameters:

- ``ours``: :meth:`MetaLearner.update` with the preset's settings (exact analytic Fisher-vector products);
- variants: the other exact products (``outer.fvp=gauss_newton``: J^T D J by autograd; ``kl_hessian``: double
  backward through the KL gradient) and ``outer.fvp_subsample=0.25`` (of the tasks, and of every task's episodes);
- ``reference``: ``per_task_trpo_update`` of ``tests/reference.py`` (loop over tasks, double backward per product);
- the inner estimators and ProMP: the preset's update with ``inner.estimator`` maml, lvc and dice, and ProMP's
  (``outer.optimizer=promp`` with lvc), timed in interleaved rounds, as medians and ratios to maml's.

It also measures what bounds the update: the time of one policy forward and one forward+backward over the query
batch, and the machine's batched-matmul throughput on the hidden layer's shape.

    python scripts/benchmark_update.py                                   # navigation-maml and cheetah-vel-maml
    python scripts/benchmark_update.py navigation-maml --repeats 5 --device cuda
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import meta_rl  # noqa: F401  (before torch loads: meta_rl sets the OpenMP spin, see meta_rl/runtime.py)

# isort: split

import torch

from meta_rl.config import load_config, replace_validated
from meta_rl.meta_learner import MetaLearner
from meta_rl.rollout import synchronize
from meta_rl.runtime import keep_freed_memory
from meta_rl.trainer import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the per-task reference: a test oracle
from reference import per_task_trpo_update


def seconds(fn: Callable[[], object], repeats: int, device: torch.device) -> float:
    """Mean wall-clock seconds of ``fn`` over ``repeats`` calls, after one warm-up call."""
    fn()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    synchronize(device)
    return (time.perf_counter() - start) / repeats


def matmul_gflops(tasks: int, rows: int, width: int, device: torch.device) -> float:
    """GFLOP/s of ``bmm([tasks, rows, width], [tasks, width, width])``: the hidden layer's product."""
    a = torch.randn(tasks, rows, width, device=device)
    b = torch.randn(tasks, width, width, device=device)
    duration = seconds(lambda: torch.bmm(a, b), 100 if device.type == "cuda" else 5, device)  # GPU: microseconds
    return 2.0 * tasks * rows * width * width / duration / 1e9


def benchmark(preset: str, repeats: int, reference_repeats: int, device: torch.device, overrides: list[str]) -> None:
    """Print the update times of ``preset`` and the bound analysis."""
    config = load_config(preset, [f"device={device}", *overrides])
    trainer = Trainer(config, tempfile.mkdtemp())
    batch = trainer.sample_meta_batch()
    (support,), query = batch.supports, batch.query  # the reference takes exactly one inner step
    samples = query.observations.shape[0] * query.observations.shape[2]
    print(f"\n{preset}: {config.meta_batch_size} tasks x {config.episodes_per_task} episodes x {config.horizon} "
          f"steps, policy {config.policy.hidden_sizes} {config.policy.activation}, {config.outer.cg_iters} CG "
          f"iterations, device {device}")

    def update(**outer: object) -> Callable[[], object]:
        def run() -> object:
            return trainer.learner.copy(device, **outer).update([support], query)
        return run

    rows = [(f"ours (fvp={config.outer.fvp}, exact)", seconds(update(), repeats, device))]
    for fvp in ("analytic", "gauss_newton", "kl_hessian"):
        if fvp != config.outer.fvp:
            rows.append((f"ours, fvp={fvp} (exact)", seconds(update(fvp=fvp), repeats, device)))
    rows.append(("ours, fvp_subsample=0.25 (tasks)", seconds(update(fvp_subsample=0.25), repeats, device)))
    rows.append(("ours, fvp_subsample=0.25 (episodes)",
                 seconds(update(fvp_subsample=0.25, fvp_subsample_by="episodes"), repeats, device)))
    reference = seconds(lambda: per_task_trpo_update(trainer.learner.copy(device), support, query),
                        reference_repeats, device)
    print(f"{'':36s} {'seconds':>8s} {'vs reference':>13s}")
    for name, value in rows:
        print(f"{name:36s} {value:8.3f} {reference / value:12.1f}x")
    print(f"{'reference (per task, double bwd)':36s} {reference:8.3f}")

    estimator_comparison(trainer, [support], query, repeats, device)

    learner = trainer.learner.copy(device)
    observations = query.task_major("observations")
    forward = seconds(lambda: trainer.policy.forward(observations, learner.params), repeats, device)

    def forward_backward() -> None:
        mean, log_std = trainer.policy.forward(observations, learner.params)
        torch.autograd.grad(mean.sum() + log_std.sum(), list(learner.params.values()))

    pass_time = seconds(forward_backward, repeats, device)
    width = max(config.policy.hidden_sizes)
    gflops = matmul_gflops(config.meta_batch_size, samples, width, device)
    print(f"one policy forward over the query batch: {forward * 1e3:.1f} ms; forward+backward: "
          f"{pass_time * 1e3:.1f} ms")
    print(f"bmm [{config.meta_batch_size}, {samples}, {width}] x [{width}, {width}]: {gflops:.0f} GFLOP/s")
    print(f"ours = {rows[0][1] / pass_time:.0f} forward+backward passes' worth of time")


def estimator_comparison(trainer: Trainer, supports: list, query: object, repeats: int, device: torch.device) -> None:
    """The update with each inner estimator and ProMP's, interleaved round by round on the same episodes."""
    base = trainer.learner
    variants = {f"estimator={name}": (name, base.outer) for name in ("maml", "lvc", "dice")}
    variants["ProMP (outer.optimizer=promp, lvc)"] = ("lvc", replace_validated(base.outer, "outer.", optimizer="promp"))

    def run(estimator: str, outer: object) -> float:
        inner = dataclasses.replace(base.inner, estimator=estimator)
        learner = MetaLearner(base.policy, base.params, inner, outer, device, base.step_sizes)
        synchronize(device)
        start = time.perf_counter()
        learner.update(supports, query)
        synchronize(device)
        return time.perf_counter() - start

    times: dict[str, list[float]] = {name: [] for name in variants}
    for variant in variants.values():
        run(*variant)  # warm-up
    for _ in range(repeats):
        for name, variant in variants.items():
            times[name].append(run(*variant))
    maml = statistics.median(times["estimator=maml"])
    print(f"{'interleaved, ' + str(repeats) + ' rounds':36s} {'median s':>8s} {'vs maml':>13s} {'range':>15s}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:36s} {median:8.3f} {median / maml:12.2f}x {min(values):7.3f}-{max(values):.3f}")


def main() -> None:
    keep_freed_memory()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("presets", nargs="*", default=["navigation-maml", "cheetah-vel-maml"])
    parser.add_argument("--repeats", type=int, default=3, help="timed updates of ours (after a warm-up)")
    parser.add_argument("--reference-repeats", type=int, default=1, help="timed updates of the reference")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--override", action="append", default=[], metavar="key=value",
                        help="config override applied to every preset (repeatable)")
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads)"
          + (f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""))
    for preset in args.presets:
        benchmark(preset, args.repeats, args.reference_repeats, device, args.override)


if __name__ == "__main__":
    main()
