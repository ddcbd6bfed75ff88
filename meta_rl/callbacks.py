"""What happens around each meta-iteration, as callbacks the trainer calls (in the manner of Stable-Baselines3).

:meth:`Trainer.train <meta_rl.trainer.Trainer.train>` runs the built-in ones (TensorBoard, checkpoints, Ctrl-C,
held-out evaluation with ``eval_every``, the progress bar) and then the user's. A callback that returns
``False`` from :meth:`Callback.on_iteration_end` stops training after that iteration; the trainer then writes
the checkpoint, so the run can be resumed::

    class StopAtReturn(Callback):
        def on_iteration_end(self, trainer, stats):
            return stats["returns/step_1"] < -8.0    # False (stop) once the adapted return passes -8

    trainer.train(callbacks=[StopAtReturn()])
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from meta_rl.logger import Logger

if TYPE_CHECKING:
    from meta_rl.trainer import Trainer

__all__ = [
    "Callback",
    "CheckpointCallback",
    "EvaluationCallback",
    "InterruptCallback",
    "ProgressBarCallback",
    "TensorBoardCallback",
]

EVALUATION_SEED = 1_000_003  # held-out tasks: the stream `meta-rl evaluate` draws from, apart from training's


class Callback:
    """Hooks the trainer calls; override any of them. ``stats`` are the iteration's statistics keyed by their
    TensorBoard tags (a callback may add entries for the ones after it, as the evaluation does)."""

    def on_train_start(self, trainer: Trainer) -> None:
        """Before the first iteration of this call to ``train`` (also when resuming)."""

    def on_iteration_end(self, trainer: Trainer, stats: dict[str, float]) -> bool | None:
        """After each iteration (``trainer.iteration`` already counts it); return ``False`` to stop training."""
        return None

    def on_train_end(self, trainer: Trainer) -> None:
        """When ``train`` returns or raises (always called: release what ``on_train_start`` took)."""


class EvaluationCallback(Callback):
    """Every ``every`` iterations, adapt the current meta-policy to a fixed set of held-out tasks (as
    ``meta-rl evaluate`` does) and add their mean returns after 0..``grad_steps`` steps to the iteration's
    statistics as ``heldout/step_K``. Its random streams are its own: training's numbers do not change."""

    def __init__(self, every: int, num_tasks: int = 10, grad_steps: int = 3, seed: int = EVALUATION_SEED) -> None:
        if every < 1 or num_tasks < 1 or grad_steps < 0:
            raise ValueError(f"every ({every}) and num_tasks ({num_tasks}) must be >= 1 and grad_steps "
                             f"({grad_steps}) >= 0")
        self.every, self.num_tasks, self.grad_steps, self.seed = every, num_tasks, grad_steps, seed
        self.tasks: np.ndarray | None = None

    def on_iteration_end(self, trainer: Trainer, stats: dict[str, float]) -> bool | None:
        if trainer.iteration % self.every != 0:
            return None
        tick = time.perf_counter()
        meta = trainer.meta_policy()
        if self.tasks is None:
            self.tasks = meta.sample_held_out_tasks(self.num_tasks, np.random.default_rng(self.seed))
        _, log = meta.adapt_tasks(self.tasks, self.grad_steps, seed=self.seed)
        stats.update({f"heldout/step_{k}": value for k, value in enumerate(log.returns)})
        for k, rates in enumerate(log.successes or []):
            stats[f"heldout/success_step_{k}"] = float(rates.mean())
        stats["time/evaluation"] = time.perf_counter() - tick
        return None


class TensorBoardCallback(Callback):
    """Writes each iteration's statistics (and, on a new run, the config) to the run directory."""

    def __init__(self) -> None:
        self.logger: Logger | None = None

    def on_train_start(self, trainer: Trainer) -> None:
        self.logger = Logger(str(trainer.run_dir), purge_step=trainer.iteration + 1 if trainer.iteration else None)
        if trainer.iteration == 0:
            self.logger.log_config(trainer.config.to_dict(), trainer.config.to_yaml())

    def on_iteration_end(self, trainer: Trainer, stats: dict[str, float]) -> bool | None:
        assert self.logger is not None
        self.logger.log_iteration(trainer.iteration, stats)
        return None

    def on_train_end(self, trainer: Trainer) -> None:
        if self.logger is not None:
            self.logger.close()
            self.logger = None


