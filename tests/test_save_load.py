"""Tests for meta_rl/checkpoint.py and the Trainer's save / load / resume, NaN and Ctrl-C handling."""

from __future__ import annotations

import os
import re
import signal
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY

from meta_rl.api import ADAPTED_FORMAT, ADAPTED_VERSION
from meta_rl.checkpoint import (
    CHECKPOINT_NAME,
    FORMAT,
    VERSION,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from meta_rl.config import Config, ConfigError, load_config
from meta_rl.meta_learner import NonFiniteError
from meta_rl.outer import trpo as outer_trpo
from meta_rl.trainer import Trainer


def ordered(*parts: str) -> str:
    """A ``pytest.raises(match=...)`` pattern: every part, literally, in this order."""
    return ".*".join(re.escape(part) for part in parts)


class Trainers:
    """Makes tiny trainers in ``tmp_path`` and closes them all at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.made: list[Trainer] = []

    def new(self, preset: str = "navigation-maml", iterations: int = 2, run_dir: Path | None = None,
            extra: tuple[str, ...] = ()) -> Trainer:
        config = load_config(preset, [*TINY, f"iterations={iterations}", *extra])
        trainer = Trainer(config, run_dir or self.tmp_path / f"run{len(self.made)}")
        self.made.append(trainer)
        return trainer

    def resume(self, run_dir: Path, overrides: dict | None = None) -> Trainer:
        trainer = Trainer.resume(run_dir, overrides)
        self.made.append(trainer)
        return trainer

    def close(self) -> None:
        for trainer in self.made:
            trainer.close()


@pytest.fixture
def trainers(tmp_path):
    made = Trainers(tmp_path)
    yield made
    made.close()


def assert_same(a, b, where="state"):
    """Nested dicts / lists / tensors / numbers are exactly equal (tensors: same dtype, shape and values)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor), where
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {sorted(map(str, a))} vs {sorted(map(str, b))}"
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def leftover_temp_files(run_dir: Path) -> list[str]:
    return [name for name in os.listdir(run_dir) if name.endswith(".tmp") or name.startswith(f".{CHECKPOINT_NAME}")]


# --- round trip -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["navigation-maml", "navigation-metasgd", "navigation-maml-adam",
                                    "navigation-metasgd-adam", "navigation-promp"])
def test_checkpoint_round_trip(trainers, preset):
    trainer = trainers.new(preset, iterations=2)
    initial = {k: v.detach().clone() for k, v in trainer.learner.params.items()}
    trainer.train(progress=False)
    assert any(not torch.equal(initial[k], v) for k, v in trainer.learner.params.items()), "training did nothing"
    path = trainer.save()
    assert path == trainer.run_dir / CHECKPOINT_NAME

    state = load_checkpoint(trainer.run_dir)
    assert state["format"] == FORMAT and state["version"] == VERSION
    assert state["iteration"] == 2
    assert len(state["history"]) == 2
    assert_same(state["config"], trainer.config.to_dict(), "config")
    assert_same(state["learner"], trainer.learner.state_dict(), "learner")
    assert_same(state["rng"]["numpy"], trainer.rng.bit_generator.state, "numpy rng")
    assert_same(state["rng"]["torch"], trainer.generator.get_state(), "torch rng")
    learner = state["learner"]
    assert (learner["step_sizes"] is not None) == ("metasgd" in preset)
    assert (learner["optimizer"] is not None) == preset.endswith(("-adam", "-promp"))
    if preset.endswith("-adam"):
        assert learner["optimizer"]["state"], "Adam state is empty after two updates"
    if preset.endswith("-promp"):
        assert learner["optimizer"]["adam"]["state"], "ProMP's Adam state is empty after two updates"
        assert learner["optimizer"]["inner_kl_coeff"] == [5e-4]

    # Load into a fresh, untrained trainer: it becomes an exact copy.
    fresh = trainers.new(preset, iterations=2)
    assert not torch.equal(fresh.learner.params["hidden0.weight"], trainer.learner.params["hidden0.weight"])
    fresh.load_state_dict(state)
    assert fresh.iteration == 2
    assert_same(fresh.state_dict(), trainer.state_dict())
    assert float(fresh.rng.random()) == float(trainer.rng.random())
    assert torch.equal(torch.rand(3, generator=fresh.generator), torch.rand(3, generator=trainer.generator))


