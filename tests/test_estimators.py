"""Inner estimators against exact values: a one-dimensional linear-Gaussian control problem whose expectations over
episodes are integrated exactly by Gauss-Hermite quadrature (every integrand is a polynomial in the action noise).

State ``s_{t+1} = s_t + a_t`` from ``s_0 = 0.5``, reward ``-(s_{t+1} - 1)^2``, policy ``a_t ~ N(w s_t + c, sigma^2)``
(the library's policy with no hidden layer). The expected return ``J(theta)`` is exact by the reparametrisation
``a_t = mu(s_t) + sigma z_t`` summed over the quadrature nodes; the estimators see the same nodes as episodes, each
episode's advantages scaled by its quadrature weight, so a loss over that batch is the estimator's expectation.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from meta_rl.adaptation import adapt, inner_loss
from meta_rl.config import ConfigError, load_config
from meta_rl.episodes import Episodes
from meta_rl.estimators import SupportTerms, estimator_names, get_estimator
from meta_rl.policy import GaussianMLPPolicy, Params, gaussian_log_prob

POLICY = GaussianMLPPolicy(1, 1, (), init_std=0.7)
THETA = torch.tensor([0.4, -0.3, np.log(0.7)], dtype=torch.float64)  # mean.weight, mean.bias, log_std
START, GOAL, NODES = 0.5, 1.0, 8


def as_params(theta: torch.Tensor) -> Params:
    return {"mean.weight": theta[0].view(1, 1), "mean.bias": theta[1].view(1), "log_std": theta[2].view(1)}


def quadrature(horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Standard-normal noise ``[P, T]`` at every combination of nodes and the probability weight of each ``[P]``."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(NODES)
    weights = weights / weights.sum()
    combos = list(itertools.product(range(NODES), repeat=horizon))
    noise = torch.tensor([[nodes[i] for i in combo] for combo in combos], dtype=torch.float64)
    probability = torch.tensor([np.prod([weights[i] for i in combo]) for combo in combos], dtype=torch.float64)
    return noise, probability


def rollout(theta: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """States ``[P, T]``, actions ``[P, T]`` and rewards ``[P, T]``, differentiable w.r.t. ``theta``."""
    params = as_params(theta)
    state = torch.full(noise.shape[:1], START, dtype=torch.float64)
    states, actions, rewards = [], [], []
    for t in range(noise.shape[1]):
        mean, log_std = POLICY.forward(state[:, None], params)
        action = mean[:, 0] + torch.exp(log_std) * noise[:, t]
        states.append(state)
        actions.append(action)
        state = state + action
        rewards.append(-((state - GOAL) ** 2))
    return torch.stack(states, 1), torch.stack(actions, 1), torch.stack(rewards, 1)


def expected_return(theta: torch.Tensor, horizon: int) -> torch.Tensor:
    noise, probability = quadrature(horizon)
    return (probability[:, None] * rollout(theta, noise)[2]).sum()


def state_baseline(states: torch.Tensor) -> torch.Tensor:
    return 0.7 * states**2 - 0.2


class Batch:
    """The quadrature nodes as one task's episodes at ``THETA``, each episode's advantages scaled by ``P`` times its
    probability (every estimator is linear in the advantages), so the batch mean is the expectation."""

    def __init__(self, horizon: int, baseline: bool) -> None:
        noise, self.probability = quadrature(horizon)
        with torch.no_grad():
            states, actions, rewards = rollout(THETA, noise)
            params = as_params(THETA)
            mean, log_std = POLICY.forward(states[..., None], params)
            log_probs = gaussian_log_prob(actions[..., None], mean, log_std)  # [P, T]
        self.horizon, self.states, self.actions, self.rewards = horizon, states, actions, rewards
        self.reward_to_go = rewards.flip(1).cumsum(1).flip(1)
        self.baseline = state_baseline(states) if baseline else torch.zeros_like(states)
        scale = (len(self.probability) * self.probability)[:, None]
        time_major = lambda x: x.T[:, None, :]  # [P, T] -> [T, M=1, N=P]  # noqa: E731
        self.episodes = Episodes(
            observations=time_major(states)[..., None], actions=time_major(actions)[..., None],
            rewards=time_major(rewards), mask=torch.ones(horizon, 1, len(scale), dtype=torch.float64),
            log_probs=time_major(log_probs), advantages=time_major((self.reward_to_go - self.baseline) * scale),
        )

    def expected_loss(self, estimator: str) -> callable:
        return lambda theta: inner_loss(POLICY, as_params(theta), self.episodes, estimator)[0]

    def scores(self) -> torch.Tensor:
        """``grad log pi(a_t | s_t)`` of every node and step at ``THETA``, ``[P, T, 3]``."""
        def log_probs(theta):
            mean, log_std = POLICY.forward(self.states[..., None], as_params(theta))
            return gaussian_log_prob(self.actions[..., None], mean, log_std)
        return torch.autograd.functional.jacobian(log_probs, THETA)

    def expectation(self, values: torch.Tensor) -> torch.Tensor:
        return torch.einsum("p,p...->...", self.probability, values)

    def missing_sampling_term(self) -> torch.Tensor:
        """``E[sum_t r_t grad S_t grad S_t^T] / T`` with ``S_t`` the log-probability of the actions up to t: what the
        MAML surrogate's Hessian leaves out (minus sign: the loss is minus the return)."""
        cumulative = self.scores().cumsum(1)
        return self.expectation(torch.einsum("pt,pti,ptj->pij", self.rewards, cumulative, cumulative)) / self.horizon

    def cross_time_term(self) -> torch.Tensor:
        """``E[sum_{i != j} grad l_i grad l_j^T G_max(i,j)] / T``: the part of that term LVC leaves out."""
        scores, total = self.scores(), torch.zeros(3, 3, dtype=torch.float64)
        for i, j in itertools.product(range(self.horizon), repeat=2):
            if i != j:
                total += self.expectation(torch.einsum("p,pi,pj->pij", self.reward_to_go[:, max(i, j)],
                                                       scores[:, i], scores[:, j]))
        return total / self.horizon

    def baseline_curvature(self) -> torch.Tensor:
        """``E[sum_t b_t hess l_t] / T``: the baseline's share of the MAML surrogate's Hessian (not zero in
        expectation, unlike its share of the gradient)."""
        def weighted(theta):
            mean, log_std = POLICY.forward(self.states[..., None], as_params(theta))
            log_probs = gaussian_log_prob(self.actions[..., None], mean, log_std)
            return self.expectation((self.baseline * log_probs).sum(1))
        return torch.autograd.functional.hessian(weighted, THETA) / self.horizon


