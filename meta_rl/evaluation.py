"""Fast adaptation on held-out tasks: mean return after 0, 1, ..., k inner steps, from a checkpoint.

This is the MAML paper's evaluation: held-out tasks (a seed separate from training's), ``k`` inner steps each on
fresh episodes, MAML's step size alpha then alpha / 2, Meta-SGD's learned step sizes; the mean undiscounted
return and its standard error over tasks after each step. The same code evaluates the baselines: a pretrained
policy (trained without adaptation) and an untrained (random) one are fine-tuned with the same inner step.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from meta_rl.api import MetaPolicy
from meta_rl.config import Config
from meta_rl_envs import family_class

DEFAULT_SEED = 1_000_003  # held-out tasks: a stream no training seed (small integers) reaches
DEFAULT_EPISODES = 20  # episodes per task per step, as the MAML paper's half-cheetah tests sampled


def method_label(meta: MetaPolicy, untrained: bool = False) -> str:
    """What a result is called in tables and plots: maml, metasgd, pretrained, oracle or random."""
    if untrained:
        return "random"
    if meta.config.inner.num_steps == 0:
        return "oracle" if family_class(meta.env_id).observe_task else "pretrained"
    return meta.config.inner.algorithm


def evaluate(
    checkpoint: str | Path | None = None,
    num_tasks: int | None = None,
    grad_steps: int = 3,
    episodes: int = DEFAULT_EPISODES,
    seed: int = DEFAULT_SEED,
    step_schedule: list[float] | None = None,
    progress: bool = False,
    env_id: str | None = None,
    untrained: Config | None = None,
    env_kwargs: dict[str, Any] | None = None,
    tasks: Any = None,
    task_file: str | Path | None = None,
    sampler: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Adapt a trained meta-policy to held-out tasks and record returns after each step.

    :param checkpoint: a run directory or checkpoint file (or ``None`` with ``untrained``).
    :param num_tasks: how many held-out tasks to draw with ``seed``: from the family's test split where it has one
        (default: all of it, e.g. Meta-World ML1's 50), else from its distribution (default 40).
    :param seed: seeds the drawn tasks and the episodes.
    :param step_schedule: MAML's step size per step (default alpha, then alpha / 2); ignored for Meta-SGD,
        which uses its learned step sizes.
    :param env_id: if given, the checkpoint must be of this task family.
    :param untrained: evaluate a freshly initialised policy for this config instead (the random baseline,
        initialised from ``seed``).
    :param env_kwargs: env keyword arguments to change from the training config's for this evaluation (e.g.
        ``{"reset_noise": "rllab"}``); the result keeps them under ``"env_kwargs_changed"``.
    :param tasks: these tasks instead of drawn ones (e.g. the paper's test tasks, :func:`load_task_file`);
        ``num_tasks``, if given, must be their number.
    :param task_file: where ``tasks`` came from, recorded in the result as ``"task_file"``.
    :param sampler: ``sampler`` settings to change for this evaluation (e.g. ``{"backend": "ray"}``); the results
        are the same with any backend.
    :return: the JSON-serialisable result (see the README), with ``episodes`` kept out of the JSON under
        the key ``"_batches"`` (the adaptation log's episode batches, for plots).
    """
    for name, value in (("num_tasks", num_tasks), ("episodes", episodes)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if grad_steps < 0:
        raise ValueError(f"grad_steps must be >= 0, got {grad_steps}")
    if (checkpoint is None) == (untrained is None):
        raise ValueError("pass exactly one of a checkpoint or an untrained config")
    meta = MetaPolicy.untrained(untrained, seed) if untrained is not None else MetaPolicy.load(checkpoint, env_id)
    if env_kwargs:
        meta = meta.with_env_kwargs(**env_kwargs)
    if sampler:
        meta = meta.with_sampler(**sampler)
    schedule = list(step_schedule) if step_schedule is not None and meta.step_sizes is None else None
    if tasks is None:
        tasks = meta.sample_held_out_tasks(num_tasks, np.random.default_rng(seed))
    else:
        tasks = meta.check_tasks(tasks)
        if num_tasks is not None and num_tasks != len(tasks):
            raise ValueError(f"num_tasks is {num_tasks} but {len(tasks)} tasks were given; pass one or the other")
    num_tasks = len(tasks)
    _, log = meta.adapt_tasks(tasks, grad_steps, episodes, seed=seed, schedule=schedule)
    if progress:
        for step, value in enumerate(log.returns):
            print(f"step {step}: mean return {value:.2f}")
    result = {
        "env": meta.env_id,
        "algorithm": meta.config.inner.algorithm,
        "label": method_label(meta, untrained is not None),
        "tasks": np.asarray(tasks).tolist(),
        "task_file": None if task_file is None else str(task_file),
        "returns": _over_tasks(log.per_task),
        "checkpoint": meta.checkpoint,
        "iteration": meta.iteration,
        "seed": seed,
        "grad_steps": grad_steps,
        "episodes": episodes,
        "env_kwargs": dict(meta.config.env.kwargs),
        "env_kwargs_changed": dict(env_kwargs or {}),
        "_batches": log.episodes,
    }
    if log.successes is not None:
        result["success"] = _over_tasks(log.successes)  # the share of each task's episodes that succeeded
    return result


def _over_tasks(per_step: list[np.ndarray]) -> dict[str, list]:
    """A statistic's mean and standard error over tasks after each step, and its value per task ``[M][k + 1]``."""
    per_task = np.stack(per_step, axis=1)  # [num_tasks, k+1]
    num_tasks = len(per_task)
    stderr = per_task.std(axis=0, ddof=1) / math.sqrt(num_tasks) if num_tasks > 1 else np.zeros(per_task.shape[1])
    return {"mean": per_task.mean(axis=0).tolist(), "stderr": stderr.tolist(), "per_task": per_task.tolist()}


def format_table(result: dict[str, Any]) -> str:
    """A terminal table: return (mean +- stderr over tasks) after each number of gradient steps."""
    source = result["checkpoint"] or "untrained policy"
    success = result.get("success")  # families with a success flag: the share of episodes that succeeded
    lines = [
        f"{result['env']}  {result['label']}  {source} (iteration {result['iteration']})",
        f"{len(result['tasks'])} held-out tasks"
        + (f" from {result['task_file']}" if result.get("task_file") else "")
        + f", seed {result['seed']}, {result['episodes']} episodes per step",
        f"{'grad steps':>10}  {'mean return':>12}  {'stderr':>8}" + f"  {'success':>8}  {'stderr':>8}" * bool(success),
    ]
    if result.get("env_kwargs_changed"):
        changed = ", ".join(f"{k}={v!r}" for k, v in result["env_kwargs_changed"].items())
        lines.insert(2, f"env kwargs changed from the training config's: {changed}")
    for k, (mean, err) in enumerate(zip(result["returns"]["mean"], result["returns"]["stderr"], strict=True)):
        line = f"{k:>10}  {mean:>12.2f}  {err:>8.2f}"
        if success:
            line += f"  {success['mean'][k]:>8.3f}  {success['stderr'][k]:>8.3f}"
        lines.append(line)
    return "\n".join(lines)


def read_json(path: str | Path, what: str) -> Any:
    """The JSON in ``path``; a missing, unreadable or malformed file is a ``ValueError`` naming ``what`` it
    should have been and the path."""
    try:
        return json.loads(Path(path).read_text())
    except OSError as error:
        raise ValueError(f"cannot read the {what} {str(path)!r}: {error.strerror or error}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"the {what} {str(path)!r} is not valid JSON: {error}") from None


PAPER_TASKS = "paper:"  # prefix of the task sets shipped with the package


def paper_task_sets() -> list[str]:
    """Names of the MAML paper's test-task sets shipped with the package (``paper:NAME`` as a task file)."""
    return sorted(item.name.removesuffix(".json") for item in resources.files("meta_rl").joinpath("task_sets")
                  .iterdir() if item.name.endswith(".json"))


def load_task_file(path: str | Path) -> list:
    """The tasks in a JSON file: a list of tasks (``[0.5, 1.2]``, ``[[0.3, -0.2], ...]``), or an object whose
    ``"tasks"`` key holds one (other keys, such as a ``"source"``, are for readers); a clear error otherwise.
    ``paper:NAME`` reads the MAML paper's test tasks shipped with the package (:func:`paper_task_sets`)."""
    if str(path).startswith(PAPER_TASKS):
        name = str(path).removeprefix(PAPER_TASKS)
        if name not in paper_task_sets():
            raise ValueError(f"no shipped task set {name!r} in {str(path)!r}; shipped: "
                             f"{', '.join(PAPER_TASKS + known for known in paper_task_sets())}")
        with resources.as_file(resources.files("meta_rl").joinpath("task_sets", f"{name}.json")) as file:
            return load_task_file(file)
    data = read_json(path, "task file")
    tasks = data.get("tasks") if isinstance(data, dict) else data
    if not isinstance(tasks, list) or not tasks:
        raise ValueError(f"the task file {str(path)!r} must hold a non-empty list of tasks, or an object with one "
                         f"under \"tasks\", e.g. {{\"tasks\": [0.5, 1.2]}}")
    return tasks


def load_results(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Results written by :func:`write_json` (``meta-rl evaluate --json``), read back for plotting; a clear
    error for a missing, malformed or different file."""
    results = []
    for path in paths:
        result = read_json(path, "evaluation file")
        returns = result.get("returns") if isinstance(result, dict) else None
        if not isinstance(returns, dict) or "mean" not in returns:
            raise ValueError(f"{str(path)!r} is not a `meta-rl evaluate --json` file (no returns.mean)")
        results.append(result)
    return results


def write_json(result: dict[str, Any], path: str | Path) -> None:
    """Write an evaluation result as JSON (everything but the episode batches)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    public = {k: v for k, v in result.items() if not k.startswith("_")}
    Path(path).write_text(json.dumps(public, indent=2) + "\n")


def write_tensorboard(result: dict[str, Any], log_dir: str | Path) -> None:
    """Return versus gradient step as TensorBoard scalars ``evaluation/return`` and ``evaluation/return_stderr``
    (x axis: gradient steps), plus the table as text."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(log_dir))
    try:
        for step, (mean, err) in enumerate(zip(result["returns"]["mean"], result["returns"]["stderr"], strict=True)):
            writer.add_scalar("evaluation/return", mean, global_step=step)
            writer.add_scalar("evaluation/return_stderr", err, global_step=step)
        if "success" in result:
            for step, rate in enumerate(result["success"]["mean"]):
                writer.add_scalar("evaluation/success", rate, global_step=step)
        writer.add_text("evaluation/table", "```\n" + format_table(result) + "\n```")
    finally:
        writer.close()


def check_plots_trajectories(env_id: str) -> None:
    """Raise ``ValueError`` unless the family's episodes can be drawn as trajectories in the plane."""
    if not family_class(env_id).plots_trajectories:
        raise ValueError(f"trajectory pictures are drawn for families moving in the plane (2D navigation); "
                         f"{env_id!r} has none")


def plot_trajectories(result: dict[str, Any], path: str | Path, goals: int = 4) -> Path:
    """2D navigation: trajectories for the first ``goals`` held-out goals before adapting, after one step and
    after the last step."""
    from meta_rl.plots import plot_navigation_trajectories

    check_plots_trajectories(result["env"])
    batches = result["_batches"]
    stages = sorted({0, min(1, len(batches) - 1), len(batches) - 1})
    labels = [f"after {k} step{'s' if k != 1 else ''}" for k in stages]
    goals = min(goals, len(result["tasks"]))
    picked = [batches[k].select_tasks(slice(0, goals)) for k in stages]
    return plot_navigation_trajectories(np.asarray(result["tasks"])[:goals, :2], picked, labels, path)

