"""The meta-training loop: wires sampler, baseline, inner loop, meta-learner, logger and checkpoints.

It does not know how an environment steps or how a gradient is taken; each of those is one module.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from meta_rl.adaptation import step_kl, step_size_shapes
from meta_rl.api import MetaPolicy
from meta_rl.callbacks import Callback, default_callbacks, end_callbacks, run_callbacks
from meta_rl.checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    check_params_match,
    load_checkpoint,
    save_checkpoint,
    snapshot_name,
)
from meta_rl.config import Config, ConfigError, apply_override, config_from_dict, load_config, merge_dicts
from meta_rl.episodes import Episodes
from meta_rl.meta_learner import MetaLearner, NonFiniteError
from meta_rl.policy import GaussianMLPPolicy, Params, gaussian_entropy
from meta_rl.rollout import collect_and_adapt, make_policy
from meta_rl.sampler import make_sampler
from meta_rl.streams import TRAINING


def resolve_device(name: str) -> torch.device:
    """``auto`` means CUDA when present, else CPU; an unavailable CUDA device is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: {name!r} requested but CUDA is not available; use device=cpu or auto")
    return torch.device(name)


def adaptation_diagnostics(policy: GaussianMLPPolicy, params: Params, adapted: Params, supports: list[Episodes],
                          task_returns: list[torch.Tensor]) -> dict[str, float]:
    """What the inner steps did: the KL from the pre- to the post-adaptation policy on the first support batch's
    observations, the pre-adaptation policy's entropy, and the per-task gain in return (mean, share negative).

    :param task_returns: each batch's mean return per task ``[M]``, before adapting and after each step.
    """
    with torch.no_grad():
        entropy = gaussian_entropy(params["log_std"]).item()
        stats = {"policy/entropy": entropy}
        if not supports:
            return stats
        kl = step_kl(policy, params, adapted, supports[0])
        gain = task_returns[-1] - task_returns[0]
        stats.update({"adaptation/kl": kl.mean().item(), "adaptation/gain": gain.mean().item(),
                      "adaptation/gain_negative_fraction": (gain < 0).double().mean().item()})
        return stats


@dataclass
class MetaBatch:
    """One meta-iteration's episodes: what :meth:`Trainer.sample_meta_batch` returns."""

    supports: list[Episodes]  # one batch per inner step, on the update device
    query: Episodes  # the adapted policies' episodes
    returns: dict[str, float]  # returns/step_k: mean return of each batch (and success/step_k where reported)
    diagnostics: dict[str, float]  # adaptation/* and policy/entropy: how the inner steps changed the policy
    timings: dict[str, float]  # seconds spent sampling and adapting
    env_steps: int


