"""Pictures: adaptation curves (return vs gradient steps), training curves (return vs meta-iteration) and
2D-navigation trajectories before/after adapting."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt
import numpy as np

from meta_rl.episodes import Episodes


def plot_adaptation_curves(results: Sequence[dict[str, Any]], path: str | Path, labels: Sequence[str] | None = None,
                           title: str | None = None,
                           references: Sequence[tuple[str, Sequence[float]]] = ()) -> Path:
    """Mean return (error bars: standard error over tasks) versus gradient steps, one line per result.

    ``references`` are published returns to set beside them, ``(label, [r0, r1, ...])``, drawn dashed with open
    markers (one number, such as an oracle's, is a dotted horizontal line).
    """
    if not results:
        raise ValueError("no evaluation results to plot")
    labels = list(labels) if labels else [r.get("label") or r.get("algorithm", f"run {i}") for i, r in
                                          enumerate(results)]
    fig, ax = plt.subplots(figsize=(8.0, 4.0))
    for result, label in zip(results, labels, strict=True):
        mean = np.asarray(result["returns"]["mean"])
        stderr = np.asarray(result["returns"]["stderr"])
        if len(mean) == 1:  # no adaptation (the oracle): a ceiling across all step counts
            ax.axhline(mean[0], linestyle="--", color="gray", label=f"{label} ({mean[0]:.1f})")
            continue
        steps = np.arange(len(mean))
        ax.errorbar(steps, mean, yerr=stderr, marker="o", capsize=3, label=label)
    for label, values in references:
        if len(values) == 1:
            ax.axhline(values[0], linestyle=":", color="black", label=f"{label} ({values[0]:.1f})")
        else:
            ax.plot(np.arange(len(values)), values, linestyle="--", marker="o", markerfacecolor="none", label=label)
    ax.set_xlabel("gradient steps")
    ax.set_ylabel("mean return")
    ax.set_xticks(np.arange(max([len(r["returns"]["mean"]) for r in results] + [len(v) for _, v in references])))
    ax.set_title(title or results[0].get("env", ""))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)  # beside the axes: it hides no curve
    fig.tight_layout()
    return _save(fig, path)


History = Sequence[dict[str, float]]  # a checkpoint's "history": per iteration, {"returns/step_K": mean return}


def return_keys(history: History) -> list[str]:
    """The ``returns/step_K`` statistics of a training history, by K: before adaptation first, the query last."""
    if not history:
        raise ValueError("the training history is empty: the run has not finished an iteration yet")
    return sorted(history[0], key=_step_number)


def _step_number(key: str) -> int:
    """``returns/step_K`` -> K."""
    return int(key.rsplit("_", 1)[1])


def step_label(key: str) -> str:
    """``returns/step_0`` -> ``before adapting``; ``returns/step_K`` -> ``after K step(s)``."""
    steps = _step_number(key)
    return "before adapting" if steps == 0 else f"after {steps} step{'s' if steps != 1 else ''}"


def block_means(history: History, block: int) -> list[tuple[int, int, dict[str, float]]]:
    """Mean of every ``returns/step_K`` over consecutive blocks of ``block`` iterations: ``(first, last, means)``
    with 1-based iteration numbers; the last block may be shorter."""
    if block < 1:
        raise ValueError(f"block must be a positive number of iterations, got {block}")
    keys = return_keys(history)
    rows = []
    for start in range(0, len(history), block):
        chunk = history[start:start + block]
        rows.append((start + 1, start + len(chunk), {k: float(np.mean([h[k] for h in chunk])) for k in keys}))
    return rows


def drift(history: History, block: int, tail: int = 100) -> tuple[float, int, int, float]:
    """The final step's return in the best ``block``-iteration block and over the last ``tail`` iterations:
    ``(best block mean, its first, its last iteration, last-tail mean)``; a run that drifts after its peak has a
    tail mean well below its best block's."""
    key = return_keys(history)[-1]
    best = max(block_means(history, block), key=lambda row: row[2][key])
    return best[2][key], best[0], best[1], float(np.mean([h[key] for h in history[-tail:]]))


def plot_training_curves(histories: Sequence[History], labels: Sequence[str], path: str | Path, window: int = 25,
                         title: str | None = None) -> Path:
    """Training return per meta-iteration, one colour per run: after adaptation (the query episodes; each
    iteration faint, its ``window``-iteration moving average solid) and before adaptation (moving average, dashed)."""
    if not histories:
        raise ValueError("no training histories to plot")
    if window < 1:
        raise ValueError(f"window must be a positive number of iterations, got {window}")
    fig, ax = plt.subplots(figsize=(6.5, 4.0))
    for index, (history, label) in enumerate(zip(histories, labels, strict=True)):
        keys = return_keys(history)
        color = f"C{index % 10}"
        iterations = np.arange(1, len(history) + 1)
        after = np.array([h[keys[-1]] for h in history])
        before = np.array([h[keys[0]] for h in history])
        ax.plot(iterations, after, color=color, alpha=0.2, linewidth=0.8)
        ax.plot(iterations, _moving_average(after, window), color=color, linewidth=2.0,
                label=f"{label}, {step_label(keys[-1])}" if len(keys) > 1 else label)
        if len(keys) > 1:
            ax.plot(iterations, _moving_average(before, window), color=color, linestyle="--", linewidth=1.2,
                    label=f"{label}, {step_label(keys[0])}")
    ax.set_xlabel("meta-iteration")
    ax.set_ylabel(f"mean training return ({window}-iteration moving average)")
    ax.set_title(title or "training curves")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each index (fewer at the start)."""
    sums = np.cumsum(np.insert(values, 0, 0.0))  # sums[i]: the first i values
    ends = np.arange(1, len(values) + 1)
    counts = np.minimum(ends, window)
    return (sums[ends] - sums[ends - counts]) / counts


def plot_navigation_trajectories(
    goals: np.ndarray,
    batches: Sequence[Episodes],
    labels: Sequence[str],
    path: str | Path,
    episodes_per_goal: int = 3,
) -> Path:
    """One panel per stage (e.g. before adaptation, after 1 and 3 steps): a few trajectories per goal.

    :param goals: ``[M, 2]`` goal positions, one per task of every batch.
    :param batches: one :class:`Episodes` per stage, with observations ``[T, M, N, 2]``.
    """
    goals = np.asarray(goals)
    fig, axes = plt.subplots(1, len(batches), figsize=(4.0 * len(batches), 4.0), squeeze=False)
    colors = plt.cm.tab10(np.arange(len(goals)) % 10)
    for ax, batch, label in zip(axes[0], batches, labels, strict=True):
        obs = batch.observations.numpy()
        mask = batch.mask.numpy()
        for m, goal in enumerate(goals):
            for n in range(min(episodes_per_goal, obs.shape[2])):
                valid = mask[:, m, n] > 0
                xy = obs[valid, m, n]  # positions before each step: starts at the origin
                ax.plot(xy[:, 0], xy[:, 1], color=colors[m], alpha=0.7, linewidth=1.0)
            ax.scatter(*goal, marker="*", s=180, color=colors[m], edgecolor="black", zorder=3)
        ax.scatter([0], [0], marker="o", color="black", s=20, zorder=3)
        ax.set_title(f"{label}: return {batch.mean_return():.1f}")
        ax.set_xlim(-0.6, 0.6)
        ax.set_ylim(-0.6, 0.6)
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
    fig.suptitle("2D navigation: trajectories (stars: goals)")
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
