#!/usr/bin/env python
"""Seconds per meta-iteration of a preset, split into sampling / adaptation / outer update, against a plain
per-task reference in the same run.

The reference does what a straightforward implementation does (the structure of the best-known PyTorch
MAML-RL code): sampling task by task with Gymnasium's ``SyncVectorEnv`` of single environments, adaptation task
by task, and a TRPO update whose Fisher-vector products are double backward passes through the per-task KL
gradients. Both sides use the same episodes sizes, seed, policy and hyper-parameters.

Then the floor of our update and adaptation: each is split into its passes (building the analytic objective and the
meta-gradient, one Fisher-vector product per conjugate-gradient step, one surrogate per line-search trial), each
pass timed alone and its matrix-multiply FLOPs counted (``torch.utils.flop_counter``), against the machine's
batched-matmul throughput on the hidden layer's shape: how far each phase is from what the matmuls alone need.

    python scripts/benchmark_iteration.py                       # navigation-maml, 5 + 2 iterations
    python scripts/benchmark_iteration.py navigation-metasgd --iterations 5 --reference-iterations 1
    python scripts/benchmark_iteration.py cheetah-vel-maml --device cuda   # updates on the GPU, sampling on the CPU

With ``--device cuda`` both sides sample on the CPU and adapt and update on the GPU (as the best-known code does).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import meta_rl  # noqa: F401  (before torch loads: meta_rl sets the OpenMP spin, see meta_rl/runtime.py)

# isort: split

import gymnasium
import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

import meta_rl_envs
from meta_rl.adaptation import adapt
from meta_rl.config import Config, load_config
from meta_rl.episodes import Episodes
from meta_rl.policy import GaussianMLPPolicy, Params
from meta_rl.rollout import process, synchronize
from meta_rl.runtime import keep_freed_memory
from meta_rl.trainer import Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_update import matmul_gflops, seconds

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the per-task reference: a test oracle
from reference import per_task_trpo_update


def per_task_collect(policy: GaussianMLPPolicy, params: list[Params], tasks: np.ndarray, config: Config,
                     generator: torch.Generator) -> Episodes:
    """Reference sampling: one SyncVectorEnv of N single envs per task, tasks one after another."""
    n, horizon = config.episodes_per_task, config.horizon
    columns = []
    for task, task_params in zip(tasks, params, strict=True):
        envs = gymnasium.vector.SyncVectorEnv(
            [lambda: gymnasium.make(config.env.id, max_episode_steps=horizon, **config.env.kwargs)] * n
        )
        for env in envs.envs:
            env.unwrapped.set_task(task)
        obs, _ = envs.reset(seed=0)
        done = np.zeros(n, dtype=bool)
        rows = {k: [] for k in ("observations", "actions", "rewards", "mask", "log_probs")}
        with torch.no_grad():
            for _ in range(horizon):
                obs_t = torch.as_tensor(obs, dtype=torch.float32)
                noise = torch.randn(n, policy.action_dim, generator=generator)
                action, log_prob = policy.sample(obs_t, task_params, noise)
                alive = torch.from_numpy(~done).float()
                obs_next, reward, terminated, truncated, _ = envs.step(policy.to_env(action.numpy()))
                rows["observations"].append(obs_t)
                rows["actions"].append(action)
                rows["rewards"].append(torch.as_tensor(reward, dtype=torch.float32) * alive)
                rows["mask"].append(alive)
                rows["log_probs"].append(log_prob)
                done |= terminated | truncated
                obs = obs_next
        envs.close()
        columns.append({k: torch.stack(v) for k, v in rows.items()})
    batch = Episodes(**{k: torch.stack([c[k] for c in columns], dim=1) for k in columns[0]})
    return process(batch, config)


def reference_iteration(trainer: Trainer) -> dict[str, float]:
    """One meta-iteration the plain way (loops over tasks); same sizes and hyper-parameters as ``trainer``.
    Sampling runs on the CPU, adaptation and the update where ``trainer``'s learner is."""
    config, learner, policy = trainer.config, trainer.learner, trainer.policy
    device = trainer.device
    timings = {}
    tasks = trainer.sampler.envs.sample_tasks(config.meta_batch_size, trainer.rng)
    params = {k: v.detach() for k, v in learner.params.items()}
    tick = time.perf_counter()
    on_cpu = {k: v.cpu() for k, v in params.items()}
    support = per_task_collect(policy, [on_cpu] * len(tasks), tasks, config, trainer.generator).to(device)
    timings["sampling"] = time.perf_counter() - tick
    tick = time.perf_counter()
    adapted = [
        {k: v[0] for k, v in adapt(policy, params, support.select_tasks(slice(m, m + 1)), learner.step_size()).items()}
        for m in range(len(tasks))
    ]
    synchronize(device)
    timings["adaptation"] = time.perf_counter() - tick
    tick = time.perf_counter()
    adapted = [{k: v.cpu() for k, v in task_params.items()} for task_params in adapted]
    query = per_task_collect(policy, adapted, tasks, config, trainer.generator).to(device)
    timings["sampling"] += time.perf_counter() - tick
    tick = time.perf_counter()
    per_task_trpo_update(learner, support, query)
    synchronize(device)
    timings["outer_update"] = time.perf_counter() - tick
    timings["env_steps"] = float(support.num_steps + query.num_steps)
    return timings