# --- exact resume ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["navigation-metasgd-adam", "navigation-maml", "navigation-promp"])
def test_resume_is_exact(trainers, tmp_path, preset):
    straight = trainers.new(preset, iterations=4, run_dir=tmp_path / "straight")
    straight_history = straight.train(progress=False)

    first = trainers.new(preset, iterations=2, run_dir=tmp_path / "split")
    first.train(progress=False)
    first.close()
    resumed = trainers.resume(tmp_path / "split", {"iterations": 4})
    assert resumed.iteration == 2
    assert resumed.config.iterations == 4
    history = resumed.train(progress=False)

    assert resumed.iteration == 4
    assert history == straight_history
    assert len(history) == 4
    for name, tensor in straight.learner.params.items():
        assert torch.equal(resumed.learner.params[name], tensor), name
    assert_same(resumed.state_dict(), straight.state_dict())
    assert_same(load_checkpoint(tmp_path / "split"), load_checkpoint(tmp_path / "straight"), "checkpoint")


# --- snapshots ------------------------------------------------------------------------------------------------
def test_snapshots_keep_each_kth_iteration(trainers, tmp_path):
    # checkpoint_every=100: the snapshots alone decide which iterations are written before the last.
    trainer = trainers.new(iterations=5, run_dir=tmp_path / "snap", extra=("checkpoint_every=100", "snapshot_every=2"))
    trainer.train(progress=False)
    files = sorted(name for name in os.listdir(trainer.run_dir) if name.endswith(".pt"))
    assert files == ["checkpoint-00002.pt", "checkpoint-00004.pt", CHECKPOINT_NAME]
    assert load_checkpoint(trainer.snapshot_path(4))["iteration"] == 4
    # The snapshot of iteration 2 is what a 2-iteration run of the same config ends with.
    short = trainers.new(iterations=2, run_dir=tmp_path / "short", extra=("checkpoint_every=100",))
    short.train(progress=False)
    snapshot, final = load_checkpoint(trainer.snapshot_path(2)), load_checkpoint(short.run_dir)
    assert_same(snapshot["learner"], final["learner"], "learner")
    assert snapshot["history"] == final["history"]


def test_snapshot_every_zero_keeps_only_the_latest(trainers):
    trainer = trainers.new(iterations=2)
    trainer.train(progress=False)
    assert sorted(name for name in os.listdir(trainer.run_dir) if name.endswith(".pt")) == [CHECKPOINT_NAME]


# --- atomic writes --------------------------------------------------------------------------------------------
def test_training_leaves_no_temp_files(trainers):
    trainer = trainers.new(iterations=2)
    trainer.train(progress=False)
    trainer.save()
    assert trainer.checkpoint_path.is_file()
    assert leftover_temp_files(trainer.run_dir) == []


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failed_write_keeps_previous_checkpoint(trainers, monkeypatch, error):
    trainer = trainers.new(iterations=1)
    trainer.train(progress=False)
    before = trainer.checkpoint_path.read_bytes()
    trainer.iteration = 99  # the state we fail to write

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"half a checkpoint")
        raise error

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(type(error)):
        trainer.save()
    monkeypatch.undo()

    assert trainer.checkpoint_path.read_bytes() == before
    assert load_checkpoint(trainer.run_dir)["iteration"] == 1
    assert leftover_temp_files(trainer.run_dir) == []
    trainer.save()  # and the next write works
    assert load_checkpoint(trainer.run_dir)["iteration"] == 99


# --- loading never runs code ----------------------------------------------------------------------------------
def _plant(path: str) -> None:
    Path(path).write_text("code ran")


