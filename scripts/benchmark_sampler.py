#!/usr/bin/env python
"""Env steps per second of a MuJoCo family's sampling, four ways in one run, and their ratios.

1. raw batched physics: ``mujoco.rollout`` stepping all M*N sub-envs (one model per task where tasks change it),
   ``frame_skip`` physics steps per env step,
   with nothing else (no observations, rewards or policy): the ceiling;
2. our native vector env alone (``make_task_vec``): physics plus observations and rewards;
3. our :class:`~meta_rl.sampler.Sampler` with the policy in the loop, as training runs it;
4. Gymnasium's ``SyncVectorEnv`` of the single env (fewer envs: it is slow).

1, 2 and 4 replay the actions the sampler's untrained policy took in 3 (from the same start states for 1 and 2),
because the cost of a physics step depends on the contacts the actions lead to. 1-3 are timed ``--repeats``
times, interleaved (this machine's speed drifts), and their medians are shown with the range. The sampler's time
per env step is also split into the physics, the rest of the vector env's step and everything outside the env
(the policy call and the sampler's own work), next to one policy forward pass timed alone.

    python scripts/benchmark_sampler.py                          # half-cheetah, 40 tasks x 20 episodes x 200 steps
    python scripts/benchmark_sampler.py --env meta_rl/AntDir-v0 --threads 1 --horizon 100
    python scripts/benchmark_sampler.py --frame-skip 1                 # the paper's control rate (-paper presets)
    python scripts/benchmark_sampler.py --frame-skip 1 --env-kwarg speed_measure=centre_of_mass   # rllab's speed
    python scripts/benchmark_sampler.py --env all                      # every MuJoCo family, one after another
    python scripts/benchmark_sampler.py --env meta_rl/MetaWorldML1-v0 --tasks 10 --episodes 2 --horizon 500

Meta-World steps in Python (its observations and rewards are Python code per env), so there is no batched physics
to compare with: its run times our sampler, our vector env replaying the sampler's actions, and Meta-World's own
envs of the same tasks in Gymnasium's ``SyncVectorEnv`` replaying them too, interleaved.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import meta_rl  # noqa: F401  (before torch loads: meta_rl sets the OpenMP spin, see meta_rl/runtime.py)

# isort: split

import gymnasium
import mujoco
import numpy as np
import torch
import yaml
from mujoco import rollout

from meta_rl.policy import GaussianMLPPolicy, Params
from meta_rl.runtime import keep_freed_memory
from meta_rl.sampler import Sampler
from meta_rl.sampler import _single_torch_thread as single_torch_thread  # the sampler's own setting
from meta_rl.streams import EpisodeStreams
from meta_rl_envs.mujoco_vector import default_num_threads


def raw_physics(env: gymnasium.vector.VectorEnv, seed: int, actions: np.ndarray, threads: int) -> float:
    """Steps/s of bare ``mujoco.rollout`` replaying ``actions`` ``[T, num_envs, A]`` from the states
    ``env.reset(seed=seed)`` gives: ``T`` calls of ``frame_skip`` physics steps each, controls ready beforehand."""
    native = env.unwrapped
    native.reset(seed=seed)
    model, frame_skip, num_envs = native.model, native.frame_skip, native.num_envs
    state = native._state.copy()  # [num_envs, nstate] full physics states after the reset
    models = list(native._models)  # one per sub-env: the tasks' own where tasks change the model
    datas = [mujoco.MjData(model) for _ in range(threads)]
    trajectory = np.empty((num_envs, frame_skip, state.shape[1]))
    sensordata = np.empty((num_envs, frame_skip, model.nsensordata))
    low, high = native.single_action_space.low, native.single_action_space.high
    controls = np.clip(actions, low, high)[:, :, None, :].repeat(frame_skip, axis=2)
    with rollout.Rollout(nthread=threads if threads > 1 else 0) as runner:
        start = time.perf_counter()
        for control in controls:
            runner.rollout(models, datas, state, control, nstep=frame_skip, state=trajectory,
                           sensordata=sensordata, skip_checks=True)
            state[:] = trajectory[:, -1]
        return num_envs * len(actions) / (time.perf_counter() - start)


def vector_env(env: gymnasium.vector.VectorEnv, seed: int, actions: np.ndarray) -> float:
    """Steps/s of ``env.step`` replaying ``actions`` ``[T, num_envs, A]`` after ``reset(seed=seed)``."""
    env.reset(seed=seed)
    start = time.perf_counter()
    for action in actions:
        env.step(action)
    return env.num_envs * len(actions) / (time.perf_counter() - start)


class StepTimer:
    """Wraps a callable and adds the seconds spent in it to ``seconds`` (for splitting the sampler's time)."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn, self.seconds, self.calls = fn, 0.0, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        start = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def policy_alone(ours: Sampler, params: Params, observations: torch.Tensor) -> float:
    """Seconds of one policy forward pass over one step's observations ``[M, N, obs]``, back to back on one
    torch thread, as the sampler runs it but with no physics between the calls."""
    with torch.no_grad(), single_torch_thread():
        ours.policy.forward(observations, params)
        start = time.perf_counter()
        for _ in range(100):
            ours.policy.forward(observations, params)
        return (time.perf_counter() - start) / 100


def make_sampler(env_id: str, env_kwargs: dict, tasks: int, episodes: int, horizon: int, threads: int,
                 hidden: list[int]) -> tuple[Sampler, Params, np.ndarray]:
    """Our sampler with an untrained ReLU policy's parameters and a task batch, warmed up by one collect."""
    env = gymnasium.make(env_id, **env_kwargs).unwrapped
    policy = GaussianMLPPolicy(env.observation_space.shape[0], env.action_space.shape[0], hidden, "relu")
    params = policy.init_params(torch.Generator().manual_seed(0))
    ours = Sampler(env_id, env_kwargs, tasks, episodes, horizon, policy, num_threads=threads)
    task_batch = ours.envs.sample_tasks(tasks, np.random.default_rng(0))
    ours.collect(params, task_batch, EpisodeStreams(0, (0,)))
    return ours, params, task_batch


def timed_collect(ours: Sampler, params: Params, task_batch: np.ndarray
                  ) -> tuple[float, dict[str, float], int, np.ndarray, torch.Tensor, float]:
    """Sub-env physics steps per second of one :meth:`Sampler.collect` (policy in the loop; sub-envs whose episode
    ended are not stepped, so this counts the physics it did); the seconds per env step in the physics
    (``mujoco.rollout``), in the rest of the vector env's step (observations, rewards, bookkeeping) and outside the
    env (the policy call and the sampler's own work); the reset seed collect used and the actions it took
    ``[T, M*N, A]``, for replaying; the first step's observations ``[M, N, obs]``; and its valid env steps per
    second (what training gets)."""
    envs = ours.envs.unwrapped
    physics_before = envs.physics_steps
    step, physics = StepTimer(envs.step), StepTimer(envs._rollout.rollout)
    envs.step, envs._rollout.rollout = step, physics  # instance attributes shadow the methods while timing
    try:
        start = time.perf_counter()
        batch = ours.collect(params, task_batch, EpisodeStreams(1, (0,)))
        seconds = time.perf_counter() - start
    finally:
        del envs.step, envs._rollout.rollout
    stepped = step.calls  # env steps the collect took (it stops early once every episode has ended)
    split = {"physics": physics.seconds / stepped, "env": (step.seconds - physics.seconds) / stepped,
             "policy": (seconds - step.seconds) / stepped}
    seed = EpisodeStreams(1, (0,)).draw(range(envs.num_envs), 1, 1)[0]  # the reset seeds collect used
    actions = batch.actions[:stepped].reshape(stepped, -1, batch.actions.shape[-1]).numpy().astype(np.float64)
    physics_steps = envs.physics_steps - physics_before
    return physics_steps / seconds, split, seed, actions, batch.observations[0], batch.num_steps / seconds


MUJOCO_FAMILIES = ["meta_rl/HalfCheetahVel-v0", "meta_rl/AntVel-v0", "meta_rl/AntGoal-v0", "meta_rl/HumanoidDir-v0",
                   "meta_rl/Walker2dParams-v0", "meta_rl/HopperParams-v0"]
"""What ``--env all`` measures: one of each family's kinds of model (the oracle and direction variants step alike)."""


def benchmark(env_id: str, env_kwargs: dict[str, Any], args: argparse.Namespace, threads: int) -> float:
    """Measure and print one family; returns the sampler's median share of raw physics."""
    num_envs = args.tasks * args.episodes
    print(f"{env_id}: {args.tasks} tasks x {args.episodes} episodes = {num_envs} envs x {args.horizon} steps, "
          f"{threads} physics threads, env kwargs {env_kwargs or 'the family defaults'}\n")
    collector, params, task_batch = make_sampler(
        env_id, env_kwargs, args.tasks, args.episodes, args.horizon, threads, [100, 100]
    )
    runs: dict[str, list[float]] = {"raw": [], "env": [], "ours": [], "valid": []}
    splits = []
    for repeat in range(args.repeats):  # interleaved, so a change in the machine's speed hits all three alike
        ours, split, seed, actions, observations, valid = timed_collect(collector, params, task_batch)
        runs["valid"].append(valid)
        if repeat == 0:
            raw_physics(collector.envs, seed, actions[:5], threads)  # warm-up
        runs["ours"].append(ours)
        splits.append(split)
        runs["raw"].append(raw_physics(collector.envs, seed, actions, threads))
        runs["env"].append(vector_env(collector.envs, seed, actions))
    forward_alone = policy_alone(collector, params, observations)
    collector.close()
    sync = gymnasium.vector.SyncVectorEnv(
        [lambda: gymnasium.make(env_id, max_episode_steps=args.horizon, **env_kwargs)] * args.sync_envs
    )
    for sub_env, task in zip(sync.envs, task_batch, strict=False):  # the tasks' own models where they change it
        sub_env.unwrapped.set_task(task)
    sync_steps = vector_env(sync, 0, actions[: min(args.horizon, 100), : args.sync_envs])
    sync.close()

    raw, ours_env, ours = (float(np.median(runs[key])) for key in ("raw", "env", "ours"))
    ratios = np.array(runs["ours"]) / np.array(runs["raw"])
    rows = [
        ("raw batched physics (mujoco.rollout)", raw, runs["raw"]),
        ("our vector env, same actions", ours_env, runs["env"]),
        ("our sampler, policy in the loop", ours, runs["ours"]),
        ("  of which valid (episodes not ended)", float(np.median(runs["valid"])), runs["valid"]),
        (f"SyncVectorEnv of {args.sync_envs} single envs", sync_steps, [sync_steps]),
    ]
    print(f"median of {args.repeats} interleaved repeats (range)\n")
    print(f"{'':40s} {'env steps/s':>12s} {'of raw':>8s}   range")
    for name, steps, values in rows:
        spread = f"{min(values):.0f} to {max(values):.0f}" if len(values) > 1 else ""
        print(f"{name:40s} {steps:12.0f} {steps / raw:8.1%}   {spread}")
    split = {key: float(np.median([s[key] for s in splits])) * 1e3 for key in splits[0]}
    print(f"\nsampler, ms per env step of {num_envs} envs (median): physics {split['physics']:.2f}, rest of the "
          f"vector env's step {split['env']:.2f}, policy and sampler outside the env {split['policy']:.2f} (one policy "
          f"forward alone, back to back: {forward_alone * 1e3:.2f})")
    print(f"sampler / raw physics: {np.median(ratios):.1%} (repeats {min(ratios):.1%} to {max(ratios):.1%}; "
          f"target >= 85%); sampler / SyncVectorEnv: {ours / sync_steps:.1f}x\n")
    return float(np.median(ratios))


def metaworld_reference(env_id: str, env_kwargs: dict[str, Any], tasks: np.ndarray, horizon: int
                        ) -> gymnasium.vector.SyncVectorEnv:
    """Meta-World's own envs of ``tasks`` (the benchmark's ``Task`` objects set on them) in Gymnasium's
    ``SyncVectorEnv``, truncated at ``horizon``: the same work as ours without our wrapper."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    lookup = gymnasium.make(env_id, **env_kwargs).unwrapped.variations.lookup

    def maker(task: np.ndarray) -> Callable[[], gymnasium.Env]:
        def make() -> gymnasium.Env:
            name, metaworld_task = lookup[task.tobytes()]
            env = ALL_V3_ENVIRONMENTS[name]()
            env.set_task(metaworld_task)
            return gymnasium.wrappers.TimeLimit(env, horizon)
        return make

    return gymnasium.vector.SyncVectorEnv([maker(task) for task in tasks])


def benchmark_python_stepped(env_id: str, env_kwargs: dict[str, Any], args: argparse.Namespace) -> float:
    """Measure and print a family stepped in Python (Meta-World); returns our sampler's share of Meta-World's own
    envs in ``SyncVectorEnv`` on the same tasks and actions."""
    collector, params, task_batch = make_sampler(
        env_id, env_kwargs, args.tasks, args.episodes, args.horizon, 1, [100, 100]
    )
    num_envs = collector.envs.num_envs
    print(f"{env_id}: {args.tasks} tasks x {args.episodes} episodes x {args.horizon} steps, {num_envs} sub-envs "
          f"({collector.envs_per_task} per task; a task's episodes in turn), env kwargs {env_kwargs or 'defaults'}\n")
    theirs = metaworld_reference(env_id, env_kwargs, np.repeat(task_batch, collector.envs_per_task, axis=0),
                                 args.horizon)
    runs: dict[str, list[float]] = {"ours": [], "env": [], "theirs": []}
    for _ in range(args.repeats):
        start = time.perf_counter()
        batch = collector.collect(params, task_batch, EpisodeStreams(1, (0,)))
        runs["ours"].append(batch.num_steps / (time.perf_counter() - start))
        actions = batch.actions[:, :, : collector.envs_per_task].reshape(args.horizon, num_envs, -1).numpy()
        runs["env"].append(vector_env(collector.envs, 0, actions))
        runs["theirs"].append(vector_env(theirs, 0, actions))
    collector.close()
    theirs.close()
    medians = {key: float(np.median(values)) for key, values in runs.items()}
    print(f"median of {args.repeats} interleaved repeats (range)\n")
    print(f"{'':52s} {'env steps/s':>12s} {'of theirs':>10s}   range")
    for key, name in (("ours", "our sampler, policy in the loop"), ("env", "our vector env, same actions"),
                      ("theirs", "Meta-World's envs in SyncVectorEnv, same actions")):
        print(f"{name:52s} {medians[key]:12.0f} {medians[key] / medians['theirs']:10.1%}   "
              f"{min(runs[key]):.0f} to {max(runs[key]):.0f}")
    print()
    return medians["ours"] / medians["theirs"]


def main() -> None:
    keep_freed_memory()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="meta_rl/HalfCheetahVel-v0",
                        help="a MuJoCo family's id, or all (one of each kind of family)")
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--horizon", type=int, default=200)
    parser.add_argument("--threads", type=int, default=0, help="physics threads; 0: every core")
    parser.add_argument("--frame-skip", type=int, help="physics steps per env step (default: the family's)")
    parser.add_argument("--env-kwarg", action="append", default=[], metavar="NAME=VALUE",
                        help="an env keyword, the value as YAML (e.g. speed_measure=centre_of_mass); repeatable")
    parser.add_argument("--repeats", type=int, default=3,
                        help="timed repeats of the sampler, raw physics and vector env, interleaved; medians shown")
    parser.add_argument("--sync-envs", type=int, default=40, help="sub-envs of the SyncVectorEnv reference")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    threads = args.threads or default_num_threads()
    env_kwargs: dict[str, Any] = {}
    for item in args.env_kwarg:
        name, equals, value = item.partition("=")
        if not equals or not name:
            parser.error(f"--env-kwarg {item!r} must look like NAME=VALUE")
        env_kwargs[name] = yaml.safe_load(value)
    if args.frame_skip is not None:
        env_kwargs["frame_skip"] = args.frame_skip
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads), mujoco {mujoco.__version__}\n")
    if args.env != "all" and gymnasium.spec(args.env).vector_entry_point is None:  # no native env: Meta-World
        benchmark_python_stepped(args.env, env_kwargs, args)
        return
    shares = {env_id: benchmark(env_id, env_kwargs, args, threads)
              for env_id in (MUJOCO_FAMILIES if args.env == "all" else [args.env])}
    if len(shares) > 1:
        print("sampler / raw physics: " + ", ".join(f"{env_id} {share:.1%}" for env_id, share in shares.items()))


if __name__ == "__main__":
    main()
