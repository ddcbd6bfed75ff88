"""The meta-learner: the meta-parameters, the inner steps from them, and the meta-objective.

The meta-parameters are the policy's initial parameters and, for Meta-SGD, the per-parameter step sizes. The
meta-objective is the PPO/TRPO surrogate of the query episodes under the adapted policies, differentiated
through the inner step(s). How it is optimised is the outer algorithm's business (:mod:`meta_rl.outer`, chosen by
``outer.optimizer``).
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor

from meta_rl.adaptation import StepSize, adapt, init_step_sizes, masked_task_mean, step_size_of_step
from meta_rl.config import InnerConfig, OuterConfig, replace_validated
from meta_rl.episodes import Episodes
from meta_rl.outer import NonFiniteError, SurrogateResult, check_finite, make_outer_algorithm
from meta_rl.policy import GaussianMLPPolicy, Params, gaussian_kl, gaussian_log_prob

__all__ = ["MetaLearner", "NonFiniteError", "SurrogateResult", "check_finite"]


class MetaLearner:
    """Holds the meta-parameters and performs one meta-update from support and query episodes.

    :param policy: the policy architecture.
    :param params: initial policy parameters (copied to ``device`` as leaf tensors).
    :param inner: inner-loop settings (algorithm, step size, first order).
    :param outer: outer-loop settings (optimizer and its hyper-parameters).
    :param device: where the update runs.
    :param step_sizes: Meta-SGD step sizes to start from (default: all ``inner.step_size``, one set per inner step;
        :func:`~meta_rl.adaptation.step_size_shapes`).
    """

    def __init__(
        self,
        policy: GaussianMLPPolicy,
        params: Params,
        inner: InnerConfig,
        outer: OuterConfig,
        device: torch.device | str = "cpu",
        step_sizes: Params | None = None,
    ) -> None:
        self.policy = policy
        self.inner = inner
        self.outer = outer
        self.device = torch.device(device)
        self.params = {k: v.detach().to(self.device).clone().requires_grad_(True) for k, v in params.items()}
        self.step_sizes: Params | None = None
        if inner.algorithm == "metasgd":
            start = step_sizes if step_sizes is not None else init_step_sizes(policy, inner.step_size,
                                                                              num_steps=inner.num_steps)
            self.step_sizes = {
                k: v.detach().to(self.device).clone().requires_grad_(True) for k, v in start.items()
            }
        self.algorithm = make_outer_algorithm(self)

    def copy(self, device: torch.device | str | None = None, **outer_changes: object) -> MetaLearner:
        """An independent learner at the same meta-parameters and optimizer state, with some ``outer`` settings
        changed (e.g. ``fvp_subsample=0.25``): to compare update variants on the same episodes. A bad setting
        raises :class:`~meta_rl.config.ConfigError`, as it would in a config."""
        outer = replace_validated(self.outer, "outer.", **outer_changes)
        twin = MetaLearner(self.policy, self.params, self.inner, outer, device or self.device, self.step_sizes)
        if outer.optimizer == self.outer.optimizer:
            # Deep-copied: loading keeps the very tensors of the state (exp_avg...), which the twin would then
            # update in place under the original's feet.
            twin.algorithm.load_state_dict(copy.deepcopy(self.algorithm.state_dict()))
        return twin

    # --- meta-parameters -------------------------------------------------------------------------------
    def meta_parameters(self) -> list[Tensor]:
        """All tensors the outer loop updates: policy parameters, then Meta-SGD step sizes."""
        tensors = list(self.params.values())
        if self.step_sizes is not None:
            tensors += list(self.step_sizes.values())
        return tensors

    def step_size(self, step: int = 0) -> StepSize:
        """Inner step ``step``'s step size (0-based): MAML's scalar or Meta-SGD's per-parameter tensors."""
        return step_size_of_step(self._step_sizes(), step)

    def _step_sizes(self) -> StepSize:
        """MAML's scalar, or all of Meta-SGD's step sizes (one set per inner step)."""
        return self.step_sizes if self.step_sizes is not None else self.inner.step_size

    def _split(self, tensors: list[Tensor]) -> tuple[Params, StepSize]:
        """Inverse of :meth:`meta_parameters` for candidate values."""
        names = list(self.params)
        params = dict(zip(names, tensors[: len(names)], strict=True))
        if self.step_sizes is None:
            return params, self.inner.step_size
        return params, dict(zip(self.step_sizes, tensors[len(names) :], strict=True))

    # --- adaptation and objective ----------------------------------------------------------------------
    def adapt(self, supports: list[Episodes], params: Params | None = None, step_size: StepSize | None = None,
              ) -> Params:
        """Adapted parameters ``[M, ...]`` after one inner step per support batch (in order)."""
        return self.adapt_steps(supports, params, step_size)[-1]

    def adapt_steps(self, supports: list[Episodes], params: Params | None = None,
                    step_size: StepSize | None = None) -> list[Params]:
        """The parameters before each inner step (the policies that sampled each support batch) and after the
        last: ``len(supports) + 1`` entries, the first the meta-parameters themselves. ``step_size``: MAML's scalar,
        or all Meta-SGD's step sizes (one set per inner step)."""
        steps = [self.params if params is None else params]
        rates = self._step_sizes() if step_size is None else step_size
        for k, episodes in enumerate(supports):
            steps.append(adapt(self.policy, steps[-1], episodes, step_size_of_step(rates, k), self.inner.first_order,
                               self.inner.estimator))
        return steps

    def surrogate(
        self,
        supports: list[Episodes],
        query: Episodes,
        params: Params | None = None,
        step_size: StepSize | None = None,
        old: SurrogateResult | None = None,
    ) -> SurrogateResult:
        """Surrogate loss and KL of the adapted policies on the query episodes.

        The importance ratio is against the behaviour (sampling) policy's log-probs; the KL is against ``old``
        (by default the adapted policy itself, detached: KL = 0 with the right curvature for TRPO).
        """
        return self.query_objective(self.adapt(supports, params, step_size), query, old)

    def query_objective(self, adapted: Params, query: Episodes, old: SurrogateResult | None = None
                        ) -> SurrogateResult:
        """:meth:`surrogate` for given adapted parameters (``[M, ...]``, or shared ones without an inner step)."""
        mean, log_std = self.policy.forward(query.task_major("observations"), adapted)
        log_probs = gaussian_log_prob(query.task_major("actions"), mean, log_std)
        mask = query.task_major("mask")
        ratio = torch.exp(log_probs - query.task_major("log_probs"))
        loss = masked_task_mean(-ratio * query.task_major("advantages"), mask).mean()
        old_mean = mean.detach() if old is None else old.old_mean
        old_log_std = log_std.detach() if old is None else old.old_log_std
        task_kl = masked_task_mean(gaussian_kl(old_mean, old_log_std, mean, log_std), mask)
        return SurrogateResult(loss, task_kl.mean(), task_kl, old_mean, old_log_std, mean, adapted["log_std"], ratio)

    # --- the update --------------------------------------------------------------------------------------
    def update(self, supports: list[Episodes], query: Episodes) -> dict[str, float]:
        """One meta-update by the outer algorithm; statistics keyed by their TensorBoard tags."""
        return self.algorithm.update(supports, query)

    # --- state -------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Tensors and plain data only (for weights-only checkpoint loading)."""
        state = {
            "params": {k: v.detach().cpu() for k, v in self.params.items()},
            "step_sizes": None
            if self.step_sizes is None
            else {k: v.detach().cpu() for k, v in self.step_sizes.items()},
            "optimizer": self.algorithm.state_dict(),  # the outer algorithm's state (key kept for old checkpoints)
        }
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (shapes must match)."""
        with torch.no_grad():
            for name, tensor in self.params.items():
                tensor.copy_(state["params"][name])
            if self.step_sizes is not None:
                for name, tensor in self.step_sizes.items():
                    tensor.copy_(state["step_sizes"][name])
        if state.get("optimizer") is not None:
            self.algorithm.load_state_dict(state["optimizer"])
