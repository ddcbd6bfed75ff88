"""Tests for scripts/benchmark_sampler.py: its time split of the sampler adds up and leaves the env as it was."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import load_script

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "benchmark_sampler.py"
TINY = ["--tasks", "2", "--episodes", "3", "--horizon", "10", "--threads", "1", "--sync-envs", "2"]


@pytest.fixture(scope="module")
def benchmark():
    return load_script("scripts/benchmark_sampler.py")


def test_time_split_adds_up_and_the_env_is_restored(benchmark) -> None:
    ours, params, tasks = benchmark.make_sampler("meta_rl/HalfCheetahVel-v0", {}, 2, 3, 10, 1, [8])
    try:
        envs = ours.envs.unwrapped
        steps_per_second, split, seed, actions, observations, valid = benchmark.timed_collect(ours, params, tasks)
        assert valid == pytest.approx(steps_per_second)  # the half-cheetah never ends an episode early
        assert "step" not in vars(envs) and "rollout" not in vars(envs._rollout)  # the timers are gone
        assert actions.shape == (10, 6, 6) and observations.shape == (2, 3, 17)
        assert split["physics"] > 0.0 and split["env"] > 0.0 and split["policy"] > 0.0
        seconds_per_step = 6 / steps_per_second  # 6 envs per step
        assert sum(split.values()) == pytest.approx(seconds_per_step, rel=1e-6)
        # the same collect again replays the same actions: the repeats time the same work
        again = benchmark.timed_collect(ours, params, tasks)
        assert again[2] == seed and (again[3] == actions).all()
    finally:
        ours.close()


def test_prints_every_row_and_the_split() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), *TINY, "--repeats", "2"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    for row in ("raw batched physics", "our vector env", "our sampler, policy in the loop", "SyncVectorEnv of 2"):
        assert row in result.stdout
    split = re.search(r"physics ([\d.]+), rest of the vector env's step ([\d.]+), policy and sampler outside the "
                      r"env ([\d.]+) \(one policy forward alone, back to back: ([\d.]+)\)", result.stdout)
    assert split is not None, result.stdout
    assert all(float(value) > 0.0 for value in split.groups())
    assert "median of 2 interleaved repeats" in result.stdout


def test_no_repeats_is_a_clear_error() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), *TINY, "--repeats", "0"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2 and "--repeats must be at least 1, got 0" in result.stderr


def test_every_mujoco_family_is_measured_with_terminations_counted_as_stepped() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), *TINY, "--repeats", "1", "--env", "all"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    for env_id in ("HalfCheetahVel", "AntVel", "AntGoal", "HumanoidDir", "Walker2dParams", "HopperParams"):
        assert f"meta_rl/{env_id}-v0 " in summary, summary


def test_env_kwargs_reach_the_family_and_a_bad_one_is_a_clear_error() -> None:
    result = subprocess.run([sys.executable, str(SCRIPT), *TINY, "--repeats", "1", "--env", "meta_rl/AntDir-v0",
                             "--env-kwarg", "healthy_z_range=[0.35, 0.85]"], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "env kwargs {'healthy_z_range': [0.35, 0.85]}" in result.stdout
    result = subprocess.run([sys.executable, str(SCRIPT), *TINY, "--env-kwarg", "healthy"], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 2 and "must look like NAME=VALUE" in result.stderr
