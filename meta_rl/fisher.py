"""Exact Fisher-vector products of the meta-objective by hand-written R-operators, not autograd graphs.

TRPO's metric is the Hessian of the mean KL between the old and new adapted policies on the query episodes,
at the old meta-parameters. There it equals (Gauss-Newton form, exact because the KL's gradient vanishes):

    F v = sum_m A_m^T K_m^T D_m K_m A_m v

- ``A_m``: the Jacobian of task m's adapted parameters w.r.t. the meta-parameters. MAML:
  ``theta'_m = theta - alpha g_m(theta)``, so ``A_m v = v - alpha H_m v`` with ``H_m`` the Hessian of the
  support loss; Meta-SGD adds the step sizes: ``A_m (v, v_alpha) = v - alpha * (H_m v) - v_alpha * g_m``;
- ``K_m``: the Jacobian of the query policy outputs (means, log-std) w.r.t. the adapted parameters;
- ``D_m``: the Gaussian KL's Hessian w.r.t. those outputs (``1/sigma^2`` per mean, 2 per log-std), weighted
  as the mean over tasks of each task's masked mean over steps.

``H_m v`` is Pearlmutter's R-operator written out for the MLP and the Gaussian REINFORCE loss: a forward pass of
tangents and a backward pass of their derivatives, re-using the activations and back-propagated errors of the
inner step, computed once per update. One product is then two support Hessian-vector products, one query
Jacobian-vector product and one transposed product: about 16 of the hidden layer's big matrix products, against
about twice that and many more elementwise passes for autograd's double backward through the inner step's graph.

The meta-gradient is written out the same way: ``sum_m A_m^T K_m^T`` applied to the surrogate's derivatives w.r.t.
the query means and log-stds. The surrogate's value comes from the same forward pass.

Supported: one inner step (second or first order) and none (the pretrained and oracle baselines), MAML and
Meta-SGD, tanh and ReLU, every inner estimator (:mod:`meta_rl.estimators`: the sampling term of ``lvc`` and ``dice``
joins the output errors of the Hessian-vector product's own backward pass). ``tests/test_meta_learner.py`` checks
the products against the explicit KL Hessian and the gradient against autograd's.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from meta_rl.adaptation import support_terms
from meta_rl.episodes import Episodes
from meta_rl.estimators import get_estimator
from meta_rl.policy import GaussianMLPPolicy, Params, log_prob_from_z_squared

Tangent = dict[str, Tensor]  # per-parameter tensors; shared ``[...]`` or per task ``[M, ...]``


def _flat_batch(episodes: Episodes, name: str) -> Tensor:
    """Field ``name`` of the episodes as ``[M, B, ...]`` with ``B = T * N``."""
    value = episodes.task_major(name)
    return value.reshape(value.shape[0], -1, *value.shape[3:])


def _per_task(matrix: Tensor, num_tasks: int) -> Tensor:
    """A shared ``[k, n]`` matrix as ``[M, k, n]`` (a view, no copy); a per-task one as is.

    Every product here is then one ``bmm``, faster on this code's tall ``[M, B, k]`` operands than the same product
    as one 2-D matmul over ``M * B`` rows (docs/speed.md, "The update against its matmul floor").
    """
    return matrix.expand(num_tasks, *matrix.shape) if matrix.dim() == 2 else matrix


def _linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x W^T + b`` for ``x`` ``[M, B, in]`` and a shared ``[out, in]`` or per-task ``[M, out, in]`` weight.

    The bias is added in place after the product: ``baddbmm`` would first copy it into every row of the output.
    """
    out = torch.bmm(x, _per_task(weight, x.shape[0]).transpose(1, 2))
    return out if bias is None else out.add_(bias.unsqueeze(-2))


def _back(delta: Tensor, weight: Tensor) -> Tensor:
    """``delta W``: errors ``[M, B, out]`` back through a shared or per-task weight to ``[M, B, in]``."""
    return torch.bmm(delta, _per_task(weight, delta.shape[0]))


def _add_product(out: Tensor, x: Tensor, matrix: Tensor) -> Tensor:
    """``out += x @ matrix`` in place, fused into the matrix product (no separate pass over ``out``).

    ``x`` is ``[M, B, k]``; ``matrix`` is shared ``[k, n]`` or per task ``[M, k, n]``; ``out`` is contiguous.
    """
    return out.baddbmm_(x, _per_task(matrix, x.shape[0]))


def _per_sample(per_task: Tensor) -> Tensor:
    """A per-task ``[M, A]`` log-std quantity as ``[M, 1, A]`` (broadcast over samples); a shared ``[A]`` as is."""
    return per_task.unsqueeze(-2) if per_task.dim() == 2 else per_task


