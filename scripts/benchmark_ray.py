#!/usr/bin/env python
"""Sampling on Ray against the local backend, in one run, and a model of it on more machines.

Measured here (interleaved, ``--repeats`` times, medians with the range): env steps per second of one collect of a
preset's batch (default half-cheetah velocity at the paper's rate, 40 tasks x 20 episodes x 200 steps) by

1. the local backend (:class:`~meta_rl.sampler.Sampler`, every core stepping physics);
2. Ray with 1 worker holding every core (``sampler.cpus_per_worker`` = the cores);
3. Ray with 2 workers of one core each;

and for the Ray sides where a collect's time goes (:class:`~meta_rl.ray_sampler.CollectStats`): serialising the
parameters, the workers' own stepping, fetching and joining their arrays, and the rest (scheduling, latency),
with the bytes sent and received. Every collect is checked to give the local backend's episodes bit for bit.

From those figures, a model of a collect on K machines like this one (one worker per machine holding its cores,
the tasks split evenly): ``T(K) = driver + bytes / bandwidth + stepping(1) * ceil(M / K) / M``, where ``driver`` is
the measured fixed cost of a collect (serialising, joining, latency), the bytes are the measured ones (each machine
gets its tasks' parameters, the episodes all come to the driver), and the bandwidth of the driver's link is
an assumption (1 and 10 Gbit/s). The same model is printed for a Meta-World batch (40 tasks x 20 episodes x 500
steps, observation 39, action 4) from an assumed stepping rate, 2,700 steps/s per core for one ``reach-v3`` env as
measured in the Meta-World issue, and the driver's cost of receiving replies of that size, measured here.
Efficiency at K machines is ``T(1) / (K * T(K))``.

    python scripts/benchmark_ray.py                                  # half-cheetah velocity, the paper's batch
    python scripts/benchmark_ray.py --preset navigation-maml         # 2D navigation (driver-bound: tiny steps)
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time

import meta_rl  # noqa: F401  (before torch loads: meta_rl sets the OpenMP spin, see meta_rl/runtime.py)

# isort: split

import numpy as np
import ray
import torch

from meta_rl.config import load_config
from meta_rl.ray_sampler import FIELDS, CollectStats, RaySampler
from meta_rl.rollout import make_policy
from meta_rl.sampler import Sampler
from meta_rl.streams import EpisodeStreams

GBIT = 1e9 / 8  # bytes per second of one Gbit/s
METAWORLD = {"tasks": 40, "episodes": 20, "horizon": 500, "obs_dim": 39, "action_dim": 4,
             "steps_per_s_per_core": 2700.0, "params": 2 * (39 * 100 + 100 + 100 * 100 + 100 + 100 * 4 + 4) + 4}
"""The Meta-World batch the model is printed for: ML1's 40 tasks x 20 episodes of 500 steps, a 100-100 policy per
task (task-batched parameters), and one core's stepping rate for ``reach-v3`` from the Meta-World issue."""


@ray.remote
def make_episode_arrays(horizon: int, tasks: int, episodes: int, obs_dim: int, action_dim: int) -> dict:
    """A worker's reply of the given size (what a collect returns), and the seconds making it took."""
    start = time.perf_counter()
    shape = (horizon, tasks, episodes)
    arrays = {"observations": np.ones((*shape, obs_dim), np.float32), "actions": np.ones((*shape, action_dim),
              np.float32), "rewards": np.ones(shape, np.float32), "log_probs": np.ones(shape, np.float32),
              "mask": np.ones(shape, np.bool_)}
    arrays["seconds"] = time.perf_counter() - start
    return arrays


