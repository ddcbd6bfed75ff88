"""Tests for meta_rl/cli.py: the ``meta-rl`` command (presets, train, resume, errors, console script)."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import PRESETS, TINY
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from meta_rl.checkpoint import load_checkpoint
from meta_rl.cli import main
from meta_rl.config import list_presets, load_config

REQUIRED_TAGS = [
    "returns/step_0", "returns/step_1", "losses/kl", "losses/max_task_kl", "losses/surrogate_before",
    "losses/grad_norm", "trpo/accepted", "time/sampling", "time/iteration", "perf/env_steps_per_second",
    "policy/entropy", "adaptation/kl", "adaptation/gain", "adaptation/gain_negative_fraction",
]


def scalars(run_dir: Path) -> EventAccumulator:
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    return events


def train(run_dir: Path, *args: str, iterations: int = 2, preset: str = "navigation-maml") -> int:
    return main(["train", preset, *TINY, f"iterations={iterations}", *args, "--run-dir", str(run_dir),
                 "--no-progress"])


def test_presets_lists_all(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert len(lines) == len(PRESETS)
    listed = {line.split()[0]: line.split(maxsplit=1)[1] for line in lines}
    assert sorted(listed) == PRESETS
    for name, description in list_presets().items():
        assert listed[name] == description


def test_train_writes_checkpoint_config_and_tensorboard(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert train(run_dir, iterations=2) == 0
    out = capsys.readouterr().out
    assert f"Checkpoint: {run_dir / 'checkpoint.pt'}" in out
    assert "returns/step_1 = " in out

    assert load_checkpoint(run_dir)["iteration"] == 2
    assert load_config(run_dir / "config.yaml") == load_config("navigation-maml", [*TINY, "iterations=2"])
    assert list(run_dir.glob("events.out.tfevents.*")), "no TensorBoard events file"
    events = scalars(run_dir)
    tags = events.Tags()["scalars"]
    missing = [tag for tag in REQUIRED_TAGS if tag not in tags]
    assert not missing, f"missing TensorBoard tags {missing}; have {tags}"
    assert [event.step for event in events.Scalars("returns/step_0")] == [1, 2]
    assert all(event.value > 0 for event in events.Scalars("perf/env_steps_per_second"))
    assert {event.value for event in events.Scalars("trpo/accepted")} <= {0.0, 1.0}


def test_curves_prints_block_means_of_the_checkpoint_history_and_plots(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert train(run_dir, iterations=3) == 0
    history = load_checkpoint(run_dir)["history"]
    capsys.readouterr()
    assert main(["curves", str(run_dir), "--block", "2", "-o", str(tmp_path / "curves.png"), "--labels", "tiny"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "tiny: mean training return per 2 iterations"
    assert lines[1].split() == ["iterations", "before", "adapting", "after", "1", "step"]
    first, last = lines[2].split(), lines[3].split()
    assert first[0] == "1-2" and float(first[2]) == pytest.approx(
        (history[0]["returns/step_1"] + history[1]["returns/step_1"]) / 2, abs=0.006)
    assert last[0] == "3-3" and float(last[1]) == pytest.approx(history[2]["returns/step_0"], abs=0.006)
    blocks = [(history[0]["returns/step_1"] + history[1]["returns/step_1"]) / 2, history[2]["returns/step_1"]]
    best = max(blocks)
    tail = sum(h["returns/step_1"] for h in history) / 3
    assert lines[4] == (f"  after 1 step: best block {best:.2f} (iterations {'1-2' if best == blocks[0] else '3-3'}), "
                        f"last 3 iterations {tail:.2f} ({tail - best:+.2f})")
    assert (tmp_path / "curves.png").stat().st_size > 0
    assert main(["curves", str(run_dir), str(run_dir), "--labels", "one"]) == 2
    assert "1 --labels for 2 runs" in capsys.readouterr().err
    assert main(["curves", str(tmp_path / "nothing")]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_metasgd_adam_logs_step_sizes_and_no_trpo(tmp_path):
    run_dir = tmp_path / "run"
    assert train(run_dir, preset="navigation-metasgd-adam", iterations=1) == 0
    tags = scalars(run_dir).Tags()["scalars"]
    assert "metasgd/step_size_mean" in tags
    assert "returns/step_1" in tags
    assert not any(tag.startswith("trpo/") for tag in tags)


def test_promp_logs_its_tags_and_no_trpo(tmp_path):
    run_dir = tmp_path / "run"
    assert train(run_dir, preset="navigation-promp", iterations=2) == 0
    events = scalars(run_dir)
    tags = events.Tags()["scalars"]
    assert {"promp/inner_kl", "promp/inner_kl_coeff", "promp/clip_fraction", "losses/surrogate_after"} <= set(tags)
    assert not any(tag.startswith("trpo/") for tag in tags)
    assert [event.value for event in events.Scalars("promp/inner_kl_coeff")] == pytest.approx([5e-4, 5e-4])
    assert all(0.0 <= event.value <= 1.0 for event in events.Scalars("promp/clip_fraction"))


def test_adaptation_diagnostics_are_what_the_iteration_did(tmp_path):
    """The logged gain is the post- minus the pre-adaptation return (the tasks have equal episode counts), the
    entropy that of the Gaussian with the logged std (one action dimension's worth times two), the KL positive."""
    run_dir = tmp_path / "run"
    assert train(run_dir, iterations=2) == 0
    events = scalars(run_dir)
    value = lambda tag: [event.value for event in events.Scalars(tag)]  # noqa: E731
    for gain, pre, post in zip(value("adaptation/gain"), value("returns/step_0"), value("returns/step_1"),
                               strict=True):
        assert gain == pytest.approx(post - pre, abs=1e-4)
    assert value("adaptation/kl")[0] > 0.0
    assert 0.0 <= value("adaptation/gain_negative_fraction")[0] <= 1.0
    assert value("policy/entropy")[0] == pytest.approx(2 * (0.5 + 0.5 * math.log(2 * math.pi)), abs=1e-6)


def test_existing_checkpoint_needs_resume_then_resume_continues(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert train(run_dir, iterations=2) == 0
    checkpoint = (run_dir / "checkpoint.pt").read_bytes()
    capsys.readouterr()

    assert train(run_dir, iterations=4) == 2
    err = capsys.readouterr().err
    assert "already holds a checkpoint" in err and "--resume" in err and str(run_dir) in err
    assert (run_dir / "checkpoint.pt").read_bytes() == checkpoint

    # Resume with the run directory as CONFIG.
    assert main(["train", str(run_dir), "iterations=3", "--resume", "--no-progress"]) == 0
    assert f"Resuming {run_dir} at iteration 2 of 3" in capsys.readouterr().out
    assert load_checkpoint(run_dir)["iteration"] == 3
    # Resume with --run-dir (CONFIG is then ignored).
    assert main(["train", "navigation-maml", "iterations=4", "--run-dir", str(run_dir), "--resume",
                 "--no-progress"]) == 0
    state = load_checkpoint(run_dir)
    assert state["iteration"] == 4
    assert len(state["history"]) == 4
    # One TensorBoard curve, no duplicated steps across the resumed segments.
    assert [event.step for event in scalars(run_dir).Scalars("returns/step_0")] == [1, 2, 3, 4]


def test_resume_with_changed_key_is_refused(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert train(run_dir, iterations=1) == 0
    capsys.readouterr()
    assert main(["train", str(run_dir), "horizon=20", "--resume", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("meta-rl: error:")
    assert "horizon" in err and "only iterations" in err
    assert load_checkpoint(run_dir)["iteration"] == 1


def test_overrides_after_options(tmp_path):
    run_dir = tmp_path / "run"
    assert main(["train", "navigation-maml", "--run-dir", str(run_dir), *TINY, "iterations=1", "--no-progress"]) == 0
    assert load_checkpoint(run_dir)["iteration"] == 1


def test_resume_without_checkpoint(tmp_path, capsys):
    assert main(["train", str(tmp_path), "--resume", "--no-progress"]) == 2
    assert "has no checkpoint.pt" in capsys.readouterr().err


@pytest.mark.parametrize(("args", "names"), [
    (["navigation-maml", "outer.maxkl=0.1"], ["outer.maxkl", "max_kl"]),
    (["navigation-maml", "gamma=1.5"], ["gamma", "1.5", "(0, 1]"]),
    (["navigation-maml", "inner.algorithm=reptile"], ["inner.algorithm", "'reptile'", "'maml'", "'metasgd'"]),
    (["navigation-maml", "iterations"], ["'iterations'", "key=value"]),
    (["no-such-preset"], ["'no-such-preset'", *PRESETS]),
])
def test_bad_config_exits_2_and_names_the_problem(tmp_path, capsys, args, names):
    run_dir = tmp_path / "run"
    assert main(["train", *args, "--run-dir", str(run_dir), "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("meta-rl: error:")
    for name in names:
        assert name in captured.err
    assert not run_dir.exists(), "a run directory was created for a config that does not validate"


def test_default_run_dir_and_seed_flag(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "navigation-maml", *TINY, "iterations=1", "--seed", "3", "--no-progress"]) == 0
    run_dir = tmp_path / "runs" / "navigation-maml-seed3"
    assert load_checkpoint(run_dir)["config"]["seed"] == 3
    assert load_config(run_dir / "config.yaml").seed == 3


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["fly"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_console_script_help():
    script = Path(sys.executable).parent / "meta-rl"
    command = str(script) if script.exists() else shutil.which("meta-rl")
    assert command, "the meta-rl console script is not installed"
    result = subprocess.run([command, "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "usage: meta-rl" in result.stdout
    for command_name in ("train", "presets", "evaluate"):
        assert command_name in result.stdout