class Exploit:
    """Unpickling this calls ``_plant(path)``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (_plant, (self.path,))


def _checkpoint_like(payload) -> dict:
    return {"format": FORMAT, "version": VERSION, "config": Config().to_dict(), "iteration": 0,
            "learner": payload, "rng": {}}


def test_loading_refuses_code_and_runs_none(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / CHECKPOINT_NAME
    torch.save(_checkpoint_like(Exploit(marker)), path)

    with pytest.raises(CheckpointError, match=ordered(str(path), "corrupt or not a meta_rl checkpoint")):
        load_checkpoint(path)
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path)  # as a run directory
    with pytest.raises(CheckpointError):
        Trainer.resume(tmp_path)
    assert not marker.exists(), "loading a checkpoint executed code"

    # Control: unrestricted unpickling of the same file does run the code, so the refusal above is real.
    torch.load(path, weights_only=False)
    assert marker.read_text() == "code ran"


def test_loading_refuses_arbitrary_objects(tmp_path):
    path = tmp_path / "object.pt"
    torch.save(_checkpoint_like(types.SimpleNamespace(params={})), path)
    with pytest.raises(CheckpointError, match="corrupt or not a meta_rl checkpoint") as raised:
        load_checkpoint(path)
    message = str(raised.value)
    assert "types.SimpleNamespace" in message
    assert "\n" not in message and "weights_only" not in message  # one line, no advice to load it unrestricted


# --- bad files ------------------------------------------------------------------------------------------------
@pytest.fixture
def valid_checkpoint(tmp_path) -> Path:
    return save_checkpoint(_checkpoint_like({"params": {"w": torch.arange(1000.0)}}), tmp_path / "good.pt")


@pytest.mark.parametrize("damage", ["truncated", "random", "empty"])
def test_corrupt_file(valid_checkpoint, damage):
    data = valid_checkpoint.read_bytes()
    assert load_checkpoint(valid_checkpoint)["iteration"] == 0  # intact before
    damaged = {
        "truncated": data[: len(data) // 2],
        "random": np.random.default_rng(0).bytes(len(data)),
        "empty": b"",
    }[damage]
    valid_checkpoint.write_bytes(damaged)
    with pytest.raises(CheckpointError, match=ordered("cannot read checkpoint", str(valid_checkpoint), "corrupt")):
        load_checkpoint(valid_checkpoint)


@pytest.mark.parametrize("content", [
    {"state_dict": {"weight": torch.zeros(2, 2)}},
    torch.zeros(3),
    [1, 2, 3],
    {"format": "someone.else", "version": 1},
])
def test_torch_file_that_is_not_a_meta_rl_checkpoint(tmp_path, content):
    path = tmp_path / "model.pt"
    torch.save(content, path)
    with pytest.raises(CheckpointError, match=ordered(str(path), "not a meta_rl checkpoint")):
        load_checkpoint(path)


def test_other_format_version(tmp_path):
    path = tmp_path / "future.pt"
    torch.save({**_checkpoint_like({}), "version": 99}, path)
    with pytest.raises(CheckpointError, match=ordered(str(path), "version 99", f"reads 1 to {VERSION}")):
        load_checkpoint(path)


def _ant_checkpoint(env_id: str, kwargs: dict, version: int) -> dict:
    config = Config().to_dict()
    config["env"] = {"id": env_id, "kwargs": dict(kwargs)}
    return {**_checkpoint_like({}), "config": config, "version": version}


@pytest.mark.parametrize("env_id, kwargs, version, expected", [
    ("meta_rl/AntVel-v0", {}, 1, {"ctrl_cost_weight": 0.5}),  # trained before the default became 0.005
    ("meta_rl/AntDirOracle-v0", {"frame_skip": 5}, 1,
     {"frame_skip": 5, "ctrl_cost_weight": 0.5, "healthy_reward": 1.0}),  # both changes since version 1
    ("meta_rl/AntDir-v0", {"ctrl_cost_weight": 0.02}, 1, {"ctrl_cost_weight": 0.02, "healthy_reward": 1.0}),
    ("meta_rl/AntDir-v0", {}, 2, {"healthy_reward": 1.0}),  # trained before the default became 0.05
    ("meta_rl/AntDir-v0", {"healthy_reward": 0.05}, 2, {"healthy_reward": 0.05}),  # set by the run: kept
    ("meta_rl/AntVel-v0", {}, 2, {}),  # a version-2 file takes today's defaults
    ("meta_rl/AntDir-v0", {}, 3, {}),
    ("meta_rl/HalfCheetahVel-v0", {}, 1, {}),  # no default of it changed
])
def test_old_checkpoint_keeps_the_env_defaults_it_trained_with(tmp_path, env_id, kwargs, version, expected):
    path = tmp_path / "old.pt"
    torch.save(_ant_checkpoint(env_id, kwargs, version), path)
    state = load_checkpoint(path)
    assert state["config"]["env"]["kwargs"] == expected
    assert state["version"] == VERSION  # upgraded: saving it again writes the current version with the filled value


def test_version_1_adapted_policy_keeps_the_env_defaults_it_was_adapted_with(tmp_path):
    """An adapted policy file names its env at the top level; version 1 there gets the same defaults."""
    path = tmp_path / "adapted.pt"
    torch.save({"format": ADAPTED_FORMAT, "version": 1, "params": {}, "policy": {}, "env_id": "meta_rl/AntDir-v0",
                "env_kwargs": {}, "task": [1.0]}, path)
    state = load_checkpoint(path, file_format=ADAPTED_FORMAT, version=ADAPTED_VERSION,
                            required=("params", "policy", "env_id", "task"))
    assert state["env_kwargs"] == {"ctrl_cost_weight": 0.5, "healthy_reward": 1.0}


def test_incomplete_checkpoint(tmp_path):
    path = tmp_path / "partial.pt"
    torch.save({"format": FORMAT, "version": VERSION, "config": {}}, path)
    with pytest.raises(CheckpointError, match=ordered("incomplete", "iteration, learner, rng")):
        load_checkpoint(path)


def test_missing_path(tmp_path):
    missing = tmp_path / "nowhere" / CHECKPOINT_NAME
    with pytest.raises(CheckpointError, match=ordered("no checkpoint at", str(missing))):
        load_checkpoint(missing)
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        Trainer.resume(tmp_path / "nowhere")


def test_run_dir_without_checkpoint(tmp_path):
    (tmp_path / "config.yaml").write_text("iterations: 3\n")
    with pytest.raises(CheckpointError, match=ordered(str(tmp_path), f"has no {CHECKPOINT_NAME}")):
        load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match=f"has no {CHECKPOINT_NAME}"):
        Trainer.resume(tmp_path)


# --- mismatches -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides", [{"meta_batch_size": 3}, {"seed": 1}, {"outer": {"max_kl": 0.5}}])
def test_resume_refuses_config_changes_other_than_iterations(trainers, overrides):
    trainer = trainers.new(iterations=1)
    trainer.train(progress=False)
    (key,) = overrides
    with pytest.raises(ConfigError, match=ordered(key, "only iterations")):
        Trainer.resume(trainer.run_dir, overrides)


def test_load_state_dict_refuses_other_config(trainers):
    trainer = trainers.new(iterations=1)
    trainer.train(progress=False)
    other = trainers.new(iterations=1, extra=("gamma=0.9",))
    with pytest.raises(CheckpointError, match=ordered("config differs", "gamma", "0.99", "0.9")):
        other.load_state_dict(load_checkpoint(trainer.run_dir))


def test_load_state_dict_refuses_other_shapes_and_names_the_tensor(trainers):
    small = trainers.new(iterations=1)
    small.train(progress=False)
    state = load_checkpoint(small.run_dir)
    wide = trainers.new(iterations=1, extra=("policy.hidden_sizes=[16]",))
    before = {k: v.detach().clone() for k, v in wide.learner.params.items()}

    with pytest.raises(CheckpointError, match=ordered("policy.hidden_sizes", "[8]", "[16]")):
        wide.load_state_dict(state)
    # Even with the config check out of the way, the tensors' shapes are checked and named.
    state["config"] = wide.config.to_dict()
    with pytest.raises(CheckpointError, match=ordered("'hidden0.weight'", "(8, 2)", "(16, 2)")):
        wide.load_state_dict(state)
    for name, tensor in wide.learner.params.items():  # nothing was half-loaded
        assert torch.equal(tensor, before[name]), name
    assert wide.iteration == 0


def test_load_state_dict_refuses_missing_tensor(trainers):
    trainer = trainers.new(iterations=1)
    trainer.train(progress=False)
    state = load_checkpoint(trainer.run_dir)
    del state["learner"]["params"]["log_std"]
    with pytest.raises(CheckpointError, match=ordered("policy parameters", "log_std")):
        trainers.new(iterations=1).load_state_dict(state)


# --- NaN ------------------------------------------------------------------------------------------------------
def _poison_parameter(trainer, monkeypatch):
    with torch.no_grad():
        trainer.learner.params["hidden0.weight"][0, 0] = float("nan")


def _poison_optimizer_step(trainer, monkeypatch):
    step = trainer.learner.algorithm.optimizer.step

    def nan_step(*args, **kwargs):
        result = step(*args, **kwargs)
        with torch.no_grad():
            trainer.learner.params["mean.bias"][0] = float("nan")
        return result

    monkeypatch.setattr(trainer.learner.algorithm.optimizer, "step", nan_step)


def _poison_trpo_step(trainer, monkeypatch):
    monkeypatch.setattr(outer_trpo, "trust_region_step", lambda direction, *_: torch.full_like(direction, np.nan))


@pytest.mark.parametrize(("preset", "poison", "where"), [
    ("navigation-maml", _poison_parameter, "the outer surrogate loss"),
    ("navigation-metasgd-adam", _poison_parameter, "the outer surrogate loss"),
    ("navigation-maml-adam", _poison_optimizer_step, "the meta-parameters after the update"),
    ("navigation-metasgd", _poison_trpo_step, "the TRPO step"),
])
def test_nan_stops_training_and_keeps_last_checkpoint(trainers, monkeypatch, preset, poison, where):
    trainer = trainers.new(preset, iterations=4)
    original = trainer.train_iteration
    good = {}

    def iteration_with_nan():
        if trainer.iteration == 2:
            good["bytes"] = trainer.checkpoint_path.read_bytes()
            poison(trainer, monkeypatch)
        return original()

    monkeypatch.setattr(trainer, "train_iteration", iteration_with_nan)
    with pytest.raises(NonFiniteError, match=ordered(where, "at iteration 3", str(trainer.checkpoint_path))):
        trainer.train(progress=False)
    assert trainer.checkpoint_path.read_bytes() == good["bytes"]
    assert load_checkpoint(trainer.run_dir)["iteration"] == 2
    assert trainer.iteration == 2 and len(trainer.history) == 2
    assert leftover_temp_files(trainer.run_dir) == []


def test_nan_in_first_iteration_writes_no_checkpoint(trainers, monkeypatch):
    trainer = trainers.new(iterations=2)
    _poison_parameter(trainer, monkeypatch)
    with pytest.raises(NonFiniteError, match=ordered("at iteration 1", "checkpoint is none")):
        trainer.train(progress=False)
    assert not trainer.checkpoint_path.exists()


# --- Ctrl-C ---------------------------------------------------------------------------------------------------
@pytest.fixture
def sigint_guard():
    """Our own SIGINT handler around the test: a signal the trainer fails to catch is recorded, not fatal."""
    leaked = []
    previous = signal.signal(signal.SIGINT, lambda *_: leaked.append(True))
    yield leaked
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_finishes_the_iteration_saves_and_returns(trainers, tmp_path, monkeypatch, capsys, sigint_guard):
    # checkpoint_every=100: without the interrupt nothing would be saved before iteration 5.
    trainer = trainers.new(iterations=5, run_dir=tmp_path / "interrupted", extra=("checkpoint_every=100",))
    original = trainer.train_iteration
    calls = []

    def iteration_with_ctrl_c():
        calls.append(trainer.iteration)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return original()

    monkeypatch.setattr(trainer, "train_iteration", iteration_with_ctrl_c)
    handler = signal.getsignal(signal.SIGINT)
    history = trainer.train(progress=False)

    assert not sigint_guard, "SIGINT reached the handler outside train()"
    assert signal.getsignal(signal.SIGINT) is handler, "train() did not restore the SIGINT handler"
    assert calls == [0, 1]
    assert trainer.iteration == 2 and len(history) == 2
    assert load_checkpoint(trainer.run_dir)["iteration"] == 2
    captured = capsys.readouterr()
    assert "Ctrl-C" in captured.err
    assert "checkpoint saved at iteration 2" in captured.out + captured.err

    # Resuming after the interrupt gives the same run as never stopping.
    monkeypatch.undo()
    resumed = trainers.resume(trainer.run_dir)
    assert resumed.iteration == 2
    resumed.train(progress=False)
    straight = trainers.new(iterations=5, run_dir=tmp_path / "straight", extra=("checkpoint_every=100",))
    straight.train(progress=False)
    assert resumed.history == straight.history
    assert_same(resumed.learner.state_dict(), straight.learner.state_dict())


def test_second_ctrl_c_aborts_at_once(trainers, monkeypatch, sigint_guard):
    trainer = trainers.new(iterations=5)
    original = trainer.train_iteration

    def iteration_with_two_ctrl_c():
        if trainer.iteration == 1:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return original()

    monkeypatch.setattr(trainer, "train_iteration", iteration_with_two_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        trainer.train(progress=False)
    assert not sigint_guard
    assert trainer.iteration == 1
    assert load_checkpoint(trainer.run_dir)["iteration"] == 1


def test_resume_allows_machine_settings_to_change(trainers):
    trainer = trainers.new(iterations=1)
    trainer.train(progress=False)
    resumed = Trainer.resume(trainer.run_dir, {"iterations": 2, "torch_threads": 1, "sampler_threads": 1,
                                               "checkpoint_every": 7, "snapshot_every": 10})
    assert resumed.iteration == 1
    config = resumed.config
    machine = (config.torch_threads, config.sampler_threads, config.checkpoint_every, config.snapshot_every)
    assert machine == (1, 1, 7, 10)


def test_checkpoint_from_before_the_estimator_key_resumes_and_evaluates_as_maml(trainers):
    """Runs trained before ``inner.estimator`` existed used the MAML surrogate: whatever the default is now, their
    checkpoints load with ``maml``, and resume as it."""
    trainer = trainers.new("navigation-maml", iterations=1)
    trainer.train(progress=False)
    state = load_checkpoint(trainer.run_dir)
    del state["config"]["inner"]["estimator"]
    save_checkpoint(state, trainer.checkpoint_path)
    assert load_checkpoint(trainer.run_dir)["config"]["inner"]["estimator"] == "maml"
    resumed = trainers.resume(trainer.run_dir, {"iterations": 2})
    assert resumed.config.inner.estimator == "maml"
