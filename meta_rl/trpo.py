"""Conjugate gradient and the TRPO step computation, independent of what is being optimised."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor


def flatten(tensors: list[Tensor] | tuple[Tensor, ...]) -> Tensor:
    """Concatenate tensors into one flat vector."""
    return torch.cat([t.reshape(-1) for t in tensors])


def unflatten(vector: Tensor, like: list[Tensor]) -> list[Tensor]:
    """Split a flat vector back into tensors shaped like ``like``."""
    pieces = torch.split(vector, [t.numel() for t in like])
    return [p.view_as(t) for p, t in zip(pieces, like, strict=True)]


class CGResult(NamedTuple):
    """What :func:`conjugate_gradient` returns."""

    solution: Tensor  # x with A x ~= b
    product: Tensor  # A x, tracked by the iteration (b minus the residual) at no extra matrix-vector product


def conjugate_gradient(
    matvec: Callable[[Tensor], Tensor], b: Tensor, iterations: int, residual_tol: float = 1e-10
) -> CGResult:
    """Approximately solve ``A x = b`` for symmetric positive-definite ``A`` given only ``v -> A v``.

    Runs exactly ``iterations`` steps with no host synchronisation; once the squared residual falls below
    ``residual_tol`` the remaining steps leave ``x`` unchanged (instead of dividing by ~0). Also returns ``A x``
    (``b - residual``), which TRPO needs to scale its step, so it costs no further product.
    """
    x = torch.zeros_like(b)
    residual = b.clone()
    direction = b.clone()
    residual_sq = residual @ residual
    for _ in range(iterations):
        active = residual_sq > residual_tol
        product = matvec(direction)
        curvature = direction @ product
        alpha = torch.where(active, residual_sq / torch.where(active, curvature, 1.0), 0.0)
        x = x + alpha * direction
        residual = residual - alpha * product
        new_residual_sq = residual @ residual
        beta = torch.where(active, new_residual_sq / torch.where(active, residual_sq, 1.0), 0.0)
        direction = residual + beta * direction
        residual_sq = torch.where(active, new_residual_sq, residual_sq)
    return CGResult(x, b - residual)


def trust_region_step(step_direction: Tensor, fisher_step: Tensor, max_kl: float) -> Tensor:
    """Scale a natural-gradient direction so the quadratic KL model equals ``max_kl``.

    ``0.5 * s^T F s`` is the predicted KL of step ``s``; the returned step ``s * sqrt(max_kl / (0.5 s^T F s))``
    has predicted KL exactly ``max_kl``.
    """
    predicted_kl = 0.5 * (step_direction @ fisher_step)
    return step_direction * torch.sqrt(max_kl / predicted_kl.clamp_min(1e-30))