class CheckpointCallback(Callback):
    """Writes the checkpoint every ``checkpoint_every`` iterations, at each ``snapshot_every`` snapshot and at
    the last iteration (atomically: an interrupted write leaves the previous checkpoint)."""

    def on_iteration_end(self, trainer: Trainer, stats: dict[str, float]) -> bool | None:
        if trainer.checkpoint_due():
            trainer.save()
        return None


class InterruptCallback(Callback):
    """The first Ctrl-C finishes the current iteration, then stops training (the trainer writes the checkpoint);
    a second one aborts at once, the last written checkpoint intact. Only in the main thread."""

    def __init__(self) -> None:
        self.count = 0
        self.previous: Any = None
        self.installed = False

    def _handler(self, signum: int, frame: Any) -> None:
        self.count += 1
        if self.count > 1:
            raise KeyboardInterrupt
        print("\nCtrl-C: finishing this iteration, then saving a checkpoint (Ctrl-C again to abort now).",
              file=sys.stderr)

    def on_train_start(self, trainer: Trainer) -> None:
        self.count = 0
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handler)  # None: a handler installed from C
            self.installed = True

    def on_iteration_end(self, trainer: Trainer, stats: dict[str, float]) -> bool | None:
        return False if self.count else None

    def on_train_end(self, trainer: Trainer) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, self.previous)
            self.installed, self.previous = False, None


class ProgressBarCallback(Callback):
    """A tqdm bar: iterations, the returns before and after adaptation, seconds per iteration."""

    def __init__(self) -> None:
        self.bar: Any = None

    def on_train_start(self, trainer: Trainer) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=trainer.config.iterations, initial=trainer.iteration, desc="meta-train", unit="it",
                        dynamic_ncols=True)

    def on_iteration_end(self, trainer: Trainer, stats: dict[str, float]) -> bool | None:
        last = f"returns/step_{trainer.config.inner.num_steps}"
        postfix = {"pre": f"{stats['returns/step_0']:.1f}", "post": f"{stats[last]:.1f}"}
        if "heldout/step_1" in stats:
            postfix["heldout"] = f"{stats['heldout/step_1']:.1f}"
        self.bar.set_postfix(**postfix, s_it=f"{stats['time/iteration']:.2f}")
        self.bar.update(1)
        return None

    def on_train_end(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def default_callbacks(trainer: Trainer, progress: bool) -> list[Callback]:
    """The built-in callbacks for ``trainer``'s config, in the order they run: checkpoints, the held-out evaluation
    (it adds to the statistics the next ones record), TensorBoard, Ctrl-C and the progress bar."""
    config = trainer.config
    callbacks: list[Callback] = [CheckpointCallback()]  # first: nothing after it can lose a due checkpoint
    if config.eval_every:
        callbacks.append(EvaluationCallback(config.eval_every, config.eval_tasks, config.eval_grad_steps))
    callbacks += [TensorBoardCallback(), InterruptCallback()]
    if progress:
        callbacks.append(ProgressBarCallback())
    return callbacks


def end_callbacks(callbacks: Iterable[Callback], trainer: Trainer) -> None:
    """Every callback's ``on_train_end``, even when one raises (the first error is raised after all have run), so
    the SIGINT handler, the event file and the progress bar are always released."""
    errors: list[BaseException] = []
    for callback in callbacks:
        try:
            callback.on_train_end(trainer)
        except BaseException as error:  # re-raised below, once every callback has ended
            errors.append(error)
    if errors:
        raise errors[0]


def run_callbacks(callbacks: Sequence[Callback], trainer: Trainer, stats: dict[str, float]) -> bool:
    """Every callback's ``on_iteration_end`` (all run, even after one asked to stop); ``False`` if one did."""
    keep_going = True
    for callback in callbacks:
        if callback.on_iteration_end(trainer, stats) is False:
            keep_going = False
    return keep_going
