#!/usr/bin/env python
"""How good a TRPO meta-step each Fisher approximation takes, on fresh episodes of a trained run.

``outer.fvp_subsample`` and ``outer.cg_iters`` trade the quality of the natural-gradient step for time. This
restores a run's checkpoint, samples ``--batches`` meta-batches with its meta-parameters, and on each takes one
TRPO update per variant from the same start (nothing is saved). Per variant it prints the mean over batches of:
the update's seconds, the surrogate improvement it reached within ``max_kl`` (and as a fraction of the first
variant's), the line search's accepted step fraction, the largest single task's KL after the step (the trust region
bounds the mean over tasks), and the cosine between its step and the first variant's.

    python research/fisher_quality.py runs/cheetah-dir-maml-paper                  # exact vs 0.25 and others
    python research/fisher_quality.py runs/X/checkpoint-00250.pt --variants 1:10,0.25:10,0.25:10:episodes --batches 4
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import torch

from meta_rl.checkpoint import CheckpointError, load_checkpoint
from meta_rl.config import ConfigError, config_from_dict
from meta_rl.trainer import Trainer
from meta_rl.trpo import flatten

Variant = tuple[float, int, str]  # (fvp_subsample, cg_iters, fvp_subsample_by)


def parse_variants(text: str) -> list[Variant]:
    """``"1:10,0.25:10,0.25:10:episodes"`` -> ``[(1.0, 10, "tasks"), (0.25, 10, "tasks"), (0.25, 10, "episodes")]``:
    fvp_subsample in (0, 1], cg_iters >= 1, and what the subsample keeps (tasks by default, or episodes)."""
    variants = []
    for item in text.split(","):
        fields = item.split(":")
        try:
            if len(fields) not in (2, 3):
                raise ValueError
            variant = (float(fields[0]), int(fields[1]), fields[2] if len(fields) == 3 else "tasks")
        except ValueError:
            raise ConfigError(f"--variants item {item!r} must look like SUBSAMPLE:CG_ITERS[:tasks|episodes], "
                              "e.g. 0.25:10 or 0.25:10:episodes") from None
        if not (0.0 < variant[0] <= 1.0 and variant[1] >= 1 and variant[2] in ("tasks", "episodes")):
            raise ConfigError(f"--variants item {item!r}: need 0 < SUBSAMPLE <= 1, CG_ITERS >= 1, and tasks or "
                              "episodes")
        variants.append(variant)
    return variants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="a run directory (its latest checkpoint) or a checkpoint file")
    parser.add_argument("--variants", default="1:10,1:5,0.5:10,0.5:5,0.25:10,0.25:10:episodes",
                        help="comma-separated FVP_SUBSAMPLE:CG_ITERS[:tasks|episodes] (what the subsample keeps, "
                             "outer.fvp_subsample_by); the first is the one compared against")
    parser.add_argument("--batches", type=int, default=2, help="fresh meta-batches to average over")
    parser.add_argument("--threads", type=int, default=0, help="torch and sampler threads (0: every core)")
    args = parser.parse_args()
    try:
        variants = parse_variants(args.variants)
    except ConfigError as error:
        parser.error(str(error))
    overrides = {"torch_threads": args.threads, "sampler_threads": args.threads}
    try:
        state = load_checkpoint(args.checkpoint)
    except CheckpointError as error:
        parser.error(str(error))
    config = config_from_dict({**state["config"], **overrides})
    if config.outer.optimizer != "trpo":
        parser.error(f"{args.checkpoint} uses outer.optimizer={config.outer.optimizer!r}; this compares TRPO steps, "
                     "so it needs outer.optimizer=trpo")
    trainer = Trainer(config, tempfile.mkdtemp())  # never written
    trainer.load_state_dict(state)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads)")
    print(f"{args.checkpoint}: iteration {trainer.iteration}, {trainer.config.meta_batch_size} tasks x "
          f"{trainer.config.episodes_per_task} episodes, max_kl {trainer.config.outer.max_kl}")

    rows: dict[Variant, list[tuple[float, float, float, float, float]]] = {v: [] for v in variants}
    start = flatten([t.detach() for t in trainer.learner.meta_parameters()])
    for _ in range(args.batches):
        batch = trainer.sample_meta_batch()
        reference_step = None
        for variant in variants:
            subsample, cg_iters, by = variant
            twin = trainer.learner.copy(fvp_subsample=subsample, cg_iters=cg_iters, fvp_subsample_by=by)
            tick = time.perf_counter()
            stats = twin.update(batch.supports, batch.query)
            seconds = time.perf_counter() - tick
            step = flatten([t.detach() for t in twin.meta_parameters()]) - start
            reference_step = step if reference_step is None else reference_step
            norms = step.norm() * reference_step.norm()
            cosine = float(step @ reference_step / norms) if norms > 0 else float("nan")
            improvement = stats["losses/surrogate_before"] - stats["losses/surrogate_after"]
            rows[variant].append((seconds, improvement, stats["trpo/step_fraction"], stats["losses/max_task_kl"],
                                  cosine))
    trainer.close()

    reference_improvement = sum(r[1] for r in rows[variants[0]]) / args.batches
    print(f"{'fvp_subsample':>13s} {'by':>8s} {'cg_iters':>8s} {'seconds':>8s} {'improvement':>11s} {'vs first':>8s} "
          f"{'step fraction':>13s} {'max task KL':>11s} {'cosine':>6s}")
    for (subsample, cg_iters, by), results in rows.items():
        seconds, improvement, fraction, max_task_kl, cosine = (
            sum(column) / len(results) for column in zip(*results, strict=True)
        )
        print(f"{subsample:13.2f} {by if subsample < 1 else '':>8s} {cg_iters:8d} {seconds:8.2f} {improvement:11.5f} "
              f"{improvement / reference_improvement:8.2f} {fraction:13.3f} {max_task_kl:11.4f} {cosine:6.3f}")


if __name__ == "__main__":
    main()
