"""scripts/benchmark_update.py runs every row on a tiny batch and prints them with their ratios."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ON_CUDA

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "benchmark_update.py"
TINY = ["meta_batch_size=2", "episodes_per_task=2", "horizon=10", "policy.hidden_sizes=[8]", "outer.cg_iters=3",
        "torch_threads=1"]


@pytest.mark.parametrize("device", ["cpu", ON_CUDA])
def test_benchmark_update_prints_every_variant_and_the_estimator_comparison(device: str) -> None:
    args = [sys.executable, str(SCRIPT), "navigation-maml", "--repeats", "1", "--device", device]
    for override in TINY:
        args += ["--override", override]
    out = subprocess.run(args, capture_output=True, text=True, check=True, timeout=300).stdout
    for row in ("ours (fvp=analytic, exact)", "ours, fvp=gauss_newton", "reference (per task, double bwd)",
                "estimator=maml", "estimator=lvc", "estimator=dice", "ProMP (outer.optimizer=promp, lvc)"):
        assert row in out, f"{row!r} missing from:\n{out}"
    maml_row = next(line for line in out.splitlines() if line.startswith("estimator=maml"))
    assert maml_row.split()[2] == "1.00x"
