#!/usr/bin/env python
"""Seconds per meta-iteration of one training alone, then of several started at once on the same machine.

Each run is a separate process (what a user gets from two ``meta-rl train`` commands) that builds the preset's
trainer, runs one warm-up iteration and times ``--iterations`` more. The runs of the concurrent phase start
together and time the same number of iterations, so they overlap for most of it (nothing holds a run that gets
ahead; the wall time printed covers the whole phase). The slowdown printed is each concurrent run's seconds per
iteration over the solo run's.

    python scripts/benchmark_concurrent.py                                # navigation-metasgd, 1 then 2 runs
    python scripts/benchmark_concurrent.py --env META_RL_DEFAULT_OPENMP=1  # libgomp's own spin (300,000 rounds)
    python scripts/benchmark_concurrent.py cheetah-vel-maml torch_threads=1 --iterations 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

PHASES = ("sampling", "adaptation", "outer_update", "iteration")


def worker(preset: str, overrides: list[str], iterations: int) -> None:
    """Time one training in this process; prints one JSON line of mean seconds per phase."""
    import meta_rl  # noqa: F401  (before torch loads: meta_rl sets the OpenMP spin, see meta_rl/runtime.py)

    # isort: split
    import torch

    from meta_rl.config import load_config
    from meta_rl.runtime import keep_freed_memory
    from meta_rl.trainer import Trainer

    keep_freed_memory()
    config = load_config(preset, [*overrides, "device=cpu"])
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(config, run_dir)
        trainer.train_iteration()  # warm-up
        rows = [trainer.train_iteration() for _ in range(iterations)]
        trainer.close()
    means = {phase: float(np.mean([row[f"time/{phase}"] for row in rows])) for phase in PHASES}
    spin = os.environ.get("GOMP_SPINCOUNT", "libgomp's default")
    if "OMP_WAIT_POLICY" in os.environ:
        spin = f"{spin}, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}"
    print(json.dumps({"torch_threads": torch.get_num_threads(), "spin": spin, **means}), flush=True)


def run_together(count: int, command: list[str], env: dict[str, str]) -> tuple[list[dict[str, float]], float]:
    """Start ``count`` worker processes at once; their results and the wall time until the last one ends."""
    start = time.perf_counter()
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, env=env, text=True) for _ in range(count)]
    outputs = [process.communicate()[0] for process in processes]
    wall = time.perf_counter() - start
    for process in processes:
        if process.returncode != 0:
            raise SystemExit(f"a worker failed with exit status {process.returncode}: {' '.join(command)}")
    return [json.loads(output.strip().splitlines()[-1]) for output in outputs], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset", nargs="?", default="navigation-metasgd")
    parser.add_argument("overrides", nargs="*", default=[], metavar="key=value", help="config overrides")
    parser.add_argument("--iterations", type=int, default=8, help="timed iterations per run (after 1 warm-up)")
    parser.add_argument("--runs", type=int, default=2, help="runs started at once in the concurrent phase")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="environment variable for the workers (repeatable), e.g. OMP_WAIT_POLICY=ACTIVE")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if "=" in args.preset:  # only overrides were given
        args.overrides, args.preset = [args.preset, *args.overrides], "navigation-metasgd"
    if args.iterations < 1 or args.runs < 2:
        parser.error(f"need --iterations >= 1 and --runs >= 2, got {args.iterations} and {args.runs}")
    if args.worker:
        worker(args.preset, args.overrides, args.iterations)
        return
    env = dict(os.environ)
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--env takes NAME=VALUE, got {item!r}")
        env[name] = value
    command = [sys.executable, os.path.abspath(__file__), args.preset, *args.overrides,
               "--iterations", str(args.iterations), "--worker"]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; preset {args.preset} "
          f"{' '.join(args.overrides)}; {' '.join(args.env) or 'default environment'}")
    (solo,), solo_wall = run_together(1, command, env)
    together, together_wall = run_together(args.runs, command, env)
    print(f"torch threads per run: {solo['torch_threads']}, OpenMP spin count (GOMP_SPINCOUNT): {solo['spin']}")
    print(f"\n{'seconds per meta-iteration':28s} {'solo':>8s}" + "".join(f" {f'run {i + 1}':>8s}"
                                                                  for i in range(args.runs)))
    for phase in PHASES:
        print(f"{phase:28s} {solo[phase]:8.3f}" + "".join(f" {row[phase]:8.3f}" for row in together))
    slowdowns = [row["iteration"] / solo["iteration"] for row in together]
    print(f"{'slowdown (iteration)':28s} {'':8s}" + "".join(f" {s:7.2f}x" for s in slowdowns))
    print(f"\nwall: solo {solo_wall:.1f} s, {args.runs} at once {together_wall:.1f} s "
          f"({together_wall / solo_wall:.2f}x for {args.runs}x the work); worst slowdown {max(slowdowns):.2f}x")


if __name__ == "__main__":
    main()
