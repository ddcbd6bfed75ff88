"""``research/speed_measures.py``: a trained half-cheetah run scored with our speed and with the paper's, on drawn
tasks or on a task file, with env kwargs changed as ``meta-rl evaluate`` changes them; bad input is a clear error."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import TINY

from meta_rl.cli import main

SCRIPT = Path(__file__).resolve().parents[1] / "research" / "speed_measures.py"
pytestmark = pytest.mark.research  # a research one-off: `pytest -m research` runs it


@pytest.fixture(scope="module")
def cheetah_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("speed") / "run"
    overrides = [*TINY, "sampler_threads=1", "iterations=1"]
    assert main(["train", "cheetah-vel-maml", *overrides, "--run-dir", str(run_dir), "--no-progress"]) == 0
    return run_dir


def run_script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


def test_scores_a_task_file_with_changed_env_kwargs_both_ways(cheetah_run: Path, tmp_path: Path) -> None:
    task_file = tmp_path / "speeds.json"
    task_file.write_text(json.dumps({"tasks": [0.5, 1.5]}))
    done = run_script(str(cheetah_run), "--task-file", str(task_file), "--env-kwarg", "reset_noise=rllab",
                      "--episodes", "1")
    assert done.returncode == 0, done.stderr
    header, ours, paper, difference = done.stdout.splitlines()[:4]
    assert f"2 tasks from {task_file} x 1 episodes, env kwargs changed: {{'reset_noise': 'rllab'}}" in header
    mean = {name: float(line.split(":")[1].split("±")[0]) for name, line in
            (("ours", ours), ("paper", paper), ("difference", difference))}
    assert all(math.isfinite(value) for value in mean.values())
    assert mean["ours"] < 0  # ten steps of |speed - target| and control cost, for targets 0.5 and 1.5 m/s
    assert abs(mean["difference"] - (mean["paper"] - mean["ours"])) <= 0.15  # the printed means are rounded


def test_both_measures_do_not_depend_on_the_speed_the_run_rewards(cheetah_run: Path) -> None:
    """Before adapting, the episodes are the same whichever speed the env rewards, so both lines must be too."""
    common = ["--steps", "0", "--tasks", "2", "--episodes", "1"]
    plain = run_script(str(cheetah_run), *common)
    centre = run_script(str(cheetah_run), *common, "--env-kwarg", "speed_measure=centre_of_mass")
    assert plain.returncode == 0 and centre.returncode == 0, plain.stderr + centre.stderr
    lines, centre_lines = plain.stdout.splitlines(), centre.stdout.splitlines()
    assert lines[1:] == centre_lines[1:]
    assert lines[1].split(":")[1] != lines[2].split(":")[1]  # the two measures differ


@pytest.mark.parametrize(("args", "message"), [
    (["--env-kwarg", "bogus=1"], "unknown keyword(s) 'bogus'"),
    (["--env-kwarg", "reset_noise"], "must look like NAME=VALUE"),
    (["--task-file", "nowhere.json"], "cannot read the task file 'nowhere.json'"),
])
def test_bad_input_is_a_clear_error_before_any_rollout(cheetah_run: Path, args: list[str], message: str) -> None:
    done = run_script(str(cheetah_run), *args)
    assert done.returncode != 0 and message in done.stderr and not done.stdout
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr


def test_a_task_outside_the_family_is_named(cheetah_run: Path, tmp_path: Path) -> None:
    task_file = tmp_path / "goals.json"
    task_file.write_text(json.dumps([[0.1, 0.2]]))  # a 2D-navigation goal, not a speed
    done = run_script(str(cheetah_run), "--task-file", str(task_file))
    assert done.returncode != 0 and "task 0 ([0.1, 0.2])" in done.stderr and "Traceback" not in done.stderr
