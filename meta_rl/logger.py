"""TensorBoard logging with stable, documented tags (dashboards depend on them: change with care)."""

from __future__ import annotations

import os
import time
from typing import Any

from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

# tag -> meaning: docs/tensorboard.md is generated from this dict (scripts/generate_docs.py).
TAGS: dict[str, str] = {
    "returns/step_0": "Mean undiscounted episode return of the meta-policy before adaptation (support episodes).",
    "returns/step_K": "Mean return after K inner steps (K = 1..inner.num_steps; the last is the query batch).",
    "heldout/step_K": "With eval_every: mean return on the eval_tasks held-out tasks after K inner steps (K = "
    "0..eval_grad_steps), each step on episodes_per_task fresh episodes, as `meta-rl evaluate` adapts; the same "
    "tasks and random streams at every evaluation.",
    "success/step_K": "Families with a success flag (Meta-World): the share of episodes that succeeded (the flag "
    "set at any step) before adaptation (K = 0) and after K inner steps, over the meta-batch.",
    "heldout/success_step_K": "With eval_every, on families with a success flag: the held-out tasks' success rate "
    "after K inner steps.",
    "losses/surrogate_before": "Outer surrogate loss before the meta-update.",
    "losses/surrogate_after": "Outer surrogate loss after the meta-update (equal to before if TRPO rejected).",
    "losses/kl": "Mean KL between the adapted policies before and after the meta-update.",
    "losses/max_task_kl": "Largest single task's KL between its adapted policies before and after the meta-update "
    "(the trust region bounds only the mean; a max far above max_kl means a few tasks took most of the step).",
    "losses/grad_norm": "Norm of the meta-gradient.",
    "trpo/accepted": "1 if the line search accepted a step, else 0 (TRPO only).",
    "trpo/backtracks": "Line-search backtracking steps taken (line_search_steps when rejected; TRPO only).",
    "trpo/step_fraction": "Fraction of the full trust-region step taken (0 when rejected; TRPO only).",
    "promp/inner_kl": "Mean over inner steps of the KL between each step's sampling policy and the same policy "
    "recomputed from the updated meta-parameters (ProMP only).",
    "promp/inner_kl_coeff": "Mean over inner steps of the inner-KL penalty's coefficient used (ProMP only).",
    "promp/clip_fraction": "Share of valid query steps whose likelihood ratio left [1 - clip_eps, 1 + clip_eps] "
    "after the update (ProMP only).",
    "policy/std": "Mean standard deviation of the meta-policy's Gaussian.",
    "policy/entropy": "Differential entropy of the meta-policy's Gaussian (before adaptation), in nats.",
    "adaptation/kl": "Mean KL from the pre- to the post-adaptation policy on the first support batch's observations "
    "(over tasks): how far the inner steps move the policy.",
    "adaptation/gain": "Mean over tasks of the post-adaptation minus the pre-adaptation return (returns/step_K minus "
    "returns/step_0, task by task).",
    "adaptation/gain_negative_fraction": "Share of the meta-batch's tasks whose return fell with adaptation.",
    "metasgd/step_size_mean": "Mean of Meta-SGD's per-parameter step sizes (Meta-SGD only).",
    "metasgd/step_size_abs_mean": "Mean absolute Meta-SGD step size (Meta-SGD only).",
    "metasgd/step_size_min": "Smallest Meta-SGD step size (Meta-SGD only).",
    "metasgd/step_size_max": "Largest Meta-SGD step size (Meta-SGD only).",
    "perf/env_steps_per_second": "Environment steps per second of sampling (valid steps only).",
    "time/sampling": "Seconds per iteration collecting episodes and computing advantages.",
    "time/adaptation": "Seconds per iteration computing adapted parameters for the query rollouts.",
    "time/outer_update": "Seconds per iteration in the meta-update.",
    "time/iteration": "Seconds per meta-iteration in all (without the held-out evaluation).",
    "time/evaluation": "Seconds the held-out evaluation took (eval_every only).",
}

# what `meta-rl evaluate` writes to RUN_DIR/evaluation-seedS (x axis: inner steps); see evaluation.write_tensorboard
EVALUATE_TAGS: dict[str, str] = {
    "evaluation/return": "Mean return over the held-out tasks after K inner steps (x axis: K).",
    "evaluation/return_stderr": "Its standard error over tasks.",
    "evaluation/success": "Families with a success flag (Meta-World): the held-out tasks' success rate after K "
    "inner steps.",
    "evaluation/table": "The printed table, as text.",
}


class Logger:
    """Writes one iteration's statistics to TensorBoard under the tags in :data:`TAGS`."""

    def __init__(self, log_dir: str, purge_step: int | None = None) -> None:
        _wait_past_existing_event_files(log_dir)
        self.writer = SummaryWriter(log_dir=log_dir, purge_step=purge_step)

    def log_config(self, config: dict[str, Any], text: str) -> None:
        """The run's config as text and as TensorBoard hparams."""
        self.writer.add_text("config", "```yaml\n" + text + "\n```", global_step=0)
        flat = _flatten(config)
        hparam_dict = {k: (v if isinstance(v, (int, float, str, bool)) else str(v)) for k, v in flat.items()}
        experiment, session_start, session_end = hparams(hparam_dict, {"returns/step_1": 0.0})
        for summary in (experiment, session_start, session_end):
            self.writer.file_writer.add_summary(summary)

    def log_iteration(self, iteration: int, stats: dict[str, float]) -> None:
        """Every statistic whose key is a documented tag (``returns/step_K`` included)."""
        for tag, value in stats.items():
            self.writer.add_scalar(tag, value, global_step=iteration)

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.flush()
        self.writer.close()


EVENT_FILE_PREFIX = "events.out.tfevents."


def _wait_past_existing_event_files(log_dir: str) -> None:
    """Wait (under a second) until the clock passes the creation second of the newest event file in ``log_dir``.

    TensorBoard reads a run's event files in name order, and a name is the creation second, then a counter that
    is not zero-padded: a resumed run's file made in the same second as an earlier one could sort before it (counter
    10 after 9) and its purge of the replayed steps would then drop the earlier file's steps instead.
    """
    if not os.path.isdir(log_dir):
        return
    seconds = [int(name[len(EVENT_FILE_PREFIX):].split(".")[0]) for name in os.listdir(log_dir)
               if name.startswith(EVENT_FILE_PREFIX) and name[len(EVENT_FILE_PREFIX):].split(".")[0].isdigit()]
    if seconds:
        while time.time() < max(seconds) + 1:
            time.sleep(0.05)


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out