def exact_loss_hessian(horizon: int) -> torch.Tensor:
    """The Hessian of ``-J / T``: what an unbiased inner loss's Hessian has in expectation."""
    return -torch.autograd.functional.hessian(lambda t: expected_return(t, horizon), THETA) / horizon


@pytest.mark.parametrize("baseline", [False, True])
@pytest.mark.parametrize("horizon", [1, 2, 3])
@pytest.mark.parametrize("estimator", ["maml", "lvc", "dice"])
def test_every_estimator_is_the_policy_gradient_in_expectation(estimator: str, horizon: int, baseline: bool):
    batch = Batch(horizon, baseline)
    exact = -torch.autograd.functional.jacobian(lambda t: expected_return(t, horizon), THETA) / horizon
    estimated = torch.autograd.functional.jacobian(batch.expected_loss(estimator), THETA)
    torch.testing.assert_close(estimated, exact, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("baseline", [False, True])
@pytest.mark.parametrize("horizon", [1, 2, 3])
def test_dice_hessian_is_unbiased_at_every_horizon_with_its_baseline(horizon: int, baseline: bool):
    batch = Batch(horizon, baseline)
    estimated = torch.autograd.functional.hessian(batch.expected_loss("dice"), THETA)
    torch.testing.assert_close(estimated, exact_loss_hessian(horizon), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("baseline", [False, True])
@pytest.mark.parametrize("horizon", [1, 2, 3])
def test_maml_hessian_misses_exactly_the_sampling_term(horizon: int, baseline: bool):
    batch = Batch(horizon, baseline)
    bias = torch.autograd.functional.hessian(batch.expected_loss("maml"), THETA) - exact_loss_hessian(horizon)
    predicted = batch.missing_sampling_term() + batch.baseline_curvature()
    torch.testing.assert_close(bias, predicted, rtol=1e-10, atol=1e-12)
    assert bias.abs().max() > 0.05  # the bias is there, not a vanishing one


@pytest.mark.parametrize("baseline", [False, True])
@pytest.mark.parametrize("horizon", [1, 2, 3])
def test_lvc_hessian_is_exact_for_one_step_and_misses_the_cross_time_terms_beyond(horizon: int, baseline: bool):
    batch = Batch(horizon, baseline)
    bias = torch.autograd.functional.hessian(batch.expected_loss("lvc"), THETA) - exact_loss_hessian(horizon)
    torch.testing.assert_close(bias, batch.cross_time_term(), rtol=1e-10, atol=1e-12)
    if horizon == 1:
        assert bias.abs().max() < 1e-12
    else:
        assert bias.abs().max() > 0.05


@pytest.mark.parametrize("estimator", ["maml", "lvc", "dice"])
def test_meta_gradient_through_adapt_against_the_exact_one(estimator: str):
    """The meta-gradient of ``J(theta + alpha/T grad J(theta))``, the MAML objective with the exact inner step, by
    autograd through the library's ``adapt`` on the quadrature batch: exact with DiCE; off by the step times the
    Hessian bias (applied to the query gradient) with MAML and LVC."""
    horizon, alpha = 2, 0.3
    batch = Batch(horizon, baseline=True)

    def exact_objective(theta):
        inner_gradient = torch.autograd.grad(expected_return(theta, horizon), theta, create_graph=True)[0]
        return expected_return(theta + alpha / horizon * inner_gradient, horizon)

    theta = THETA.clone().requires_grad_(True)
    exact = torch.autograd.grad(exact_objective(theta), theta)[0]
    adapted = adapt(POLICY, as_params(theta), batch.episodes, alpha, estimator=estimator)
    flat = torch.cat([adapted[k].reshape(-1) for k in ("mean.weight", "mean.bias", "log_std")])
    query_gradient = torch.autograd.functional.jacobian(lambda t: expected_return(t, horizon), flat.detach())
    estimated = torch.autograd.grad(expected_return(flat, horizon), theta)[0]
    hessian_bias = torch.autograd.functional.hessian(batch.expected_loss(estimator), THETA) \
        - exact_loss_hessian(horizon)
    torch.testing.assert_close(estimated, exact - alpha * hessian_bias @ query_gradient, rtol=1e-9, atol=1e-11)
    if estimator == "dice":
        torch.testing.assert_close(estimated, exact, rtol=1e-9, atol=1e-11)
    else:
        assert (estimated - exact).abs().max() > 1e-3


def test_estimators_agree_at_the_sampling_parameters_and_differ_away_from_them():
    """With the stored log-probabilities those of the parameters adapted, every estimator takes the same inner
    step; at other parameters LVC and DiCE weight the samples by their likelihood ratio to the sampling policy."""
    batch = Batch(3, baseline=True)
    steps = {name: adapt(POLICY, as_params(THETA), batch.episodes, 0.3, estimator=name) for name in estimator_names()}
    for name in ("lvc", "dice"):
        for key, value in steps["maml"].items():
            torch.testing.assert_close(steps[name][key], value, rtol=1e-12, atol=1e-14)
    elsewhere = as_params(THETA + torch.tensor([0.1, -0.05, 0.1], dtype=torch.float64))
    away = {name: adapt(POLICY, elsewhere, batch.episodes, 0.3, estimator=name) for name in estimator_names()}
    assert not torch.allclose(away["lvc"]["mean.bias"], away["maml"]["mean.bias"])
    assert not torch.allclose(away["dice"]["mean.bias"], away["lvc"]["mean.bias"])


def test_dice_weights_each_step_by_the_ratio_of_the_trajectory_so_far():
    """The DiCE loss written out for one episode: ``-(1/T) sum_t prod_{t'<=t} ratio_t' (A_t - A_{t+1})``;
    steps after the episode ended count for nothing."""
    log_probs = torch.tensor([[[-1.0], [-2.0], [-0.5]]], dtype=torch.float64)  # [M=1, T=3, N=1]
    behaviour = torch.tensor([[[-1.5], [-1.0], [-0.7]]], dtype=torch.float64)
    advantages = torch.tensor([[[2.0], [0.5], [0.0]]], dtype=torch.float64)
    mask = torch.tensor([[[1.0], [1.0], [0.0]]], dtype=torch.float64)
    ratio = torch.exp(log_probs - behaviour)[0, :, 0]
    expected = -((ratio[0] * (2.0 - 0.5)) + ratio[0] * ratio[1] * 0.5) / 2
    loss = get_estimator("dice")(log_probs, SupportTerms(behaviour, advantages, mask))
    torch.testing.assert_close(loss, expected.view(1))


def test_unknown_estimator_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown inner estimator 'loaded_dice'; allowed: maml, lvc, dice"):
        adapt(POLICY, as_params(THETA), Batch(1, baseline=False).episodes, 0.1, estimator="loaded_dice")
    with pytest.raises(ConfigError, match=r"inner\.estimator: 'Dice' is not allowed; expected one of 'maml', 'lvc'"):
        load_config("navigation-maml", ["inner.estimator=Dice"])
