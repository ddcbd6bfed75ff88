"""Checkpoints: one file with everything needed to resume, written atomically, loaded without running code.

The file is a ``torch.save`` of tensors and plain data (dicts, lists, numbers, strings) and is read back with
``torch.load(weights_only=True)``, which refuses anything else: loading a checkpoint never executes code.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

FORMAT = "meta_rl.checkpoint"
VERSION = 3
"""2: the ant velocity and direction families' control cost default became 0.005 (2026-12-02); 3: ant direction's
healthy reward default became the MAML paper's 0.05 (2026-12-07). An older file gets the defaults it was trained
with (:data:`ENV_DEFAULT_CHANGES`). Every version from 1 loads."""
CHECKPOINT_NAME = "checkpoint.pt"
SNAPSHOT_PREFIX = "checkpoint-"
"""A kept iteration's checkpoint is ``checkpoint-ITERATION.pt`` (:func:`snapshot_name`)."""


ADDED_CONFIG_KEYS: dict[tuple[str, str], Any] = {("inner", "estimator"): "maml"}
"""Config keys added after checkpoints were first written, with the value those checkpoints were trained with (the
only behaviour there was); a default that later changes must not change what an old run resumes or evaluates as."""


_ANT_DIR = ("meta_rl/AntDir-v0", "meta_rl/AntDirOracle-v0")
ENV_DEFAULT_CHANGES: dict[int, dict[str, dict[str, Any]]] = {
    2: {env_id: {"ctrl_cost_weight": 0.5} for env_id in ("meta_rl/AntVel-v0", "meta_rl/AntVelOracle-v0", *_ANT_DIR)},
    3: {env_id: {"healthy_reward": 1.0} for env_id in _ANT_DIR},
}
"""Env keyword defaults that changed with a format version, keyed by that version, each with the value files of
earlier versions were trained with: loading fills them in where a file did not set them, so an old run resumes and
evaluates as it trained."""


def snapshot_name(iteration: int) -> str:
    """The file name that keeps iteration ``iteration``'s checkpoint, e.g. ``checkpoint-00250.pt``."""
    return f"{SNAPSHOT_PREFIX}{iteration:05d}.pt"


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, from another version, or does not match what it is loaded into."""


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file from a file path or a run directory (its latest checkpoint)."""
    path = Path(path)
    if path.is_dir():
        candidate = path / CHECKPOINT_NAME
        if not candidate.is_file():
            raise CheckpointError(f"run directory {str(path)!r} has no {CHECKPOINT_NAME}; has it saved one yet?")
        return candidate
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {str(path)!r}: expected a run directory or a {CHECKPOINT_NAME} file")
    return path


def save_checkpoint(state: dict[str, Any], path: str | Path, file_format: str = FORMAT, version: int = VERSION
                    ) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file in the same directory, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": file_format, "version": version, **state}
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(
    path: str | Path,
    file_format: str = FORMAT,
    version: int = VERSION,
    required: tuple[str, ...] = ("config", "iteration", "learner", "rng"),
) -> dict[str, Any]:
    """Read a checkpoint (file or run directory) with weights-only unpickling and check its format."""
    path = resolve_checkpoint(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for truncated/corrupt/unsafe files
        raise CheckpointError(
            f"cannot read checkpoint {str(path)!r}: the file is corrupt or not a meta_rl checkpoint "
            f"({_load_failure(error)})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != file_format:
        found = state.get("format") if isinstance(state, dict) else None
        raise CheckpointError(
            f"{str(path)!r} is not a meta_rl checkpoint of kind {file_format!r} (its format marker is {found!r})"
        )
    if state.get("version") not in range(1, version + 1):
        raise CheckpointError(
            f"checkpoint {str(path)!r} has format version {state.get('version')!r}; this meta_rl reads 1 to {version}"
        )
    missing = [key for key in required if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {str(path)!r} is incomplete: missing {', '.join(missing)}")
    if isinstance(state.get("config"), dict):
        for (section, key), value in ADDED_CONFIG_KEYS.items():
            if isinstance(state["config"].get(section), dict):
                state["config"][section].setdefault(key, value)
    if state["version"] < version:
        _fill_old_env_defaults(state, state["version"])
        state["version"] = version
    return state


def _fill_old_env_defaults(state: dict[str, Any], file_version: int) -> None:
    """Write the defaults of every :data:`ENV_DEFAULT_CHANGES` after ``file_version`` into the file's env keywords
    (a training checkpoint's ``config.env``, or an adapted policy's ``env_id`` and ``env_kwargs``), where the file
    did not set them."""
    env = state["config"].get("env") if isinstance(state.get("config"), dict) else None
    if isinstance(env, dict):
        env_id, kwargs = env.get("id"), env.setdefault("kwargs", {})
    else:
        env_id, kwargs = state.get("env_id"), state.setdefault("env_kwargs", {})
    if isinstance(kwargs, dict):
        for changed_in, defaults in ENV_DEFAULT_CHANGES.items():
            if file_version < changed_in:
                for key, value in defaults.get(env_id, {}).items():
                    kwargs.setdefault(key, value)


def _load_failure(error: Exception) -> str:
    """One line on why ``torch.load`` refused a file, without torch's advice to load it unrestricted (which
    would run whatever code the file carries)."""
    found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(error))
    if found:
        return f"it holds a Python object of type {found.group(1)}, which a checkpoint never does; refused unread"
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if not first_line or first_line.startswith("Weights only load failed"):
        return f"{type(error).__name__}: not a readable torch file"
    return f"{type(error).__name__}: {first_line[:200]}"


def check_params_match(
    saved: dict[str, torch.Tensor], expected_shapes: dict[str, tuple[int, ...]], what: str
) -> None:
    """Raise :class:`CheckpointError` unless ``saved`` has exactly the expected names and shapes."""
    if set(saved) != set(expected_shapes):
        raise CheckpointError(
            f"{what}: checkpoint has tensors {sorted(saved)}, the policy expects {sorted(expected_shapes)}"
        )
    for name, shape in expected_shapes.items():
        if tuple(saved[name].shape) != tuple(shape):
            raise CheckpointError(
                f"{what}: tensor {name!r} has shape {tuple(saved[name].shape)} in the checkpoint, "
                f"the policy expects {tuple(shape)}"
            )
