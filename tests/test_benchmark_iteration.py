"""scripts/benchmark_iteration.py and scripts/benchmark_concurrent.py run on a tiny batch and print every row."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import ON_CUDA

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
TINY = ["meta_batch_size=2", "episodes_per_task=2", "horizon=10", "policy.hidden_sizes=[8]", "outer.cg_iters=3",
        "torch_threads=1"]


def run(script: str, *args: str) -> str:
    """The script's output, run with no OpenMP settings of the caller's (so it gets meta_rl's own)."""
    command = [sys.executable, str(SCRIPTS / script), *args]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=300, env=env).stdout


@pytest.mark.parametrize("device", ["cpu", ON_CUDA])
def test_benchmark_iteration_prints_the_phases_and_the_floor_of_each_pass(device: str) -> None:
    """Every phase and every pass of the floor is printed, with one Fisher-vector product per CG step."""
    out = run("benchmark_iteration.py", "navigation-maml", *TINY, "--iterations", "1", "--reference-iterations", "1",
              "--device", device)
    for row in ("sampling", "outer_update", "iteration", "env steps per second", "objective + meta-gradient",
                "update: sum of the passes", "update as measured in training", "adaptation (inner step, no graph)"):
        assert row in out, f"{row!r} missing from:\n{out}"
    product = next(line for line in out.splitlines() if line.startswith("Fisher-vector product"))
    assert float(product.split(")")[1].split()[0]) == 3.0  # one product per CG step


def test_the_floor_counts_a_batched_matmuls_flops_exactly() -> None:
    """The FLOP counter counts 2 m k n for a bmm and nothing for elementwise work."""
    sys.path.insert(0, str(SCRIPTS))
    from benchmark_iteration import matmul_flops

    a, b = torch.randn(3, 50, 16), torch.randn(3, 16, 7)
    assert matmul_flops(lambda: torch.bmm(a, b) + 1.0) == 2 * 3 * 50 * 16 * 7


def test_benchmark_concurrent_times_one_run_then_two() -> None:
    """A solo phase, then two runs at once, each under meta_rl's OpenMP spin."""
    out = run("benchmark_concurrent.py", "navigation-maml", *TINY, "--iterations", "1")
    assert "GOMP_SPINCOUNT): 1000" in out  # the workers import meta_rl before torch, so they get its setting
    slowdown = next(line for line in out.splitlines() if line.startswith("slowdown"))
    assert len(slowdown.split()) == 4  # the label's two words and one figure per concurrent run
