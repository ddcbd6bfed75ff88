"""Fast adaptation on held-out tasks: mean return after 0, 1, ..., k inner steps, from a checkpoint."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from meta_rl.adaptation import adapt
from meta_rl.checkpoint import check_params_match, load_checkpoint, resolve_checkpoint
from meta_rl.config import config_from_dict
from meta_rl.sampler import Sampler
from meta_rl.trainer import make_policy, process


def maml_step_schedule(step_size: float, grad_steps: int) -> list[float]:
    """The MAML paper's test-time schedule: ``alpha`` for the first step, ``alpha / 2`` for later ones."""
    return [step_size] + [step_size / 2.0] * (grad_steps - 1)


def evaluate(
    checkpoint: str | Path,
    num_tasks: int = 40,
    grad_steps: int = 3,
    episodes: int = 20,
    seed: int = 1_000_003,
    step_schedule: list[float] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Adapt a trained meta-policy to ``num_tasks`` held-out tasks and record returns after each step.

    Held-out tasks and all sampling noise come from ``seed``, a stream separate from training's. Each step
    uses ``episodes`` fresh episodes per task sampled with the latest adapted parameters. MAML uses
    ``step_schedule`` (default :func:`maml_step_schedule`); Meta-SGD uses its learned step sizes.
    """
    for name, value in (("num_tasks", num_tasks), ("episodes", episodes)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if grad_steps < 0:
        raise ValueError(f"grad_steps must be >= 0, got {grad_steps}")
    path = resolve_checkpoint(checkpoint)
    state = load_checkpoint(path)
    config = config_from_dict(state["config"])
    policy = make_policy(config)
    check_params_match(state["learner"]["params"], policy.shapes, "policy parameters")
    params = {k: v.float() for k, v in state["learner"]["params"].items()}
    step_sizes = state["learner"]["step_sizes"]
    if config.inner.algorithm == "metasgd":
        check_params_match(step_sizes or {}, policy.shapes, "Meta-SGD step sizes")
        schedule: list[Any] = [{k: v.float() for k, v in step_sizes.items()}] * grad_steps
    else:
        schedule = step_schedule or maml_step_schedule(config.inner.step_size, grad_steps)
        if len(schedule) != grad_steps:
            raise ValueError(f"step_schedule has {len(schedule)} entries; expected grad_steps = {grad_steps}")

    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    sampler = Sampler(config.env.id, config.env.kwargs, num_tasks, episodes, config.horizon, policy)
    per_step: list[np.ndarray] = []  # [k+1] x [num_tasks]
    try:
        tasks = sampler.envs.sample_tasks(num_tasks, rng)
        adapted = params
        for step in range(grad_steps + 1):
            batch = process(sampler.collect(adapted, tasks, rng, generator), config)
            per_step.append(batch.episode_returns().mean(dim=1).numpy().astype(np.float64))
            if progress:
                print(f"step {step}: mean return {per_step[-1].mean():.2f}")
            if step < grad_steps:
                adapted = adapt(policy, adapted, batch, schedule[step])
    finally:
        sampler.close()
    per_task = np.stack(per_step, axis=1)  # [num_tasks, k+1]
    stderr = per_task.std(axis=0, ddof=1) / math.sqrt(num_tasks) if num_tasks > 1 else np.zeros(grad_steps + 1)
    return {
        "env": config.env.id,
        "algorithm": config.inner.algorithm,
        "tasks": np.asarray(tasks).tolist(),
        "returns": {
            "mean": per_task.mean(axis=0).tolist(),
            "stderr": stderr.tolist(),
            "per_task": per_task.tolist(),
        },
        "checkpoint": str(path),
        "iteration": int(state["iteration"]),
        "seed": seed,
        "grad_steps": grad_steps,
        "episodes": episodes,
    }


def format_table(result: dict[str, Any]) -> str:
    """A terminal table: return (mean +- stderr over tasks) after each number of gradient steps."""
    lines = [
        f"{result['env']}  {result['algorithm']}  checkpoint {result['checkpoint']} (iteration {result['iteration']})",
        f"{len(result['tasks'])} held-out tasks, seed {result['seed']}, {result['episodes']} episodes per step",
        f"{'grad steps':>10}  {'mean return':>12}  {'stderr':>8}",
    ]
    for k, (mean, err) in enumerate(zip(result["returns"]["mean"], result["returns"]["stderr"], strict=True)):
        lines.append(f"{k:>10}  {mean:>12.2f}  {err:>8.2f}")
    return "\n".join(lines)


def write_json(result: dict[str, Any], path: str | Path) -> None:
    """Write an evaluation result as JSON."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=2) + "\n")
