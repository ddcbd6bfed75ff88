"""Tests for the functional Gaussian MLP policy: forward (shared and task-batched), log-density, KL, init."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Independent, Normal, kl_divergence

from meta_rl.policy import (
    GaussianMLPPolicy,
    gaussian_entropy,
    gaussian_kl,
    gaussian_log_prob,
    gaussian_sample,
    is_task_batched,
)

OBS_DIM, ACTION_DIM = 3, 2


def random_params(policy: GaussianMLPPolicy, num_tasks: int | None, seed: int) -> dict[str, torch.Tensor]:
    """Random float64 parameters (non-zero biases and log-std), task-batched when ``num_tasks`` is given."""
    gen = torch.Generator().manual_seed(seed)
    lead = () if num_tasks is None else (num_tasks,)
    return {
        name: torch.randn(*lead, *shape, generator=gen, dtype=torch.float64) * 0.5
        for name, shape in policy.shapes.items()
    }


def reference_mean(obs: torch.Tensor, params: dict[str, torch.Tensor], activation: str) -> torch.Tensor:
    """Explicit Sequential-style MLP: Linear, act, Linear, act, ..., Linear."""
    act = {"tanh": torch.tanh, "relu": F.relu}[activation]
    h = F.linear(obs, params["hidden0.weight"], params["hidden0.bias"])
    h = act(h)
    h = F.linear(h, params["hidden1.weight"], params["hidden1.bias"])
    h = act(h)
    return F.linear(h, params["mean.weight"], params["mean.bias"])


# ------------------------------------------------------------------------------------------- forward


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("batch_shape", [(), (5,), (4, 3)])
def test_unbatched_forward_matches_explicit_mlp(activation: str, batch_shape: tuple[int, ...]) -> None:
    policy = GaussianMLPPolicy(OBS_DIM, ACTION_DIM, hidden_sizes=(8, 6), activation=activation)
    params = random_params(policy, None, seed=0)
    obs = torch.randn(*batch_shape, OBS_DIM, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    mean, log_std = policy.forward(obs, params)
    assert mean.shape == (*batch_shape, ACTION_DIM)
    torch.testing.assert_close(mean, reference_mean(obs, params, activation), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(log_std.expand_as(mean), params["log_std"].expand_as(mean), rtol=0, atol=0)


def test_unbatched_forward_explicit_values_single_layer() -> None:
    """Hand-computed numbers for a linear policy (no hidden layer): mean = W obs + b."""
    policy = GaussianMLPPolicy(2, 2, hidden_sizes=())
    params = {
        "mean.weight": torch.tensor([[1.0, 2.0], [-3.0, 0.5]], dtype=torch.float64),
        "mean.bias": torch.tensor([0.25, -1.0], dtype=torch.float64),
        "log_std": torch.tensor([0.1, -0.2], dtype=torch.float64),
    }
    mean, _ = policy.forward(torch.tensor([2.0, -4.0], dtype=torch.float64), params)
    torch.testing.assert_close(mean, torch.tensor([2.0 - 8.0 + 0.25, -6.0 - 2.0 - 1.0], dtype=torch.float64))


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("batch_shape", [(), (1,), (5,), (4, 3), (2, 3, 2)])
def test_task_batched_forward_equals_loop_over_tasks(activation: str, batch_shape: tuple[int, ...]) -> None:
    num_tasks = 3
    policy = GaussianMLPPolicy(OBS_DIM, ACTION_DIM, hidden_sizes=(8, 6), activation=activation)
    params = random_params(policy, num_tasks, seed=2)
    assert is_task_batched(params)
    obs = torch.randn(num_tasks, *batch_shape, OBS_DIM, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    mean, log_std = policy.forward(obs, params)
    assert mean.shape == (num_tasks, *batch_shape, ACTION_DIM)
    for m in range(num_tasks):
        task_params = {k: v[m] for k, v in params.items()}
        assert not is_task_batched(task_params)
        expected = reference_mean(obs[m], task_params, activation)
        torch.testing.assert_close(mean[m], expected, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(log_std[m].expand_as(expected), task_params["log_std"].expand_as(expected))
    # the log-std broadcasts against the mean: one row per task, singleton batch dims
    assert log_std.shape == (num_tasks, *([1] * len(batch_shape)), ACTION_DIM)


def test_task_batched_log_prob_equals_loop() -> None:
    num_tasks = 4
    policy = GaussianMLPPolicy(OBS_DIM, ACTION_DIM, hidden_sizes=(5,))
    params = random_params(policy, num_tasks, seed=4)
    gen = torch.Generator().manual_seed(5)
    obs = torch.randn(num_tasks, 6, 2, OBS_DIM, dtype=torch.float64, generator=gen)
    actions = torch.randn(num_tasks, 6, 2, ACTION_DIM, dtype=torch.float64, generator=gen)
    log_prob = policy.log_prob(obs, actions, params)
    assert log_prob.shape == (num_tasks, 6, 2)
    for m in range(num_tasks):
        p = {k: v[m] for k, v in params.items()}
        h = torch.tanh(F.linear(obs[m], p["hidden0.weight"], p["hidden0.bias"]))
        mean = F.linear(h, p["mean.weight"], p["mean.bias"])
        expected = Normal(mean, p["log_std"].exp()).log_prob(actions[m]).sum(-1)
        torch.testing.assert_close(log_prob[m], expected, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------- log-prob and KL


@pytest.mark.parametrize(
    ("mean_shape", "log_std_shape"),
    [((7, 3), (3,)), ((7, 3), (7, 3)), ((2, 5, 4, 3), (2, 1, 1, 3)), ((3,), (3,))],
)
def test_gaussian_log_prob_matches_torch_normal(mean_shape: tuple, log_std_shape: tuple) -> None:
    gen = torch.Generator().manual_seed(6)
    mean = torch.randn(mean_shape, dtype=torch.float64, generator=gen)
    log_std = torch.randn(log_std_shape, dtype=torch.float64, generator=gen) * 0.7
    actions = torch.randn(mean_shape, dtype=torch.float64, generator=gen) * 2.0
    got = gaussian_log_prob(actions, mean, log_std)
    expected = Normal(mean, log_std.exp()).log_prob(actions).sum(-1)
    assert got.shape == expected.shape == mean_shape[:-1]
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_gaussian_log_prob_exact_value() -> None:
    """1-D standard normal at 0: -0.5 log(2 pi); with std e and a=e: -0.5 - 1 - 0.5 log(2 pi)."""
    zero = torch.zeros(1, dtype=torch.float64)
    torch.testing.assert_close(
        gaussian_log_prob(zero, zero, zero), torch.tensor(-0.5 * math.log(2 * math.pi), dtype=torch.float64)
    )
    one = torch.ones(1, dtype=torch.float64)
    torch.testing.assert_close(
        gaussian_log_prob(one * math.e, zero, one),
        torch.tensor(-0.5 - 1.0 - 0.5 * math.log(2 * math.pi), dtype=torch.float64),
    )


@pytest.mark.parametrize(
    ("mean_shape", "old_log_std_shape", "log_std_shape"),
    [
        ((6, 3), (3,), (3,)),
        ((6, 3), (6, 3), (6, 3)),
        ((2, 5, 4, 3), (2, 1, 1, 3), (2, 1, 1, 3)),  # task-batched: [M,1,1,A] vs mean [M,T,N,A]
        ((2, 5, 4, 3), (3,), (2, 1, 1, 3)),  # shared old policy vs adapted new policy
        ((2, 5, 4, 3), (2, 1, 1, 3), (3,)),
    ],
)
def test_gaussian_kl_matches_torch_kl_divergence(
    mean_shape: tuple, old_log_std_shape: tuple, log_std_shape: tuple
) -> None:
    gen = torch.Generator().manual_seed(7)
    old_mean = torch.randn(mean_shape, dtype=torch.float64, generator=gen)
    mean = old_mean + 0.5 * torch.randn(mean_shape, dtype=torch.float64, generator=gen)
    old_log_std = 0.5 * torch.randn(old_log_std_shape, dtype=torch.float64, generator=gen)
    log_std = 0.5 * torch.randn(log_std_shape, dtype=torch.float64, generator=gen)
    got = gaussian_kl(old_mean, old_log_std, mean, log_std)
    old_dist = Independent(Normal(old_mean, old_log_std.exp().expand(mean_shape)), 1)
    new_dist = Independent(Normal(mean, log_std.exp().expand(mean_shape)), 1)
    expected = kl_divergence(old_dist, new_dist)
    assert got.shape == expected.shape == mean_shape[:-1]
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    # KL of a distribution with itself is zero
    torch.testing.assert_close(
        gaussian_kl(mean, log_std, mean, log_std), torch.zeros(mean_shape[:-1], dtype=torch.float64)
    )


# --------------------------------------------------------------------------------------------- init


def test_init_params_shapes_values_and_bounds() -> None:
    policy = GaussianMLPPolicy(OBS_DIM, ACTION_DIM, hidden_sizes=(64, 32), init_std=0.5)
    expected_shapes = {
        "hidden0.weight": (64, OBS_DIM),
        "hidden0.bias": (64,),
        "hidden1.weight": (32, 64),
        "hidden1.bias": (32,),
        "mean.weight": (ACTION_DIM, 32),
        "mean.bias": (ACTION_DIM,),
        "log_std": (ACTION_DIM,),
    }
    assert policy.shapes == expected_shapes
    params = policy.init_params(torch.Generator().manual_seed(0))
    assert set(params) == set(expected_shapes)
    for name, shape in expected_shapes.items():
        assert tuple(params[name].shape) == shape, name
    for name in ("hidden0.bias", "hidden1.bias", "mean.bias"):
        assert torch.equal(params[name], torch.zeros(expected_shapes[name]))
    torch.testing.assert_close(params["log_std"], torch.full((ACTION_DIM,), math.log(0.5)))
    assert not is_task_batched(params)
    for name in ("hidden0.weight", "hidden1.weight", "mean.weight"):
        fan_out, fan_in = expected_shapes[name]
        bound = math.sqrt(6.0 / (fan_in + fan_out))
        w = params[name]
        assert w.abs().max() <= bound, name
        # uniform on [-bound, bound]: the extremes are approached and the spread is right (not e.g. N(0,1))
        assert w.abs().max() > 0.8 * bound, name
        assert abs(w.std().item() - bound / math.sqrt(3.0)) < 0.25 * bound / math.sqrt(3.0), name


def test_init_params_seeded_generator_is_reproducible() -> None:
    policy = GaussianMLPPolicy(OBS_DIM, ACTION_DIM, hidden_sizes=(16,))
    a = policy.init_params(torch.Generator().manual_seed(123))
    b = policy.init_params(torch.Generator().manual_seed(123))
    c = policy.init_params(torch.Generator().manual_seed(124))
    for name in policy.shapes:
        assert torch.equal(a[name], b[name]), name
    assert not torch.equal(a["hidden0.weight"], c["hidden0.weight"])
    assert not torch.equal(a["mean.weight"], c["mean.weight"])


def test_bad_activation_raises() -> None:
    with pytest.raises(ValueError, match="sigmoid"):
        GaussianMLPPolicy(OBS_DIM, ACTION_DIM, activation="sigmoid")


def test_sampling_log_density_and_entropy_agree_with_torch_distributions():
    gen = torch.Generator().manual_seed(11)
    mean = torch.randn(3, 4, ACTION_DIM, dtype=torch.float64, generator=gen)
    log_std = 0.5 * torch.randn(3, 1, ACTION_DIM, dtype=torch.float64, generator=gen)
    noise = torch.randn(3, 4, ACTION_DIM, dtype=torch.float64, generator=gen)
    action, log_prob = gaussian_sample(mean, log_std, noise)
    normal = Normal(mean, log_std.exp())
    torch.testing.assert_close(action, mean + log_std.exp() * noise, rtol=0, atol=0)
    torch.testing.assert_close(log_prob, normal.log_prob(action).sum(-1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(log_prob, gaussian_log_prob(action, mean, log_std), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gaussian_entropy(log_std[:, 0]), normal.entropy()[:, 0].sum(-1), rtol=1e-12,
                               atol=1e-12)
