#!/usr/bin/env python
"""A trained half-cheetah policy's return under our speed and under the MAML paper's, on the same episodes.

Our families take the forward speed as the torso's x displacement per env step (Gymnasium's definition); the
paper's rllab cheetah took the whole body's centre-of-mass velocity. A policy trained on one measure can score
differently on the other, which matters when our returns are set beside the paper's. This adapts a run's
meta-policy to held-out tasks (as ``meta-rl evaluate`` draws them) with ``--steps`` inner steps, rolls out
``--episodes`` fresh episodes per task with the adapted policies, and scores every step both ways (same actions,
same control cost). It also prints how much each speed changes from one env step to the next.

    python research/speed_measures.py runs/cheetah-vel-maml-paper --steps 1
    python research/speed_measures.py runs/cheetah-vel-oracle-paper --steps 0 --episodes 10
    python research/speed_measures.py runs/cheetah-vel-maml-paper --task-file paper:cheetah-vel \
        --env-kwarg reset_noise=rllab     # on the paper's test tasks, from rllab's start state
"""

from __future__ import annotations

import argparse

import gymnasium
import mujoco
import numpy as np

from meta_rl import MetaPolicy
from meta_rl.api import AdaptedPolicy
from meta_rl.cli import parse_env_kwargs
from meta_rl.config import ConfigError
from meta_rl.evaluation import DEFAULT_SEED, load_task_file
from meta_rl_envs.half_cheetah import (
    HalfCheetahDirEnv,
    HalfCheetahVelEnv,
    centre_of_mass_speed,
    direction_reward,
    velocity_reward,
)


def score_task(policy: AdaptedPolicy, env_kwargs: dict, episodes: int, rng: np.random.Generator
               ) -> tuple[float, float, float, float]:
    """Mean return of ``episodes`` episodes with our speed and with the centre-of-mass speed, and the mean
    absolute change per env step of each speed."""
    envs = [gymnasium.make(policy.env_id, task=policy.task, **env_kwargs).unwrapped for _ in range(episodes)]
    family = envs[0]
    if not isinstance(family, HalfCheetahVelEnv | HalfCheetahDirEnv):
        raise SystemExit(f"{policy.env_id} is not a half-cheetah family; this compares half-cheetah speed measures")
    forward_reward = direction_reward if isinstance(family, HalfCheetahDirEnv) else velocity_reward
    scratch = mujoco.MjData(family.model)
    obs = np.stack([env.reset(seed=int(rng.integers(2**31)))[0] for env in envs])
    ours, paper = np.zeros(episodes), np.zeros(episodes)
    root_speeds, com_speeds = np.zeros((policy.horizon, episodes)), np.zeros((policy.horizon, episodes))
    for t in range(policy.horizon):
        actions = policy.predict(obs, deterministic=False, rng=rng)
        for i, (env, action) in enumerate(zip(envs, actions, strict=True)):
            obs[i], _, _, _, info = env.step(action)
            com_speed = centre_of_mass_speed(env.model, env.data, scratch=scratch)
            # both from the step's speeds, whichever one the run was trained on (env kwarg speed_measure)
            ours[i] += forward_reward(info["x_velocity"], policy.task[0]) + info["reward_ctrl"]
            paper[i] += forward_reward(com_speed, policy.task[0]) + info["reward_ctrl"]
            root_speeds[t, i], com_speeds[t, i] = info["x_velocity"], com_speed
    for env in envs:
        env.close()
    change = lambda speeds: float(np.abs(np.diff(speeds, axis=0)).mean())  # noqa: E731
    return float(ours.mean()), float(paper.mean()), change(root_speeds), change(com_speeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="run directory or checkpoint file of a half-cheetah run")
    parser.add_argument("--steps", type=int, default=1, help="inner steps before scoring (0: the meta-policy)")
    parser.add_argument("--episodes", type=int, default=5, help="scored episodes per task")
    parser.add_argument("--tasks", type=int, default=40, help="held-out tasks to draw")
    parser.add_argument("--task-file", help="score on the tasks in this JSON file instead of drawn ones (as meta-rl "
                        "evaluate --task-file, e.g. paper:cheetah-vel)")
    parser.add_argument("--env-kwarg", action="append", default=[], metavar="NAME=VALUE",
                        help="env keyword changed from the training config's, e.g. reset_noise=rllab (repeatable)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="held-out task seed (as meta-rl evaluate)")
    args = parser.parse_args()
    try:
        meta = MetaPolicy.load(args.run)
        env_kwargs = parse_env_kwargs(args.env_kwarg)
        if env_kwargs:
            meta = meta.with_env_kwargs(**env_kwargs)
        if args.task_file:
            tasks = meta.check_tasks(load_task_file(args.task_file))
        else:
            tasks = meta.sample_tasks(args.tasks, np.random.default_rng(args.seed))
    except (ConfigError, ValueError) as error:
        raise SystemExit(f"error: {error}") from None
    params, _ = meta.adapt_tasks(tasks, args.steps, seed=0)
    rng = np.random.default_rng(args.seed + 1)
    rows = np.array([
        score_task(AdaptedPolicy(meta.policy, {k: v[m] for k, v in params.items()}, meta.env_id,
                                 meta.config.env.kwargs, task, meta.config.horizon),
                   meta.config.env.kwargs, args.episodes, rng)
        for m, task in enumerate(tasks)
    ])
    ours, paper = rows[:, 0], rows[:, 1]

    def mean_se(values: np.ndarray) -> str:
        return f"{values.mean():8.1f} ± {values.std(ddof=1) / np.sqrt(len(values)):.1f}"

    source = f"from {args.task_file}" if args.task_file else f"drawn with seed {args.seed}"
    changed = f", env kwargs changed: {env_kwargs}" if env_kwargs else ""
    print(f"{args.run} (iteration {meta.iteration}), {meta.env_id}, after {args.steps} step(s); "
          f"{len(tasks)} tasks {source} x {args.episodes} episodes{changed}, mean ± s.e. over tasks")
    print(f"  return, our speed (torso x displacement / dt): {mean_se(ours)}")
    print(f"  return, the paper's (centre-of-mass velocity): {mean_se(paper)}")
    print(f"  difference (paper's - ours):                   {mean_se(paper - ours)}")
    print(f"  mean |change of speed| per env step: ours {rows[:, 2].mean():.3f}, "
          f"centre of mass {rows[:, 3].mean():.3f}")


if __name__ == "__main__":
    main()
