"""Conjugate gradient and trust-region scaling against direct linear algebra."""

from __future__ import annotations

import torch

from meta_rl.trpo import conjugate_gradient, flatten, trust_region_step, unflatten


def random_spd(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(n, n, generator=g, dtype=torch.float64)
    return a @ a.T + 0.5 * torch.eye(n, dtype=torch.float64)


def test_conjugate_gradient_matches_direct_solve():
    matrix = random_spd(12)
    b = torch.arange(12, dtype=torch.float64) - 5.0
    x, product = conjugate_gradient(lambda v: matrix @ v, b, iterations=12)
    torch.testing.assert_close(product, matrix @ x, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(x, torch.linalg.solve(matrix, b), rtol=1e-8, atol=1e-8)


def test_conjugate_gradient_stops_cleanly_after_convergence():
    """More iterations than dimensions: the residual reaches ~0 and the extra steps must not divide by it."""
    matrix = torch.diag(torch.tensor([1.0, 2.0, 4.0], dtype=torch.float64))
    b = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64)
    x = conjugate_gradient(lambda v: matrix @ v, b, iterations=10).solution
    assert torch.isfinite(x).all()
    torch.testing.assert_close(x, torch.tensor([1.0, 0.5, 0.25], dtype=torch.float64))


def test_few_iterations_reduce_the_residual():
    matrix = random_spd(30, seed=3) / 30.0 + torch.eye(30, dtype=torch.float64)  # well conditioned
    b = torch.ones(30, dtype=torch.float64)
    results = [conjugate_gradient(lambda v: matrix @ v, b, iterations=k) for k in (1, 5, 30)]
    residuals = [(matrix @ result.solution - b).norm().item() for result in results]
    assert residuals[0] > residuals[1] > residuals[2]
    for result in results:  # the tracked product is A x even before convergence
        torch.testing.assert_close(result.product, matrix @ result.solution, rtol=1e-9, atol=1e-9)
    assert residuals[2] < 1e-5  # CG stops once the squared residual is below 1e-10


def test_trust_region_step_has_the_predicted_kl():
    fisher = random_spd(6, seed=1)
    direction = torch.linspace(-1.0, 1.0, 6, dtype=torch.float64)
    step = trust_region_step(direction, fisher @ direction, max_kl=0.01)
    torch.testing.assert_close(0.5 * step @ fisher @ step, torch.tensor(0.01, dtype=torch.float64))
    assert torch.allclose(step / step.norm(), direction / direction.norm())


def test_flatten_round_trip():
    tensors = [torch.randn(2, 3), torch.randn(4), torch.randn(1, 1, 2)]
    back = unflatten(flatten(tensors), tensors)
    for a, b in zip(tensors, back, strict=True):
        assert torch.equal(a, b)