class Trainer:
    """Meta-trains a policy with MAML or Meta-SGD.

    :param config: the run's configuration.
    :param run_dir: where TensorBoard events, ``config.yaml`` and ``checkpoint.pt`` go.
    """

    def __init__(self, config: Config, run_dir: str | Path) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        if config.torch_threads:
            torch.set_num_threads(config.torch_threads)
        self.device = resolve_device(config.device)
        self.rng = np.random.default_rng(config.seed)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.policy = make_policy(config)
        params = self.policy.init_params(self.generator)
        self.learner = MetaLearner(self.policy, params, config.inner, config.outer, self.device)
        self.sampler = make_sampler(config, self.policy, config.meta_batch_size, config.episodes_per_task)
        self.iteration = 0
        self.history: list[dict[str, float]] = []
        self._saved_iteration: int | None = None  # the iteration the checkpoint file holds, if this trainer wrote it

    # --- checkpoints -------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        """The run's checkpoint file."""
        return self.run_dir / CHECKPOINT_NAME

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: parameters, step sizes, optimizer, RNG states, config."""
        return {
            "config": self.config.to_dict(),
            "iteration": self.iteration,
            "learner": self.learner.state_dict(),
            "rng": {"numpy": self.rng.bit_generator.state, "torch": self.generator.get_state()},
            "history": self.history,
        }

    def save(self) -> Path:
        """Write the checkpoint atomically, and this iteration's snapshot too when ``snapshot_every`` asks."""
        state = self.state_dict()
        if self._snapshot_due():
            save_checkpoint(state, self.snapshot_path(self.iteration))
        path = save_checkpoint(state, self.checkpoint_path)
        self._saved_iteration = self.iteration
        return path

    def _snapshot_due(self) -> bool:
        """Whether this iteration's checkpoint is also kept (``snapshot_every``)."""
        every = self.config.snapshot_every
        return every > 0 and self.iteration % every == 0

    def checkpoint_due(self) -> bool:
        """Whether this iteration writes the checkpoint: every ``checkpoint_every``, each snapshot, the last."""
        config, iteration = self.config, self.iteration
        return iteration % config.checkpoint_every == 0 or self._snapshot_due() or iteration == config.iterations

    def snapshot_path(self, iteration: int) -> Path:
        """The file that keeps iteration ``iteration``'s checkpoint (with ``snapshot_every``)."""
        return self.run_dir / snapshot_name(iteration)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a checkpoint's state; raises :class:`CheckpointError` on any mismatch."""
        diffs = _config_differences(config_from_dict(state["config"]).to_dict(), self.config.to_dict())
        if diffs:
            raise CheckpointError(f"checkpoint config differs from this run's: {'; '.join(diffs[:5])}")
        check_params_match(state["learner"]["params"], self.policy.shapes, "policy parameters")
        if self.learner.step_sizes is not None:
            check_params_match(state["learner"]["step_sizes"] or {},
                               step_size_shapes(self.policy, self.config.inner.num_steps), "Meta-SGD step sizes")
        self.learner.load_state_dict(state["learner"])
        self.rng.bit_generator.state = state["rng"]["numpy"]
        self.generator.set_state(state["rng"]["torch"])
        self.iteration = int(state["iteration"])
        self.history = list(state.get("history", []))
        self._saved_iteration = self.iteration

    @classmethod
    def resume(cls, run_dir: str | Path, overrides: dict[str, Any] | None = None) -> Trainer:
        """A trainer restored from ``run_dir``'s checkpoint; only the keys in :data:`RESUME_MAY_CHANGE` may be
        overridden."""
        state = load_checkpoint(run_dir)
        saved = config_from_dict(state["config"]).to_dict()
        requested = config_from_dict(merge_dicts(saved, overrides or {}))
        diffs = _config_differences(saved, requested.to_dict())
        if diffs:
            raise ConfigError(
                f"{'; '.join(diffs)}: the config cannot change on --resume (only iterations can, and the machine "
                f"settings {', '.join(RESUME_MAY_CHANGE[1:])}); start a new run instead"
            )
        trainer = cls(requested, run_dir)
        trainer.load_state_dict(state)
        return trainer

    # --- one meta-iteration ------------------------------------------------------------------------------
    def sample_meta_batch(self) -> MetaBatch:
        """Sample ``meta_batch_size`` tasks and, with the current meta-parameters, their support episodes (one
        batch per inner step, adapting in between) and the adapted policies' query episodes."""
        config, learner = self.config, self.learner
        tasks = self.sampler.sample_tasks(config.meta_batch_size, self.rng)
        schedule = [learner.step_size(k) for k in range(config.inner.num_steps)]
        result = collect_and_adapt(self.sampler, self.policy, learner.params, tasks, schedule, config, config.seed,
                                   (TRAINING, self.iteration), self.device)
        task_returns = result.task_returns()
        returns = {f"returns/step_{k}": batch.mean_return() for k, batch in enumerate(result.batches)}
        for k, rates in enumerate(result.task_successes() or []):
            returns[f"success/step_{k}"] = rates.mean().item()
        diagnostics = adaptation_diagnostics(self.policy, learner.params, result.params, result.supports,
                                             task_returns)
        return MetaBatch(result.supports, result.query, returns, diagnostics, result.seconds, result.env_steps)

    def train_iteration(self) -> dict[str, float]:
        """Sample tasks, adapt, collect query episodes, meta-update; returns the iteration's statistics."""
        learner = self.learner
        start = time.perf_counter()
        batch = self.sample_meta_batch()
        supports, query, timings, env_steps = batch.supports, batch.query, batch.timings, batch.env_steps
        stats = {**batch.returns, **batch.diagnostics}
        tick = time.perf_counter()
        update = learner.update(supports, query)
        outer_time = time.perf_counter() - tick

        stats.update(update)  # already named by their TensorBoard tags
        stats["policy/std"] = learner.params["log_std"].detach().exp().mean().item()
        if learner.step_sizes is not None:
            flat = torch.cat([v.detach().reshape(-1) for v in learner.step_sizes.values()])
            stats["metasgd/step_size_mean"] = flat.mean().item()
            stats["metasgd/step_size_abs_mean"] = flat.abs().mean().item()
            stats["metasgd/step_size_min"] = flat.min().item()
            stats["metasgd/step_size_max"] = flat.max().item()
        stats["perf/env_steps_per_second"] = env_steps / max(timings["sampling"], 1e-9)
        stats["time/sampling"] = timings["sampling"]
        stats["time/adaptation"] = timings["adaptation"]
        stats["time/outer_update"] = outer_time
        stats["time/iteration"] = time.perf_counter() - start
        return stats

    # --- the loop ----------------------------------------------------------------------------------------
    def train(self, progress: bool = True, callbacks: Sequence[Callback] = ()) -> list[dict[str, float]]:
        """Train until ``config.iterations``; returns the history of training returns.

        The built-in callbacks (:func:`~meta_rl.callbacks.default_callbacks`: held-out evaluation with
        ``eval_every``, TensorBoard, checkpoints, Ctrl-C, the progress bar if ``progress``) run first, then
        ``callbacks``. When one asks to stop (the first Ctrl-C does), the checkpoint is written and ``train``
        returns; a second Ctrl-C aborts at once. NaN/inf stops the run with :class:`NonFiniteError` without
        overwriting the last good checkpoint.
        """
        config = self.config
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.yaml").write_text(config.to_yaml())
        everyone = [*default_callbacks(self, progress), *callbacks]
        started: list[Callback] = []
        try:
            for callback in everyone:
                callback.on_train_start(self)
                started.append(callback)
            while self.iteration < config.iterations:
                try:
                    stats = self.train_iteration()
                except NonFiniteError as error:
                    raise NonFiniteError(
                        f"{error} at iteration {self.iteration + 1}; stopped without saving. The last good "
                        f"checkpoint is {self.checkpoint_path if self.checkpoint_path.exists() else 'none'}"
                    ) from None
                self.iteration += 1
                self.history.append({k: v for k, v in stats.items() if k.startswith(("returns/", "success/"))})
                if not run_callbacks(everyone, self, stats):
                    if self._saved_iteration != self.iteration:
                        self.save()
                    if self.iteration < config.iterations:
                        print(f"Stopped: checkpoint saved at iteration {self.iteration} to {self.checkpoint_path}; "
                              "continue with --resume.", file=sys.stderr)
                    break
        finally:
            end_callbacks(reversed(started), self)
        return self.history

    def meta_policy(self) -> MetaPolicy:
        """A copy of the current meta-parameters (and Meta-SGD step sizes) as a :class:`~meta_rl.api.MetaPolicy`, to
        adapt and evaluate as a loaded checkpoint would be (later training does not change it)."""
        step_sizes = self.learner.step_sizes
        return MetaPolicy(self.config, {k: v.detach().cpu().clone() for k, v in self.learner.params.items()},
                          None if step_sizes is None else {k: v.detach().cpu().clone() for k, v in step_sizes.items()},
                          self.iteration, str(self.checkpoint_path))

    def close(self) -> None:
        """Release the environments."""
        self.sampler.close()


