"""Tests for meta_rl/callbacks.py: the hooks the trainer calls, stopping early, and the held-out evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import TINY
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from meta_rl.api import MetaPolicy
from meta_rl.callbacks import EVALUATION_SEED, Callback, EvaluationCallback
from meta_rl.checkpoint import load_checkpoint
from meta_rl.config import load_config
from meta_rl.trainer import Trainer


def make_trainer(run_dir, *extra: str, preset: str = "navigation-maml") -> Trainer:
    return Trainer(load_config(preset, [*TINY, "iterations=4", *extra]), run_dir)


class Recorder(Callback):
    """Records every call; stops after ``stop_at`` iterations, or raises at ``raise_at``."""

    def __init__(self, stop_at: int | None = None, raise_at: int | None = None) -> None:
        self.calls: list[tuple[str, int]] = []
        self.stats: list[dict[str, float]] = []
        self.stop_at, self.raise_at = stop_at, raise_at

    def on_train_start(self, trainer):
        self.calls.append(("start", trainer.iteration))

    def on_iteration_end(self, trainer, stats):
        self.calls.append(("iteration", trainer.iteration))
        self.stats.append(dict(stats))
        if trainer.iteration == self.raise_at:
            raise RuntimeError("callback failed")
        return False if trainer.iteration == self.stop_at else None

    def on_train_end(self, trainer):
        self.calls.append(("end", trainer.iteration))


def test_hooks_run_in_order_with_the_iteration_statistics(tmp_path):
    trainer, recorder = make_trainer(tmp_path), Recorder()
    try:
        trainer.train(progress=False, callbacks=[recorder])
    finally:
        trainer.close()
    assert recorder.calls == [("start", 0), ("iteration", 1), ("iteration", 2), ("iteration", 3), ("iteration", 4),
                              ("end", 4)]
    assert [s["returns/step_1"] for s in recorder.stats] == [h["returns/step_1"] for h in trainer.history]
    assert {"losses/kl", "time/iteration", "policy/entropy"} <= set(recorder.stats[0])


def test_a_callback_stops_training_and_the_stop_is_saved_and_resumable(tmp_path, capsys):
    # checkpoint_every=100: only the stop writes a checkpoint before the end
    trainer, recorder = make_trainer(tmp_path / "stopped", "checkpoint_every=100"), Recorder(stop_at=2)
    try:
        history = trainer.train(progress=False, callbacks=[recorder])
    finally:
        trainer.close()
    assert trainer.iteration == 2 and len(history) == 2 and recorder.calls[-1] == ("end", 2)
    assert load_checkpoint(trainer.run_dir)["iteration"] == 2
    assert "checkpoint saved at iteration 2" in capsys.readouterr().err

    resumed = Trainer.resume(trainer.run_dir)
    straight = make_trainer(tmp_path / "straight", "checkpoint_every=100")
    try:
        resumed.train(progress=False)
        straight.train(progress=False)
    finally:
        resumed.close()
        straight.close()
    assert resumed.history == straight.history


def test_train_end_runs_when_a_callback_raises(tmp_path):
    trainer, recorder = make_trainer(tmp_path), Recorder(raise_at=2)
    try:
        with pytest.raises(RuntimeError, match="callback failed"):
            trainer.train(progress=False, callbacks=[recorder])
    finally:
        trainer.close()
    assert recorder.calls[-1] == ("end", 2)


def scalars(run_dir, tag: str) -> dict[int, float]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return {event.step: event.value for event in events.Scalars(tag)} if tag in events.Tags()["scalars"] else {}


def test_periodic_evaluation_is_the_held_out_adaptation_of_that_iteration_and_changes_no_training_number(tmp_path):
    evaluated = make_trainer(tmp_path / "evaluated", "eval_every=2", "eval_tasks=3", "eval_grad_steps=2",
                             "snapshot_every=2")
    plain = make_trainer(tmp_path / "plain")
    recorder = Recorder()
    try:
        evaluated.train(progress=False, callbacks=[recorder])
        plain.train(progress=False)
    finally:
        evaluated.close()
        plain.close()
    assert evaluated.history == plain.history  # its random streams are its own

    logged = [{k: v for k, v in stats.items() if k.startswith("heldout/")} for stats in recorder.stats]
    assert [sorted(entry) for entry in logged] == [[], ["heldout/step_0", "heldout/step_1", "heldout/step_2"]] * 2
    on_disk = scalars(evaluated.run_dir, "heldout/step_1")
    assert on_disk == pytest.approx({2: logged[1]["heldout/step_1"], 4: logged[3]["heldout/step_1"]})

    # The same numbers as adapting iteration 2's snapshot to the same held-out tasks with the same seed.
    meta = MetaPolicy.load(evaluated.snapshot_path(2))
    tasks = meta.sample_tasks(3, np.random.default_rng(EVALUATION_SEED))
    _, log = meta.adapt_tasks(tasks, 2, seed=EVALUATION_SEED)
    assert log.returns == pytest.approx([logged[1][f"heldout/step_{k}"] for k in range(3)], rel=1e-6)


def test_evaluation_callback_refuses_bad_settings():
    with pytest.raises(ValueError, match="every"):
        EvaluationCallback(every=0)


class FailsAtEnd(Callback):
    def on_train_end(self, trainer):
        raise RuntimeError("end failed")


def test_the_sigint_handler_is_restored_when_a_callbacks_train_end_raises(tmp_path):
    import signal

    before = signal.getsignal(signal.SIGINT)
    trainer = make_trainer(tmp_path)
    try:
        with pytest.raises(RuntimeError, match="end failed"):
            trainer.train(progress=False, callbacks=[FailsAtEnd()])
    finally:
        trainer.close()
    assert signal.getsignal(signal.SIGINT) is before


def test_meta_policy_is_a_snapshot_that_later_training_leaves_alone(tmp_path):
    class Snapshot(Callback):
        def on_iteration_end(self, trainer, stats):
            if trainer.iteration == 1:
                self.meta = trainer.meta_policy()
                self.params = {k: v.clone() for k, v in self.meta.params.items()}

    trainer, snapshot = make_trainer(tmp_path), Snapshot()
    try:
        trainer.train(progress=False, callbacks=[snapshot])
    finally:
        trainer.close()
    assert snapshot.meta.iteration == 1
    for name, value in snapshot.params.items():
        assert torch.equal(snapshot.meta.params[name], value), name
    assert not torch.equal(snapshot.meta.params["log_std"], trainer.learner.params["log_std"].detach().float())