@dataclass
class _Activations:
    """One pass of the MLP over a batch, kept for R-operators: inputs of every layer and activation slopes."""

    inputs: list[Tensor]  # layer l's input [M, B, in_l]: observations, then each hidden layer's output
    slopes: list[Tensor]  # phi'(z_l) of each hidden layer [M, B, out_l]
    mean: Tensor  # [M, B, A]


class AnalyticMetaObjective:
    """The exact meta-gradient (:meth:`meta_gradient`) and ``v -> (F + damping I) v`` (calling the object) at the
    current meta-parameters; build once per update, call once per conjugate-gradient step.

    :param policy: the policy architecture (tanh or ReLU MLP, state-independent log-std).
    :param params: the meta-parameters' policy part, shared ``[...]`` tensors.
    :param step_size: MAML's scalar, or Meta-SGD's per-parameter step sizes (then the products cover them too).
    :param support: the support episodes of the one inner step, or None when there is no inner step.
    :param query: the query episodes the KL is measured on.
    :param first_order: the inner step's gradient is treated as a constant (``H_m`` drops out of ``A_m``).
    :param damping: added times ``v`` to every product.
    :param curvature_episodes: estimate the products on the first this many episodes of every task (support and
        query), about ``N / curvature_episodes`` times cheaper; the inner step, and so the adapted parameters the
        products are taken at, still use every episode. Such an object gives products only, no meta-gradient.
    :param estimator: the inner loss (:mod:`meta_rl.estimators`) whose gradient and Hessian the inner step uses.
    """

    def __init__(
        self,
        policy: GaussianMLPPolicy,
        params: Params,
        step_size: float | Params,
        support: Episodes | None,
        query: Episodes,
        first_order: bool,
        damping: float,
        curvature_episodes: int | None = None,
        estimator: str = "maml",
    ) -> None:
        self.policy = policy
        self.estimator = get_estimator(estimator)
        self.names = list(params)
        self.params = {k: v.detach() for k, v in params.items()}
        self.metasgd = isinstance(step_size, dict)
        self.step_size = {k: v.detach() for k, v in step_size.items()} if self.metasgd else step_size
        self.first_order = first_order
        self.damping = damping
        self.num_tasks = query.num_tasks
        self.has_inner_step = support is not None
        self.products_only = curvature_episodes is not None
        subset = slice(0, curvature_episodes)
        with torch.no_grad():
            if support is not None:
                self._prepare_support(support)
                adapted = {k: self.params[k] - self._scale(k, self.gradient[k]) for k in self.names}
                if self.products_only:  # the Hessian's samples from the subset; the step's gradient from all
                    gradient = self.gradient
                    self._prepare_support(support.select_episodes(subset))
                    self.gradient = gradient
            else:
                adapted = self.params
            self._prepare_query(query.select_episodes(subset) if self.products_only else query, adapted)

    # --- helpers -----------------------------------------------------------------------------------------
    def _scale(self, name: str, value: Tensor) -> Tensor:
        """``alpha * value`` with MAML's scalar or Meta-SGD's step sizes (broadcast over a task dimension)."""
        return value * (self.step_size[name] if self.metasgd else self.step_size)

    def _forward(self, observations: Tensor, params: Params) -> _Activations:
        """Forward pass keeping what the R-operators need."""
        inputs, slopes = [observations], []
        x = observations
        for name in self.policy.layer_names[:-1]:
            x = _linear(x, params[f"{name}.weight"], params[f"{name}.bias"])
            if self.policy.activation == "tanh":
                x = torch.tanh(x)
                slopes.append(1.0 - x * x)
            else:
                slopes.append((x > 0).to(x.dtype))
                x = torch.relu(x)
            inputs.append(x)
        mean = _linear(x, params["mean.weight"], params["mean.bias"])
        return _Activations(inputs, slopes, mean)

    def _tangent_forward(self, acts: _Activations, params: Params,
                         tangent: Tangent) -> tuple[list[Tensor], list[Tensor | None], Tensor]:
        """R-forward: tangents of the pre-activations of every hidden layer, of every layer's input (None for the
        observations) and of the mean."""
        pre_tangents: list[Tensor] = []
        r_inputs: list[Tensor | None] = [None]  # tangent of each layer's input (zero for the observations)
        for index, name in enumerate(self.policy.layer_names):
            weight = f"{name}.weight"
            r_z = _linear(acts.inputs[index], tangent[weight], tangent[f"{name}.bias"])
            r_x = r_inputs[index]
            if r_x is not None:
                _add_product(r_z, r_x, params[weight].transpose(-1, -2))
            if name == "mean":
                return pre_tangents, r_inputs, r_z
            pre_tangents.append(r_z)
            r_inputs.append(acts.slopes[index] * r_z)
        raise AssertionError("the policy has no mean layer")

    def _backprop(self, acts: _Activations, params: Params, delta: Tensor,
                  record: list[Tensor] | None = None) -> Tangent:
        """Per-task weight and bias gradients from output errors ``delta`` ``[M, B, A]``: one backward pass.
        With ``record``, the errors at each layer's output (``delta_z``) are stored in it by layer index."""
        names = self.policy.layer_names
        out: Tangent = {}
        errors = delta
        for index in range(len(names) - 1, -1, -1):
            name = names[index]
            out[f"{name}.weight"] = errors.transpose(1, 2) @ acts.inputs[index]
            out[f"{name}.bias"] = errors.sum(1)
            if index > 0:
                errors = _back(errors, params[f"{name}.weight"]).mul_(acts.slopes[index - 1])
                if record is not None:
                    record[index - 1] = errors
        return out

    def _r_backward(self, r_inputs: list[Tensor | None], r_params: Tangent, r_delta: Tensor,
                    pre_tangents: list[Tensor]) -> Tangent:
        """R-derivative of the support gradients (the HVP's backward half), given the tangents of every layer's
        input, of the parameters and of the output errors, and the hidden pre-activation tangents."""
        acts, names = self.support_acts, self.policy.layer_names
        out: Tangent = {}
        errors = r_delta
        for index in range(len(names) - 1, -1, -1):
            name = names[index]
            grad_w = errors.transpose(1, 2) @ acts.inputs[index]
            if index > 0:
                grad_w = grad_w + self.support_deltas[index].transpose(1, 2) @ r_inputs[index]
            out[f"{name}.weight"] = grad_w
            out[f"{name}.bias"] = errors.sum(1)
            if index == 0:
                break
            back = _back(errors, self.params[f"{name}.weight"])
            _add_product(back, self.support_deltas[index], r_params[f"{name}.weight"])
            errors = back.mul_(acts.slopes[index - 1])
            if self.policy.activation == "tanh":
                # phi'' = -2 phi phi' for tanh, so delta_h phi'' Rz = -2 h delta_z Rz
                errors.addcmul_(self.tanh_curvatures[index - 1], pre_tangents[index - 1], value=-2.0)
        return out

    # --- the support side: A_m ---------------------------------------------------------------------------
    def _prepare_support(self, support: Episodes) -> None:
        """The inner step's forward and backward pass, kept for the Hessian-vector products.

        The estimator is a function ``f`` of the support log-probabilities ``l_b``, so its gradient is
        ``sum_b f'_b grad l_b`` and its Hessian ``sum_b f'_b hess l_b + sum_bb' f''_bb' grad l_b grad l_b'^T``;
        ``f'`` (and ``f''`` times a vector, where ``f`` is not linear in ``l``) come from autograd on ``[M, T, N]``.
        """
        observations = _flat_batch(support, "observations")
        self.support_acts = self._forward(observations, self.params)
        self.inverse_variance = torch.exp(-2.0 * self.params["log_std"])  # [A]
        self.difference = self.support_acts.mean - _flat_batch(support, "actions")  # mu - a, [M, B, A]
        self.support_z_squared = self.difference**2 * self.inverse_variance
        log_probs = log_prob_from_z_squared(self.support_z_squared, self.params["log_std"])
        with torch.enable_grad():
            horizon, num_tasks, num_eps = support.mask.shape
            leaf = log_probs.view(num_tasks, horizon, num_eps).requires_grad_(True)
            loss = self.estimator(leaf, support_terms(support)).sum()
            (first,) = torch.autograd.grad(loss, leaf, create_graph=True)
        # f'' times a vector, by a backward pass of f' (None where f is linear in the log-probs: MAML)
        self._second_derivative = (leaf, first) if first.requires_grad else None
        weights = -first.detach().reshape(log_probs.shape)  # c: the loss's gradient is -sum_b c_b grad l_b, [M, B]
        self.support_weights = weights.unsqueeze(-1)  # [M, B, 1]
        output_delta = self.support_weights * self.difference * self.inverse_variance  # dL/dmu
        self.support_deltas: list[Tensor] = [None] * len(self.policy.layer_names)  # type: ignore[list-item]
        self.support_deltas[-1] = output_delta
        self.gradient = self._backprop(self.support_acts, self.params, output_delta, record=self.support_deltas)
        # h * delta_z of each hidden layer, the tanh second-derivative term of the HVP
        self.tanh_curvatures = [h * d for h, d in zip(self.support_acts.inputs[1:], self.support_deltas[:-1],
                                                      strict=True)] if self.policy.activation == "tanh" else []
        self.gradient["log_std"] = (self.support_weights * (1.0 - self.support_z_squared)).sum(1)  # [M, A]

    def _hessian_vector_product(self, tangent: Tangent) -> Tangent:
        """``H_m v`` for every task: shared or per-task ``tangent`` in, per-task ``[M, ...]`` out."""
        acts = self.support_acts
        pre_tangents, r_inputs, r_mean = self._tangent_forward(acts, self.params, tangent)
        r_log_std = _per_sample(tangent["log_std"])
        scaled = self.inverse_variance * self.support_weights  # c / sigma^2, [M, B, A]
        r_delta = scaled * (r_mean - 2.0 * self.difference * r_log_std)
        log_std_product = 2.0 * scaled * self.difference * (self.difference * r_log_std - r_mean)
        if self._second_derivative is not None:
            # sum_b u_b grad l_b with u = f'' s and s_b = grad l_b . v, the estimator's sampling term; it joins the
            # output errors of the same backward pass. grad l_b is -(mu - a)/sigma^2 (mean), z^2 - 1 (log-std).
            mean_score = self.difference * self.inverse_variance
            log_std_score = self.support_z_squared - 1.0
            directional = (log_std_score * r_log_std - mean_score * r_mean).sum(-1)  # s [M, B]
            leaf, first = self._second_derivative
            (second,) = torch.autograd.grad(first, leaf, grad_outputs=directional.view_as(leaf), retain_graph=True)
            second = second.reshape(directional.shape).unsqueeze(-1)  # u [M, B, 1]
            r_delta = r_delta - second * mean_score
            log_std_product = log_std_product + second * log_std_score
        product = self._r_backward(r_inputs, tangent, r_delta, pre_tangents)
        product["log_std"] = log_std_product.sum(1)
        return product

    def _adapt_tangent(self, tangent: Tangent, step_tangent: Tangent | None) -> Tangent:
        """``A_m (v, v_alpha)``: the tangent of every task's adapted parameters."""
        if not self.has_inner_step:
            return tangent
        hvp = None if self.first_order else self._hessian_vector_product(tangent)
        adapted = {}
        for name in self.names:
            value = tangent[name].expand_as(self.gradient[name])
            if hvp is not None:
                value = value - self._scale(name, hvp[name])
            if step_tangent is not None:
                value = value - step_tangent[name] * self.gradient[name]
            adapted[name] = value
        return adapted

    def _adapt_cotangent(self, cotangent: Tangent) -> tuple[Tangent, Tangent | None]:
        """``sum_m A_m^T w_m``: per-task cotangents of the adapted parameters back to the meta-parameters."""
        if not self.has_inner_step:  # Meta-SGD's step sizes are then unused: zero curvature
            params = {k: v.sum(0) for k, v in cotangent.items()}
            return params, ({k: torch.zeros_like(v) for k, v in params.items()} if self.metasgd else None)
        scaled = {name: self._scale(name, cotangent[name]) for name in self.names}
        hvp = None if self.first_order else self._hessian_vector_product(scaled)
        params = {name: (cotangent[name] - (0.0 if hvp is None else hvp[name])).sum(0) for name in self.names}
        steps = {name: -(self.gradient[name] * cotangent[name]).sum(0) for name in self.names} if self.metasgd else None
        return params, steps

    # --- the query side: K_m^T D_m K_m -------------------------------------------------------------------
    def _prepare_query(self, query: Episodes, adapted: Params) -> None:
        """The adapted policies' forward pass over the query batch and the KL's curvature weights."""
        mask = _flat_batch(query, "mask")
        self.query_actions = _flat_batch(query, "actions")
        self.query_behaviour_log_probs = _flat_batch(query, "log_probs")
        task_weights = mask / (mask.sum(1, keepdim=True).clamp_min(1.0) * self.num_tasks)  # mean over steps, tasks
        self.query_advantage_weights = _flat_batch(query, "advantages") * task_weights  # -d(surrogate)/d(ratio)
        self.query_params = adapted
        self.query_acts = self._forward(_flat_batch(query, "observations"), adapted)
        inverse_variance = _per_sample(torch.exp(-2.0 * adapted["log_std"]))
        self.mean_curvature = task_weights.unsqueeze(-1) * inverse_variance  # [M, B, A]
        self.log_std_curvature = 2.0 / self.num_tasks  # per task; a shared log-std sums to 2 over the tasks

    def _query_backward(self, mean_cotangent: Tensor, log_std_cotangent: Tensor) -> Tangent:
        """Per-task cotangents of the adapted parameters from cotangents of the query means ``[M, B, A]`` and
        log-stds ``[M, A]``: one backward pass through every task's query network."""
        out = self._backprop(self.query_acts, self.query_params, mean_cotangent)
        out["log_std"] = log_std_cotangent
        return out

    def _query_gauss_newton(self, tangent: Tangent) -> Tangent:
        """``K_m^T D_m K_m u_m`` for every task's tangent ``u_m`` of its adapted parameters."""
        _, _, r_mean = self._tangent_forward(self.query_acts, self.query_params, tangent)
        log_std_tangent = tangent["log_std"].expand(self.num_tasks, -1)
        return self._query_backward(self.mean_curvature * r_mean, self.log_std_curvature * log_std_tangent)

    def _flat(self, params: Tangent, steps: Tangent | None) -> Tensor:
        """Policy part then (Meta-SGD) step-size part, flattened in the meta-parameters' order."""
        flat = [params[k].reshape(-1) for k in self.names]
        if steps is not None:
            flat += [steps[k].reshape(-1) for k in self.names]
        return torch.cat(flat)

    def _query_terms(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The surrogate's pieces on the query batch under the adapted policies: ``mu - a`` and ``z^2``
        ``[M, B, A]``, ``1 / sigma^2`` (broadcastable to them) and each sample's ratio times its advantage weight
        ``[M, B]`` (the surrogate is minus their sum)."""
        log_std = _per_sample(self.query_params["log_std"])
        difference = self.query_acts.mean - self.query_actions  # mu - a
        inverse_variance = torch.exp(-2.0 * log_std)
        z_squared = difference**2 * inverse_variance
        log_probs = log_prob_from_z_squared(z_squared, log_std)
        weights = torch.exp(log_probs - self.query_behaviour_log_probs) * self.query_advantage_weights
        return difference, z_squared, inverse_variance, weights

    def surrogate(self) -> tuple[Tensor, Tensor, Tensor]:
        """The outer surrogate (scalar) at the current meta-parameters, with the adapted policies' query means
        ``[M, B, A]`` and log-stds (``[M, A]``, or the shared ``[A]`` without an inner step) it comes from: the
        objective's own forward pass, so the update needs no separate one."""
        if self.products_only:
            raise RuntimeError("an objective built with curvature_episodes covers only some query episodes; build "
                               "one without it for the surrogate")
        with torch.no_grad():
            return -self._query_terms()[3].sum(), self.query_acts.mean, self.query_params["log_std"]

    def meta_gradient(self) -> Tensor:
        """Gradient of the outer surrogate (mean over tasks of minus the masked mean of ratio * advantage, the
        ratio against the behaviour policy) w.r.t. the meta-parameters, flat, at the current values."""
        if self.products_only:
            raise RuntimeError("an objective built with curvature_episodes gives Fisher-vector products only; build "
                               "one without it for the meta-gradient")
        with torch.no_grad():
            difference, z_squared, inverse_variance, weights = self._query_terms()
            # d(-log pi)/d(mu) = (mu - a) / sigma^2 and d(-log pi)/d(log sigma) = 1 - z^2, times ratio * weight
            mean_cotangent = weights.unsqueeze(-1) * difference * inverse_variance
            log_std_cotangent = (weights.unsqueeze(-1) * (1.0 - z_squared)).sum(1)
            return self._flat(*self._adapt_cotangent(self._query_backward(mean_cotangent, log_std_cotangent)))

    # --- the product ---------------------------------------------------------------------------------------
    def __call__(self, vector: Tensor) -> Tensor:
        """``(F + damping I) vector`` for a flat vector over the meta-parameters (policy, then step sizes)."""
        sizes = [self.params[k].numel() for k in self.names]
        pieces = torch.split(vector, sizes * (2 if self.metasgd else 1))
        tangent = {k: p.view_as(self.params[k]) for k, p in zip(self.names, pieces, strict=False)}
        step_tangent = None
        if self.metasgd:
            step_tangent = {k: p.view_as(self.params[k]) for k, p in zip(self.names, pieces[len(sizes):], strict=True)}
        with torch.no_grad():
            adapted_tangent = self._adapt_tangent(tangent, step_tangent)
            query_cotangent = self._query_gauss_newton(adapted_tangent)
            return self._flat(*self._adapt_cotangent(query_cotangent)) + self.damping * vector