def default_run_dir(source: str | Config, seed: int) -> Path:
    """``runs/NAME-seedN``: a preset's name or a YAML file's stem (``runs/run-seedN`` for a :class:`Config`)."""
    name = "run" if isinstance(source, Config) else Path(source).stem if str(source).endswith((".yaml", ".yml")) \
        else str(source)
    return Path("runs") / f"{name}-seed{seed}"


def make_trainer(source: str | Path | Config, run_dir: str | Path | None = None, overrides: Sequence[str] = (),
                 resume: bool = False) -> Trainer:
    """A trainer for a preset name, a YAML file or a :class:`Config`, with ``key=value`` overrides; with ``resume``,
    the run in ``run_dir`` (or ``source`` as a run directory) continued from its checkpoint. A new run refuses a
    directory that already holds a checkpoint."""
    if isinstance(overrides, str):
        raise ConfigError(f"overrides must be a list of key=value strings, e.g. [{overrides!r}], not one string")
    if resume:
        if isinstance(source, Config) and run_dir is None:
            raise ConfigError("resume=True continues a run directory: pass run_dir (or the directory as the source)")
        raw: dict = {}
        for override in overrides:
            apply_override(raw, override)
        return Trainer.resume(Path(run_dir if run_dir is not None else source), raw)
    if isinstance(source, Config):
        raw = source.to_dict()
        for override in overrides:
            apply_override(raw, override)
        config = config_from_dict(raw)
    else:
        config = load_config(source, list(overrides))
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(source, config.seed)
    if (run_dir / CHECKPOINT_NAME).exists():
        raise ConfigError(f"run directory {str(run_dir)!r} already holds a checkpoint; resume it (--resume, "
                          "resume=True) or choose another directory")
    return Trainer(config, run_dir)