def matmul_flops(fn: Callable[[], object]) -> float:
    """Matrix-multiply FLOPs of one call of ``fn`` (what torch's FLOP counter counts: mm, bmm, addmm, ...)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def print_floor(trainer: Trainer, stats: list[dict[str, float]]) -> None:
    """Time and count the passes of one update and one adaptation on a fresh meta-batch; print them against the
    matmul floor (FLOPs / measured batched-matmul throughput)."""
    config, learner, device = trainer.config, trainer.learner, trainer.device
    if config.outer.fvp != "analytic" or config.outer.fvp_subsample < 1:
        print("\n(the floor covers the exact analytic update: outer.fvp=analytic, outer.fvp_subsample=1)")
        return
    batch = trainer.sample_meta_batch()
    supports, query = batch.supports, batch.query
    algorithm = learner.algorithm
    flat = torch.cat([t.detach().reshape(-1) for t in learner.meta_parameters()])
    vector = torch.randn(flat.shape, dtype=flat.dtype, device=device)
    objective = algorithm.analytic_objective(supports, query)

    def gradient() -> None:
        algorithm.analytic_objective(supports, query).meta_gradient()

    def trial() -> None:
        with torch.no_grad():
            learner.surrogate(supports, query)

    def adaptation() -> None:
        with torch.no_grad():
            learner.adapt(supports)

    trials = 1.0 + float(np.mean([row["trpo/backtracks"] for row in stats]))
    passes = [("objective + meta-gradient", 1.0, gradient), ("Fisher-vector product (CG step)",
              float(config.outer.cg_iters), lambda: objective(vector)), ("line-search trial", trials, trial)]
    width = max(config.policy.hidden_sizes)
    samples = query.observations.shape[0] * query.observations.shape[2]
    gflops = matmul_gflops(config.meta_batch_size, samples, width, device)
    print(f"\nfloor (bmm [{config.meta_batch_size}, {samples}, {width}] x [{width}, {width}]: {gflops:.0f} GFLOP/s)")
    print(f"{'pass':34s} {'count':>6s} {'ms each':>8s} {'GFLOP':>7s} {'floor ms':>9s} {'x floor':>8s}")
    total = floor_total = 0.0
    for name, count, fn in passes:
        each, flops = seconds(fn, 3, device), matmul_flops(fn)
        floor = flops / (gflops * 1e9)
        total, floor_total = total + count * each, floor_total + count * floor
        print(f"{name:34s} {count:6.1f} {each * 1e3:8.1f} {flops / 1e9:7.2f} {floor * 1e3:9.1f} {each / floor:7.1f}x")
    measured = float(np.mean([row["time/outer_update"] for row in stats]))
    print(f"{'update: sum of the passes':34s} {'':6s} {total * 1e3:8.1f} {'':7s} {floor_total * 1e3:9.1f} "
          f"{total / floor_total:7.1f}x")
    print(f"{'update as measured in training':34s} {'':6s} {measured * 1e3:8.1f} {'':7s} {'':9s} "
          f"{measured / floor_total:7.1f}x")
    each, flops = seconds(adaptation, 3, device), matmul_flops(adaptation)
    print(f"{'adaptation (inner step, no graph)':34s} {1.0:6.1f} {each * 1e3:8.1f} {flops / 1e9:7.2f} "
          f"{flops / gflops / 1e6:9.1f} {each / (flops / (gflops * 1e9)):7.1f}x")


def main() -> None:
    keep_freed_memory()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset", nargs="?", default="navigation-maml")
    parser.add_argument("--iterations", type=int, default=5, help="timed iterations of ours (after 1 warm-up)")
    parser.add_argument("--reference-iterations", type=int, default=2, help="timed iterations of the reference")
    parser.add_argument("--no-floor", action="store_true", help="skip the floor analysis of the update")
    parser.add_argument("--device", default="cpu", help="where both sides adapt and update: cpu, cuda or cuda:N")
    parser.add_argument("overrides", nargs="*", default=[], metavar="key=value")
    args = parser.parse_intermixed_args()  # overrides may come before or after the options
    if "=" in args.preset:  # only overrides were given
        args.overrides, args.preset = [args.preset, *args.overrides], "navigation-maml"
    config = load_config(args.preset, [*args.overrides, f"device={args.device}"])
    if config.outer.optimizer != "trpo" or config.inner.num_steps != 1:
        parser.error("the reference covers one-step TRPO presets")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), meta_rl_envs from {meta_rl_envs.__file__}"
          + (f", {torch.cuda.get_device_name(config.device)}" if config.device.startswith("cuda") else ""))
    print(f"preset {args.preset}: {config.meta_batch_size} tasks x {config.episodes_per_task} episodes x "
          f"horizon {config.horizon}, {config.policy.hidden_sizes} {config.policy.activation} policy, "
          f"CG {config.outer.cg_iters} iterations")

    trainer = Trainer(config, "/tmp/meta_rl_benchmark")
    trainer.train_iteration()  # warm-up
    ours = [trainer.train_iteration() for _ in range(args.iterations)]
    reference = [reference_iteration(trainer) for _ in range(args.reference_iterations)]

    def mean(rows: list[dict], key: str) -> float:
        return float(np.mean([r[key] for r in rows]))

    our = {k: mean(ours, f"time/{k}") for k in ("sampling", "adaptation", "outer_update", "iteration")}
    our_steps = mean(ours, "perf/env_steps_per_second")
    ref = {k: mean(reference, k) for k in ("sampling", "adaptation", "outer_update")}
    ref["iteration"] = sum(ref.values())
    ref_steps = mean(reference, "env_steps") / ref["sampling"]
    print(f"\n{'seconds per meta-iteration':28s} {'meta_rl':>10s} {'reference':>10s} {'speed-up':>9s}")
    for key in ("sampling", "adaptation", "outer_update", "iteration"):
        print(f"{key:28s} {our[key]:10.3f} {ref[key]:10.3f} {ref[key] / our[key]:8.1f}x")
    print(f"{'env steps per second':28s} {our_steps:10.0f} {ref_steps:10.0f} {our_steps / ref_steps:8.1f}x")
    print(f"(meta_rl: mean of {args.iterations} iterations after a warm-up; reference: {args.reference_iterations})")
    if not args.no_floor:
        print_floor(trainer, ours)
    trainer.close()


if __name__ == "__main__":
    main()
