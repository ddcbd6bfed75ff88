"""Fast adaptation on held-out tasks: mean return after 0, 1, ..., k inner steps, from a checkpoint."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from meta_rl.api import MetaPolicy


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
    ``step_schedule`` (default alpha, then alpha / 2); Meta-SGD uses its learned step sizes.
    """
    for name, value in (("num_tasks", num_tasks), ("episodes", episodes)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if grad_steps < 0:
        raise ValueError(f"grad_steps must be >= 0, got {grad_steps}")
    meta = MetaPolicy.load(checkpoint)
    schedule = list(step_schedule) if step_schedule is not None and meta.step_sizes is None else None
    tasks = meta.sample_tasks(num_tasks, np.random.default_rng(seed))
    _, log = meta.adapt_tasks(tasks, grad_steps, episodes, seed=seed, schedule=schedule)
    if progress:
        for step, value in enumerate(log.returns):
            print(f"step {step}: mean return {value:.2f}")
    per_task = np.stack(log.per_task, axis=1)  # [num_tasks, k+1]
    stderr = per_task.std(axis=0, ddof=1) / math.sqrt(num_tasks) if num_tasks > 1 else np.zeros(grad_steps + 1)
    return {
        "env": meta.env_id,
        "algorithm": meta.config.inner.algorithm,
        "tasks": np.asarray(tasks).tolist(),
        "returns": {
            "mean": per_task.mean(axis=0).tolist(),
            "stderr": stderr.tolist(),
            "per_task": per_task.tolist(),
        },
        "checkpoint": meta.checkpoint,
        "iteration": meta.iteration,
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
