"""Functional Gaussian MLP policy whose parameters may carry a leading task dimension.

Parameters live in a plain ``dict[str, Tensor]``. The initial (meta) parameters have their natural shapes;
adapted parameters have a leading task dimension ``[M, ...]``, and then observations are ``[M, ..., obs_dim]``
and every layer is one batched matmul over all tasks (``torch.bmm``) instead of a loop.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

Params = dict[str, Tensor]

ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}
LOG_2PI = math.log(2.0 * math.pi)


def is_task_batched(params: Params) -> bool:
    """True when ``params`` carry a leading task dimension (adapted parameters)."""
    return params["log_std"].dim() == 2


class GaussianMLPPolicy:
    """A Gaussian policy: an MLP gives the mean; the log standard deviation is a learned state-independent vector.

    :param obs_dim: observation size.
    :param action_dim: action size.
    :param hidden_sizes: widths of the hidden layers.
    :param activation: ``"tanh"`` or ``"relu"``.
    :param init_std: initial standard deviation.
    :param action_offset: with ``action_multiplier``, the env receives ``action_offset + action_multiplier * a``
        for the policy's action ``a`` (per action dimension); None: the policy acts in the env's own units.
    :param action_multiplier: see ``action_offset``.
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden_sizes: tuple[int, ...] | list[int] = (64, 64),
        activation: str = "tanh",
        init_std: float = 1.0,
        action_offset: Sequence[float] | np.ndarray | None = None,
        action_multiplier: Sequence[float] | np.ndarray | None = None,
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation {activation!r} is not allowed; expected one of {list(ACTIVATIONS)}")
        if (action_offset is None) != (action_multiplier is None):
            raise ValueError("action_offset and action_multiplier go together: pass both or neither")
        for name, values in (("action_offset", action_offset), ("action_multiplier", action_multiplier)):
            if values is not None and len(values) != action_dim:
                raise ValueError(f"{name} has {len(values)} entries; expected action_dim = {action_dim}")
        self.obs_dim = obs_dim
        self.action_dim = action_dim
        self.hidden_sizes = tuple(hidden_sizes)
        self.activation = activation
        self.init_std = init_std
        self._env_map = None if action_offset is None else (np.array(action_offset, dtype=np.float64),
                                                            np.array(action_multiplier, dtype=np.float64))
        self._act = ACTIVATIONS[activation]
        sizes = (obs_dim, *self.hidden_sizes, action_dim)
        self.layer_names = [f"hidden{i}" for i in range(len(self.hidden_sizes))] + ["mean"]
        self.shapes: dict[str, tuple[int, ...]] = {}
        for name, fan_in, fan_out in zip(self.layer_names, sizes[:-1], sizes[1:], strict=True):
            self.shapes[f"{name}.weight"] = (fan_out, fan_in)
            self.shapes[f"{name}.bias"] = (fan_out,)
        self.shapes["log_std"] = (action_dim,)

    @property
    def action_offset(self) -> list[float] | None:
        """The env's action for a zero policy action, per dimension (None: the policy acts in the env's units)."""
        return None if self._env_map is None else self._env_map[0].tolist()

    @property
    def action_multiplier(self) -> list[float] | None:
        """How far the env's action moves per unit of the policy's, per dimension (None: the env's units)."""
        return None if self._env_map is None else self._env_map[1].tolist()

    def spec(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this policy (plain data: for files and worker processes)."""
        spec: dict[str, Any] = {"obs_dim": self.obs_dim, "action_dim": self.action_dim,
                                "hidden_sizes": list(self.hidden_sizes), "activation": self.activation,
                                "init_std": self.init_std}
        if self._env_map is not None:
            spec.update(action_offset=self.action_offset, action_multiplier=self.action_multiplier)
        return spec

    def to_env(self, actions: np.ndarray) -> np.ndarray:
        """The policy's actions ``[..., action_dim]`` in the env's units (what ``env.step`` takes)."""
        if self._env_map is None:
            return actions
        offset, multiplier = self._env_map
        return offset + multiplier * actions

    def init_params(self, generator: torch.Generator | None = None) -> Params:
        """Fresh parameters: Xavier-uniform weights, zero biases, log-std = log(init_std)."""
        params: Params = {}
        for name, shape in self.shapes.items():
            if name == "log_std":
                params[name] = torch.full(shape, math.log(self.init_std))
            elif name.endswith(".bias"):
                params[name] = torch.zeros(shape)
            else:
                bound = math.sqrt(6.0 / (shape[0] + shape[1]))
                params[name] = (torch.rand(shape, generator=generator) * 2.0 - 1.0) * bound
        return params

    def forward(self, obs: Tensor, params: Params) -> tuple[Tensor, Tensor]:
        """Mean ``[..., action_dim]`` and log-std (broadcastable to the mean) for ``obs``.

        With task-batched ``params`` (leading ``M``), ``obs`` is ``[M, ..., obs_dim]``.
        """
        if not is_task_batched(params):
            x = obs
            for i, name in enumerate(self.layer_names):
                x = torch.nn.functional.linear(x, params[f"{name}.weight"], params[f"{name}.bias"])
                if i < len(self.layer_names) - 1:
                    x = self._act(x)
            return x, params["log_std"]
        num_tasks = obs.shape[0]
        batch_shape = obs.shape[1:-1]
        x = obs.reshape(num_tasks, -1, obs.shape[-1])  # [M, B, obs_dim]
        for i, name in enumerate(self.layer_names):
            weight, bias = params[f"{name}.weight"], params[f"{name}.bias"]  # [M, out, in], [M, out]
            x = torch.bmm(x, weight.transpose(1, 2)).add_(bias.unsqueeze(1))  # not baddbmm: it copies the bias first
            if i < len(self.layer_names) - 1:
                x = self._act(x)
        mean = x.reshape(num_tasks, *batch_shape, self.action_dim)
        log_std = params["log_std"].reshape(num_tasks, *([1] * len(batch_shape)), self.action_dim)
        return mean, log_std

    def sample(self, obs: Tensor, params: Params, noise: Tensor) -> tuple[Tensor, Tensor]:
        """Actions for ``obs`` drawn with standard normal ``noise`` (shaped like the mean), and their
        log-density."""
        mean, log_std = self.forward(obs, params)
        return gaussian_sample(mean, log_std, noise)

    def log_prob(self, obs: Tensor, actions: Tensor, params: Params) -> Tensor:
        """Log-density of ``actions`` (summed over action dimensions)."""
        mean, log_std = self.forward(obs, params)
        return gaussian_log_prob(actions, mean, log_std)


def log_prob_from_z_squared(z_squared: Tensor, log_std: Tensor) -> Tensor:
    """Diagonal Gaussian log-density, summed over the last dimension, from the squared standardised residuals
    ``z^2 = ((a - mu) / sigma)^2`` (the form every caller that already holds ``z`` uses)."""
    log_norm = log_std.sum(-1).expand(z_squared.shape[:-1])
    return -0.5 * z_squared.sum(-1) - log_norm - 0.5 * LOG_2PI * z_squared.shape[-1]


def gaussian_log_prob(actions: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    """Diagonal Gaussian log-density, summed over the last dimension."""
    z = (actions - mean) * torch.exp(-log_std)
    return log_prob_from_z_squared(z * z, log_std)


def gaussian_sample(mean: Tensor, log_std: Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
    """Actions ``mean + sigma * noise`` from standard normal ``noise``, and their log-density (from the noise
    itself, so no rounding from subtracting the mean back)."""
    return mean + torch.exp(log_std) * noise, log_prob_from_z_squared(noise * noise, log_std)


def gaussian_entropy(log_std: Tensor) -> Tensor:
    """Entropy of a diagonal Gaussian with this log-std, summed over the last dimension."""
    return (log_std + 0.5 * (1.0 + LOG_2PI)).sum(-1)


def gaussian_kl(old_mean: Tensor, old_log_std: Tensor, mean: Tensor, log_std: Tensor) -> Tensor:
    """KL(old || new) between diagonal Gaussians, summed over the last dimension."""
    var_ratio = torch.exp(2.0 * (old_log_std - log_std))
    mean_term = ((old_mean - mean) * torch.exp(-log_std)) ** 2
    return 0.5 * (var_ratio + mean_term - 1.0).sum(-1) + (log_std - old_log_std).sum(-1)
