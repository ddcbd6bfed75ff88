"""Process-wide CPU settings: the OpenMP spin limit set when meta_rl is imported, and when it must not be."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from meta_rl.runtime import OPENMP_SPIN_COUNT

PRINT_SPIN = "import os; print(os.environ.get('GOMP_SPINCOUNT', 'unset'), os.environ.get('OMP_WAIT_POLICY', 'unset'))"


def run_python(code: str, **env: str) -> str:
    """Run ``code`` in a fresh interpreter with the OpenMP variables cleared, then ``env``; its stdout."""
    clean = {k: v for k, v in os.environ.items()
             if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "META_RL_DEFAULT_OPENMP")}
    result = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                            check=True, timeout=120)
    return result.stdout.strip()


def test_importing_meta_rl_first_limits_spinning_for_torch_and_child_processes() -> None:
    # the variable is in the environment torch's libgomp reads at load and child processes (Ray workers) inherit
    assert run_python(f"import meta_rl, torch; {PRINT_SPIN}") == f"{OPENMP_SPIN_COUNT} unset"


@pytest.mark.parametrize(("env", "expected"), [
    ({"OMP_WAIT_POLICY": "ACTIVE"}, "unset ACTIVE"),
    ({"GOMP_SPINCOUNT": "5"}, "5 unset"),
    ({"META_RL_DEFAULT_OPENMP": "1"}, "unset unset"),
])
def test_a_users_own_choice_is_kept(env: dict[str, str], expected: str) -> None:
    assert run_python(f"import meta_rl; {PRINT_SPIN}", **env) == expected


def test_nothing_is_set_once_torch_is_loaded() -> None:
    # libgomp has read its settings by then: setting the variable would only mislead child processes' readers
    assert run_python(f"import torch, meta_rl; {PRINT_SPIN}") == "unset unset"