def train(source: str | Path | Config, run_dir: str | Path | None = None, overrides: Sequence[str] = (),
          callbacks: Sequence[Callback] = (), progress: bool = True, resume: bool = False) -> MetaPolicy:
    """Train a preset, a YAML file or a :class:`Config` (``meta-rl train`` from Python) and return the trained
    meta-policy, ready to adapt; ``run_dir`` (default ``runs/NAME-seedN``) keeps its checkpoint and TensorBoard
    events.

        meta = meta_rl.train("navigation-maml", "runs/nav", overrides=["iterations=50"])
    """
    trainer = make_trainer(source, run_dir, overrides, resume)
    try:
        trainer.train(progress=progress, callbacks=callbacks)
    finally:
        trainer.close()
    return trainer.meta_policy()


RESUME_MAY_CHANGE = (
    "iterations", "device", "torch_threads", "sampler_threads", "sampler", "checkpoint_every", "snapshot_every",
    "eval_every", "eval_tasks", "eval_grad_steps",
)
"""Config keys a resumed run may change: how long and where it runs, not what it learns."""


def _config_differences(saved: dict, mine: dict) -> list[str]:
    """Differences between two config dicts other than the keys in :data:`RESUME_MAY_CHANGE`."""
    free = dict.fromkeys(RESUME_MAY_CHANGE)
    return _dict_diff({**saved, **free}, {**mine, **free})


def _dict_diff(saved: dict, mine: dict, prefix: str = "") -> list[str]:
    """Human-readable differences between two nested config dicts."""
    diffs = []
    for key in sorted(set(saved) | set(mine)):
        a, b = saved.get(key), mine.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            diffs += _dict_diff(a, b, f"{prefix}{key}.")
        elif a != b:
            diffs.append(f"{prefix}{key}: checkpoint has {a!r}, this run has {b!r}")
    return diffs
