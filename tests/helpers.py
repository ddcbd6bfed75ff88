"""Shared by the tests: small deterministic problems for the gradient tests (float64, tiny policy, hand-made
episodes), the names of the shipped presets, the config overrides of a tiny training run, and loading a script
as a module."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch

from meta_rl.episodes import Episodes
from meta_rl.policy import GaussianMLPPolicy, Params

CHEETAH_PRESETS = sorted(f"cheetah-{family}-{method}{variant}" for family in ("dir", "vel")
                         for method in ("maml", "metasgd", "oracle", "pretrained") for variant in ("", "-paper"))
PROMP_PRESETS = ["cheetah-dir-promp", "cheetah-dir-promp-paper", "cheetah-vel-promp", "cheetah-vel-promp-paper",
                 "navigation-promp"]
ANT_PRESETS = sorted(f"ant-{family}-{method}" for family in ("vel", "dir", "goal")
                     for method in ("maml", "promp", "pretrained", "oracle"))
PARAMS_PRESETS = sorted(f"{body}-params-{method}" for body in ("walker2d", "hopper")
                        for method in ("maml", "promp", "pretrained", "oracle"))
HUMANOID_PRESETS = [f"humanoid-dir-{method}" for method in ("maml", "oracle", "pretrained", "promp")]
METAWORLD_PRESETS = sorted([*(f"metaworld-ml1-{task}-{method}" for task in ("reach", "push", "pick-place")
                              for method in ("maml", "promp")), "metaworld-ml10-maml", "metaworld-ml10-promp"])
PRESETS = sorted([*CHEETAH_PRESETS, *PROMP_PRESETS, *ANT_PRESETS, *PARAMS_PRESETS, *HUMANOID_PRESETS,
                  *METAWORLD_PRESETS,
                  *(f"navigation-{name}" for name in ("maml", "maml-adam", "maml-paper", "metasgd", "metasgd-adam",
                                                      "metasgd-paper", "oracle", "oracle-paper", "pretrained",
                                                      "pretrained-paper"))])
"""Every preset that ships with the package, sorted."""


ROOT = Path(__file__).resolve().parents[1]


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
ON_CUDA = pytest.param("cuda", marks=needs_cuda)  # a device parameter that runs where CUDA is


def load_script(relative_path: str) -> ModuleType:
    """A repository script (e.g. ``scripts/benchmark_sampler.py``) imported as a module, to test its functions."""
    path = ROOT / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_policy(hidden: tuple[int, ...] = (5,)) -> GaussianMLPPolicy:
    """A 2-in, 2-out Gaussian MLP small enough for explicit Hessians."""
    return GaussianMLPPolicy(2, 2, hidden, "tanh", init_std=0.8)


def tiny_params(policy: GaussianMLPPolicy, seed: int = 0) -> Params:
    """Float64 parameters with non-zero biases and log-stds (so no symmetry hides a bug)."""
    generator = torch.Generator().manual_seed(seed)
    params = policy.init_params(generator)
    return {k: (v + 0.1 * torch.randn(v.shape, generator=generator)).double() for k, v in params.items()}


def tiny_episodes(num_tasks: int = 3, horizon: int = 4, num_eps: int = 2, seed: int = 1) -> Episodes:
    """Random episodes with advantages, some steps masked (episodes that ended early)."""
    g = torch.Generator().manual_seed(seed)
    shape = (horizon, num_tasks, num_eps)
    mask = torch.ones(shape, dtype=torch.float64)
    mask[-1, 0, 1] = 0.0
    mask[-2:, 1, 0] = 0.0
    return Episodes(
        observations=torch.randn(*shape, 2, generator=g, dtype=torch.float64),
        actions=torch.randn(*shape, 2, generator=g, dtype=torch.float64),
        rewards=torch.randn(shape, generator=g, dtype=torch.float64) * mask,
        mask=mask,
        log_probs=-2.0 + 0.3 * torch.randn(shape, generator=g, dtype=torch.float64),
        advantages=torch.randn(shape, generator=g, dtype=torch.float64) * mask,
    )


def flat(params: Params) -> torch.Tensor:
    """Concatenate a parameter dict."""
    return torch.cat([v.reshape(-1) for v in params.values()])


def unflat(vector: torch.Tensor, like: Params) -> Params:
    """Inverse of :func:`flat`."""
    out, offset = {}, 0
    for name, value in like.items():
        out[name] = vector[offset : offset + value.numel()].view_as(value)
        offset += value.numel()
    return out


def finite_difference_gradient(fn, vector: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Central finite differences of a scalar function of a flat float64 vector."""
    grad = torch.zeros_like(vector)
    for i in range(vector.numel()):
        step = torch.zeros_like(vector)
        step[i] = eps
        grad[i] = (fn(vector + step) - fn(vector - step)) / (2 * eps)
    return grad


# Config overrides for a training run of about a tenth of a second per iteration on one CPU thread.
TINY = [
    "meta_batch_size=2", "episodes_per_task=2", "horizon=10", "policy.hidden_sizes=[8]", "outer.cg_iters=3",
    "checkpoint_every=1", "torch_threads=1", "device=cpu",
]


def step_alike(native, reference, rng, steps: int, bound: float, info_keys: tuple[str, ...] = ()) -> int:
    """Step a native vector env and a ``SyncVectorEnv`` of its single env ``steps`` times with the same uniform
    actions in [-bound, bound] (outside the action space, so clipping counts); every output and the ``info_keys``
    must be equal bit for bit. Returns the number of terminations seen."""
    import warnings

    import numpy as np

    terminations = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # actions outside the action space: the passive checker warns
        for _ in range(steps):
            actions = rng.uniform(-bound, bound, size=(native.num_envs, native.single_action_space.shape[0]))
            out, ref = native.step(actions), reference.step(actions)
            for mine, theirs in zip(out[:4], ref[:4], strict=True):
                np.testing.assert_array_equal(mine, theirs)
            for key in info_keys:  # SyncVectorEnv leaves a key out when every sub-env was autoreset: 0 then
                np.testing.assert_array_equal(out[4][key], ref[4].get(key, np.zeros(native.num_envs)))
            terminations += int(out[2].sum())
    return terminations