def driver_seconds(horizon: int, tasks: int, episodes: int, obs_dim: int, action_dim: int, workers: int = 8,
                   repeats: int = 3) -> float:
    """The driver's cost of receiving a collect of this size from ``workers`` workers on this machine: the
    round trip of replies of that size, fetched and joined as :class:`RaySampler` does, less making them."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        parts = ray.get([make_episode_arrays.remote(horizon, tasks // workers, episodes, obs_dim, action_dim)
                         for _ in range(workers)], timeout=300)
        made = max(part.pop("seconds") for part in parts)
        for name in parts[0]:
            np.concatenate([part[name] for part in parts], axis=1)
        times.append(time.perf_counter() - start - made)
    return statistics.median(times)


def median_range(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def collect_bytes(horizon: int, tasks: int, episodes: int, obs_dim: int, action_dim: int) -> int:
    """Bytes of the arrays a collect returns: float32 observations, actions, rewards and log-probs, a bool mask."""
    return horizon * tasks * episodes * (4 * (obs_dim + action_dim + 2) + 1)


def model_table(name: str, stepping_1: float, driver_s: float, bytes_sent: int, bytes_received: int,
                tasks: int, machines: list[int]) -> None:
    """Print the modelled collect time, throughput and efficiency on K machines, for two link speeds."""
    print(f"\nmodel, {name}: stepping on one machine {stepping_1:.3f} s, driver fixed cost {driver_s * 1000:.1f} ms, "
          f"{bytes_sent / 1e6:.2f} MB of parameters, {bytes_received / 1e6:.1f} MB of episodes")
    print(f"{'machines':>8} | {'1 Gbit/s: collect s':>19} {'efficiency':>10} | {'10 Gbit/s: collect s':>20} "
          f"{'efficiency':>10}")
    for k in machines:
        cells = []
        for bandwidth in (1 * GBIT, 10 * GBIT):
            def collect_s(count: int, bandwidth: float = bandwidth) -> float:
                network = (bytes_sent + bytes_received) / bandwidth  # per-task parameters: split, not copied
                return driver_s + network + stepping_1 * math.ceil(tasks / count) / tasks
            efficiency = collect_s(1) / (k * collect_s(k))
            cells.append(f"{collect_s(k):>19.3f} {efficiency:>10.0%}")
        print(f"{k:>8} | {cells[0]} | {cells[1]:>31}")
    for bandwidth, label in ((1 * GBIT, "1 Gbit/s"), (10 * GBIT, "10 Gbit/s")):
        fixed = driver_s + bytes_received / bandwidth
        # the driver's share reaches half of a collect where the stepping per machine falls to the fixed cost
        print(f"  {label}: the driver's fixed {fixed:.3f} s per collect equals the stepping at "
              f"K = {stepping_1 / max(fixed, 1e-9):.1f} machines")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="cheetah-vel-maml-paper", help="whose batch and env (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="timed collects per side, interleaved")
    parser.add_argument("--machines", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32],
                        help="machine counts for the model")
    args = parser.parse_args()

    cores = os.cpu_count() or 1
    config = load_config(args.preset, [])
    policy = make_policy(config)
    generator = torch.Generator().manual_seed(0)
    tasks_n, episodes_n, horizon = config.meta_batch_size, config.episodes_per_task, config.horizon
    params = policy.init_params(generator)
    params = {k: v.expand(tasks_n, *v.shape).clone() for k, v in params.items()}  # per task, as after adaptation
    sampler_args = (config.env.id, config.env.kwargs, tasks_n, episodes_n, horizon, policy)
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores, torch {torch.__version__}, "
          f"ray {ray.__version__}")
    print(f"{args.preset}: {config.env.id}, {tasks_n} tasks x {episodes_n} episodes x {horizon} steps "
          f"= {tasks_n * episodes_n * horizon:,} env steps per collect\n")

    # twice the cores: the sides' workers all exist at once (interleaved), but only one side steps at a time
    ray.init(num_cpus=2 * cores, include_dashboard=False, log_to_driver=False, _system_config={"worker_niceness": 0})
    sides: dict[str, Sampler | RaySampler] = {
        "local": Sampler(*sampler_args, num_threads=cores),
        "ray, 1 worker": RaySampler(*sampler_args, num_threads=cores, num_workers=1, cpus_per_worker=cores),
        f"ray, {cores} workers": RaySampler(*sampler_args, num_threads=1, num_workers=cores, cpus_per_worker=1),
    }
    tasks = sides["local"].sample_tasks(tasks_n, np.random.default_rng(0))
    steps = tasks_n * episodes_n * horizon
    rates: dict[str, list[float]] = {name: [] for name in sides}
    stats: dict[str, list[CollectStats]] = {name: [] for name in sides if name != "local"}
    try:
        for repeat in range(args.repeats + 1):  # the first round warms up (worker start-up, caches)
            reference = None
            for name, sampler in sides.items():
                streams = EpisodeStreams(0, (0, repeat))
                start = time.perf_counter()
                batch = sampler.collect(params, tasks, streams)
                seconds = time.perf_counter() - start
                if reference is None:
                    reference = batch
                for field in FIELDS:  # every side must give the local backend's episodes
                    assert torch.equal(getattr(batch, field), getattr(reference, field)), (name, field)
                if repeat:
                    rates[name].append(steps / seconds)
                    if isinstance(sampler, RaySampler):
                        stats[name].append(sampler.last_collect)
    finally:
        for sampler in sides.values():
            sampler.close()
    try:  # the samplers' workers are gone, so their CPUs are free for the reply-making tasks
        mw = METAWORLD  # the driver's cost of a Meta-World collect's replies, measured on this machine
        mw_driver_s = driver_seconds(mw["horizon"], mw["tasks"], mw["episodes"], mw["obs_dim"], mw["action_dim"])
    finally:
        ray.shutdown()

    local_rate = statistics.median(rates["local"])
    print(f"{'side':<16} {'env steps/s: median (range)':>30} {'vs local':>9} | "
          f"{'put ms':>7} {'workers s':>10} {'join ms':>8} {'rest ms':>8} {'MB sent':>8} {'MB recv':>8}")
    for name, values in rates.items():
        row = f"{name:<16} {median_range(values):>30} {statistics.median(values) / local_rate:>9.0%}"
        if name in stats:
            runs = stats[name]
            rest = [s.wall_s - s.put_s - max(s.worker_s) - s.join_s for s in runs]
            row += (f" | {statistics.median(s.put_s for s in runs) * 1000:>7.1f} "
                    f"{statistics.median(max(s.worker_s) for s in runs):>10.3f} "
                    f"{statistics.median(s.join_s for s in runs) * 1000:>8.1f} {statistics.median(rest) * 1000:>8.1f} "
                    f"{runs[0].bytes_sent / 1e6:>8.2f} {runs[0].bytes_received / 1e6:>8.1f}")
        print(row)
    print("(put: parameters into the object store; workers: the slowest worker's own stepping; join: fetching and "
          "joining the shards; rest: scheduling and latency)")

    one = stats["ray, 1 worker"]
    stepping_1 = statistics.median(max(s.worker_s) for s in one)
    driver_s = statistics.median(s.wall_s - max(s.worker_s) for s in one)
    model_table(f"{args.preset} (measured here)", stepping_1, driver_s, one[0].bytes_sent, one[0].bytes_received,
                tasks_n, args.machines)
    mw_steps = mw["tasks"] * mw["episodes"] * mw["horizon"]
    mw_received = collect_bytes(mw["horizon"], mw["tasks"], mw["episodes"], mw["obs_dim"], mw["action_dim"])
    model_table(f"Meta-World ML1 batch, {mw['tasks']} x {mw['episodes']} x {mw['horizon']} (assumed "
                f"{mw['steps_per_s_per_core']:,.0f} steps/s per core)",
                mw_steps / (mw["steps_per_s_per_core"] * cores), mw_driver_s,
                mw["params"] * mw["tasks"] * 4, mw_received, mw["tasks"], args.machines)

if __name__ == "__main__":
    main()
