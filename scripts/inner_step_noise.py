#!/usr/bin/env python
"""How much of one inner step is signal: its KL against the same step on shuffled advantages.

For a preset (an untrained policy, as at the start of training) or a run directory (its latest checkpoint), it
collects one support batch on freshly drawn tasks and takes the inner step, as training does. It then takes the
same step once more with each task's advantages shuffled among that task's valid steps, which keeps their values
and removes their relation to the actions: that step is pure sampling noise. If the two steps move the policy
about as far (the KL from the pre- to the post-step policy on the support observations), the step is mostly noise
and a smaller step size or more episodes per task is the remedy. It also prints the support episodes' length,
since episodes that end early leave fewer samples per gradient.

    python scripts/inner_step_noise.py ant-dir-maml meta_batch_size=20 episodes_per_task=10
    python scripts/inner_step_noise.py runs/ant-dir-maml-half-healthy0.05 --step-size 0.05
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import meta_rl  # noqa: F401  (before torch loads: meta_rl sets the OpenMP spin, see meta_rl/runtime.py)

# isort: split

import numpy as np
import torch

from meta_rl.adaptation import expand_to_tasks, step_kl
from meta_rl.api import MetaPolicy
from meta_rl.config import ConfigError, load_config
from meta_rl.episodes import Episodes


def shuffled_advantages(episodes: Episodes, generator: torch.Generator) -> Episodes:
    """A copy of ``episodes`` whose advantages are permuted among each task's valid steps (masked steps stay 0)."""
    advantages = episodes.advantages.clone()  # [T, M, N]
    for task in range(advantages.shape[1]):
        values = advantages[:, task]
        valid = episodes.mask[:, task].bool()
        chosen = values[valid]
        values[valid] = chosen[torch.randperm(chosen.numel(), generator=generator)]
    return dataclasses.replace(episodes, advantages=advantages)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", help="preset name or .yaml file (an untrained policy), or a run directory")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides for a preset, e.g. meta_batch_size=20 (not for a run directory)")
    parser.add_argument("--step-size", type=float, default=None, help="inner step size (default: the config's)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the tasks, the episodes and the shuffle")
    args = parser.parse_args(argv)
    if args.step_size is not None and not args.step_size > 0:
        parser.error(f"--step-size must be > 0, got {args.step_size}")
    try:
        if Path(args.source).is_dir():
            if args.overrides:
                parser.error("overrides apply to a preset, not to a run directory")
            meta = MetaPolicy.load(args.source)
        else:
            meta = MetaPolicy.untrained(load_config(args.source, args.overrides), seed=args.seed)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    config = meta.config
    if config.inner.algorithm != "maml":
        parser.error(f"{args.source}: inner.algorithm is {config.inner.algorithm!r}; this diagnostic takes MAML's "
                     "scalar step")
    step_size = config.inner.step_size if args.step_size is None else args.step_size
    tasks = meta.sample_tasks(config.meta_batch_size, np.random.default_rng(args.seed))
    params = expand_to_tasks(meta.params, len(tasks))
    adapted, log = meta.adapt_tasks(tasks, steps=1, seed=args.seed, schedule=[step_size])
    support = log.episodes[0]
    noise = meta.adapt_on(params, shuffled_advantages(support, torch.Generator().manual_seed(args.seed)), step_size)
    kl, noise_kl = step_kl(meta.policy, params, adapted, support), step_kl(meta.policy, params, noise, support)
    lengths = support.mask.sum(0)  # [M, N]
    ended = (lengths < config.horizon).double().mean().item()
    print(f"{args.source}: {config.env.id}, {len(tasks)} tasks x {config.episodes_per_task} episodes, "
          f"horizon {config.horizon}, inner step {step_size:g} ({config.inner.estimator}), iteration {meta.iteration}")
    print(f"support episodes: mean length {lengths.mean().item():.1f} of {config.horizon} "
          f"(shortest {int(lengths.min().item())}; {ended:.0%} ended early); {int(lengths.sum().item())} steps")
    print(f"KL of the inner step:                   {kl.mean().item():.3g} nats (tasks {kl.min().item():.3g} to "
          f"{kl.max().item():.3g})")
    print(f"KL of the step on shuffled advantages:  {noise_kl.mean().item():.3g} nats")
    print(f"ratio (near 1: the step is mostly noise): {noise_kl.mean().item() / max(kl.mean().item(), 1e-12):.2f}")
    print(f"mean return before / after the step:    {log.returns[0]:.2f} / {log.returns[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
