#!/usr/bin/env python
"""Env steps per second of half-cheetah sampling, four ways in one run, and their ratios.

1. raw batched physics: ``mujoco.rollout`` stepping all M*N cheetahs, ``frame_skip`` physics steps per env step,
   with nothing else (no observations, rewards or policy): the ceiling;
2. our native vector env alone (``make_task_vec``): physics plus observations and rewards;
3. our :class:`~meta_rl.sampler.Sampler` with the policy in the loop, as training runs it;
4. Gymnasium's ``SyncVectorEnv`` of the single env (fewer envs: it is slow).

1, 2 and 4 replay the actions the sampler's untrained policy took in 3 (from the same start states for 1 and 2),
because the cost of a physics step depends on the contacts the actions lead to.

    python scripts/benchmark_sampler.py                          # 40 tasks x 20 episodes x 200 steps, all cores
    python scripts/benchmark_sampler.py --threads 1 --horizon 100
    python scripts/benchmark_sampler.py --frame-skip 1                 # the paper's control rate (-paper presets)
    python scripts/benchmark_sampler.py --frame-skip 1 --speed-measure centre_of_mass   # rllab's speed as well
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import gymnasium
import mujoco
import numpy as np
import torch
from mujoco import rollout

from meta_rl.policy import GaussianMLPPolicy
from meta_rl.runtime import keep_freed_memory
from meta_rl.sampler import Sampler
from meta_rl_envs.half_cheetah import default_num_threads


def random_actions(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Clipped standard normal actions, like those of an untrained unit-std policy."""
    return np.clip(rng.standard_normal(shape), -1.0, 1.0)


def raw_physics(env: gymnasium.vector.VectorEnv, seed: int, actions: np.ndarray, threads: int) -> float:
    """Steps/s of bare ``mujoco.rollout`` replaying ``actions`` ``[T, num_envs, A]`` from the states
    ``env.reset(seed=seed)`` gives: ``T`` calls of ``frame_skip`` physics steps each, controls ready beforehand."""
    native = env.unwrapped
    native.reset(seed=seed)
    model, frame_skip, num_envs = native.model, native.frame_skip, native.num_envs
    state = native._state.copy()  # [num_envs, nstate] full physics states after the reset
    models = [model] * num_envs
    datas = [mujoco.MjData(model) for _ in range(threads)]
    trajectory = np.empty((num_envs, frame_skip, state.shape[1]))
    sensordata = np.empty((num_envs, frame_skip, model.nsensordata))
    controls = np.clip(actions, -1.0, 1.0)[:, :, None, :].repeat(frame_skip, axis=2)
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


def sampler(env_id: str, env_kwargs: dict, tasks: int, episodes: int, horizon: int, threads: int, hidden: list[int]
            ) -> tuple[float, Sampler, int, np.ndarray]:
    """Steps/s of one :meth:`Sampler.collect` (policy in the loop) after a warm-up collect; also the sampler,
    the reset seed it used and the actions it took ``[T, M*N, A]``, for replaying the same work."""
    env = gymnasium.make(env_id, **env_kwargs).unwrapped
    policy = GaussianMLPPolicy(env.observation_space.shape[0], env.action_space.shape[0], hidden, "relu")
    params = policy.init_params(torch.Generator().manual_seed(0))
    ours = Sampler(env_id, env_kwargs, tasks, episodes, horizon, policy, num_threads=threads)
    task_batch = ours.envs.sample_tasks(tasks, np.random.default_rng(0))
    generator = torch.Generator().manual_seed(0)
    ours.collect(params, task_batch, np.random.default_rng(0), generator)
    seed = int(np.random.default_rng(1).integers(2**31 - 1))  # the reset seed collect draws from this rng
    start = time.perf_counter()
    batch = ours.collect(params, task_batch, np.random.default_rng(1), generator)
    seconds = time.perf_counter() - start
    actions = batch.actions.reshape(horizon, tasks * episodes, -1).numpy().astype(np.float64)
    return batch.num_steps / seconds, ours, seed, actions


def main() -> None:
    keep_freed_memory()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="meta_rl/HalfCheetahVel-v0")
    parser.add_argument("--tasks", type=int, default=40)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--horizon", type=int, default=200)
    parser.add_argument("--threads", type=int, default=0, help="physics threads; 0: every core")
    parser.add_argument("--frame-skip", type=int, default=5, help="physics steps per env step (the paper's: 1)")
    parser.add_argument("--speed-measure", default="torso", choices=["torso", "centre_of_mass"],
                        help="speed in the reward (env kwarg speed_measure; centre_of_mass: rllab's, in numpy)")
    parser.add_argument("--sync-envs", type=int, default=40, help="sub-envs of the SyncVectorEnv reference")
    args = parser.parse_args()
    threads = args.threads or default_num_threads()
    env_kwargs = {"frame_skip": args.frame_skip, "speed_measure": args.speed_measure}
    num_envs = args.tasks * args.episodes
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__} ({torch.get_num_threads()} threads), mujoco {mujoco.__version__}")
    print(f"{args.env}: {args.tasks} tasks x {args.episodes} episodes = {num_envs} envs x {args.horizon} steps, "
          f"{threads} physics threads, frame_skip {args.frame_skip}, speed measure {args.speed_measure}\n")

    ours, collector, seed, actions = sampler(
        args.env, env_kwargs, args.tasks, args.episodes, args.horizon, threads, [100, 100]
    )
    raw_physics(collector.envs, seed, actions[:5], threads)  # warm-up
    raw = raw_physics(collector.envs, seed, actions, threads)
    ours_env = vector_env(collector.envs, seed, actions)
    collector.close()
    sync = gymnasium.vector.SyncVectorEnv(
        [lambda: gymnasium.make(args.env, max_episode_steps=args.horizon, **env_kwargs)] * args.sync_envs
    )
    sync_steps = vector_env(sync, 0, actions[: min(args.horizon, 100), : args.sync_envs])

    rows = [
        ("raw batched physics (mujoco.rollout)", raw),
        ("our vector env, same actions", ours_env),
        ("our sampler, policy in the loop", ours),
        (f"SyncVectorEnv of {args.sync_envs} single envs", sync_steps),
    ]
    print(f"{'':40s} {'env steps/s':>12s} {'of raw':>8s}")
    for name, steps in rows:
        print(f"{name:40s} {steps:12.0f} {steps / raw:8.1%}")
    print(f"\nsampler / raw physics: {ours / raw:.1%} (target >= 80%); "
          f"sampler / SyncVectorEnv: {ours / sync_steps:.1f}x")


if __name__ == "__main__":
    main()
