"""``research/cg_warm_start.py``: the F-cosine it scores solves by, the warm start, and a run on a tiny preset."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from helpers import ROOT, TINY, load_script

pytestmark = pytest.mark.research  # a research one-off: `pytest -m research` runs it


def spd(n: int, seed: int) -> torch.Tensor:
    a = torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return a @ a.T + 0.1 * torch.eye(n, dtype=torch.float64)


def test_f_cosine_is_one_only_along_the_solution_and_a_warm_start_from_it_stays_there() -> None:
    study = load_script("research/cg_warm_start.py")
    matrix = spd(6, 0)
    b = torch.arange(1.0, 7.0, dtype=torch.float64)
    solution = torch.linalg.solve(matrix, b)

    def matvec(v: torch.Tensor) -> torch.Tensor:
        return matrix @ v

    product = matvec(solution)
    assert study.f_cosine(matvec, 3.0 * solution, solution, product) == pytest.approx(1.0, abs=1e-12)
    assert study.f_cosine(matvec, b, solution, product) < 0.999  # the plain gradient is not the natural one
    # From a scaled copy of the solution no step is needed: the fitted scale recovers it exactly.
    torch.testing.assert_close(study.warm_solve(matvec, b, 0.2 * solution, 1), solution)
    # Six steps of CG on a 6-dimensional system solve it, from any start.
    torch.testing.assert_close(study.warm_solve(matvec, b, torch.ones(6, dtype=torch.float64), 6), solution)


def test_a_preconditioned_solve_solves_a_diagonal_system_in_one_step_and_any_system_in_n() -> None:
    study = load_script("research/cg_warm_start.py")
    diagonal = torch.tensor([1.0, 10.0, 100.0, 1000.0], dtype=torch.float64)
    b = torch.ones(4, dtype=torch.float64)
    torch.testing.assert_close(study.preconditioned_solve(lambda v: diagonal * v, b, diagonal, 1), b / diagonal)
    matrix = spd(5, 1)
    solution = study.preconditioned_solve(lambda v: matrix @ v, torch.ones(5, dtype=torch.float64),
                                          torch.diagonal(matrix), 5)
    torch.testing.assert_close(matrix @ solution, torch.ones(5, dtype=torch.float64))
    # Hutchinson's estimate of a diagonal matrix's diagonal is exact from one probe: z * (D z) = D z^2 = D.
    torch.testing.assert_close(study.estimated_diagonal(lambda v: diagonal * v, b, 1, seed=0), diagonal)


def test_runs_on_a_tiny_preset_and_prints_every_variant() -> None:
    command = [sys.executable, str(ROOT / "research" / "cg_warm_start.py"), "navigation-maml", "--iterations", "3",
               "--converged", "20", "--jacobi-probes", "2", *TINY]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300).stdout
    summary = out.splitlines()[-1].split()
    names, values = summary[0::2], [float(v) for v in summary[1::2]]
    assert names == ["cold-3", "cold-5", "cold-10", "previous", "warm-3", "warm-5", "warm-10", "jacobi-3", "jacobi-5",
                     "jacobi-10"]
    assert all(-1.0 <= v <= 1.0 + 1e-6 for v in values), out
