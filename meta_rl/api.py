"""The user's API: load a trained meta-policy, adapt it to a new task in a few gradient steps, use the result.

    meta = MetaPolicy.load("runs/navigation-maml-seed0")
    policy = meta.adapt(task=[0.3, -0.2])          # one inner step on 20 fresh episodes
    action = policy.predict(obs)                   # numpy in, numpy out
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch

from meta_rl.adaptation import StepSize, adapt, expand_to_tasks, init_step_sizes, step_size_of_step, step_size_shapes
from meta_rl.checkpoint import (
    CheckpointError,
    check_params_match,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)
from meta_rl.config import Config, config_from_dict, merge_dicts
from meta_rl.episodes import Episodes
from meta_rl.policy import GaussianMLPPolicy, Params, gaussian_sample
from meta_rl.rollout import collect_and_adapt, make_policy
from meta_rl.sampler import make_sampler
from meta_rl.streams import EVALUATION

ADAPTED_FORMAT = "meta_rl.adapted_policy"
ADAPTED_VERSION = 3  # as the training checkpoint's: older files get their old env defaults filled in
DEFAULT_HELD_OUT_TASKS = 40  # the MAML paper's number of test tasks, for families without a test split
HEAVY_TASKS_AT_ONCE = 50  # tasks adapted to together where a family caps its sub-envs (a model each: ~1.2 GB)


def _joined_per_task(chunks: list[Any]) -> list[np.ndarray]:
    """A per-task statistic of each step (``[steps + 1]`` tensors ``[M_chunk]`` per chunk of tasks) as float64
    arrays over all the chunks' tasks, in order."""
    return [np.concatenate([values.cpu().double().numpy() for values in step]) for step in zip(*chunks, strict=True)]


def maml_step_schedule(step_size: float, grad_steps: int) -> list[float]:
    """The MAML paper's test-time schedule: ``alpha`` for the first step, ``alpha / 2`` for later ones."""
    return [step_size] * min(grad_steps, 1) + [step_size / 2.0] * max(grad_steps - 1, 0)


@dataclass
class AdaptationLog:
    """What happened during adaptation: mean episode return before each step and after the last."""

    returns: list[float] = field(default_factory=list)  # [steps + 1]; returns[k] = after k steps
    per_task: list[np.ndarray] = field(default_factory=list)  # [steps + 1] x [M]
    episodes: list[Episodes] = field(default_factory=list, repr=False)  # the batches the returns came from
    successes: list[np.ndarray] | None = None  # [steps + 1] x [M]: success rate per task (Meta-World), else None


class AdaptedPolicy:
    """A policy adapted to one task: acts on numpy observations, can be evaluated, saved and loaded alone.

    :param policy: the architecture.
    :param params: the adapted parameters (no task dimension).
    :param env_id: the task family.
    :param env_kwargs: the family's keyword arguments.
    :param task: the task it was adapted to.
    :param horizon: episode length used for evaluation.
    """

    def __init__(self, policy: GaussianMLPPolicy, params: Params, env_id: str, env_kwargs: dict[str, Any],
                 task: np.ndarray, horizon: int) -> None:
        self.policy = policy
        self.params = {k: v.detach().float() for k, v in params.items()}
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs)
        self.task = np.asarray(task, dtype=np.float64)
        self.horizon = horizon
        self.log: AdaptationLog | None = None

    def predict(self, observation: np.ndarray, deterministic: bool = True,
                rng: np.random.Generator | None = None) -> np.ndarray:
        """Action(s) for one observation ``[obs_dim]`` or a batch ``[B, obs_dim]`` (the Gaussian mean if
        ``deterministic``, else a sample drawn with ``rng``), in the env's units (``policy.action_scale`` applied)."""
        obs = np.asarray(observation, dtype=np.float32)
        if obs.shape[-1:] != (self.policy.obs_dim,) or obs.ndim > 2:
            raise ValueError(f"observation has shape {obs.shape}; expected ({self.policy.obs_dim},) or "
                             f"(batch, {self.policy.obs_dim})")
        with torch.no_grad():
            mean, log_std = self.policy.forward(torch.from_numpy(obs), self.params)
            mean, log_std = mean.double(), log_std.double()
            if deterministic:
                return self.policy.to_env(mean.numpy())
            rng = rng if rng is not None else np.random.default_rng()
            action, _ = gaussian_sample(mean, log_std, torch.from_numpy(rng.standard_normal(tuple(mean.shape))))
        return self.policy.to_env(action.numpy())

    def evaluate(self, episodes: int = 10, deterministic: bool = False, seed: int = 0) -> float:
        """Mean undiscounted return over ``episodes`` episodes on the policy's task (one vector env)."""
        from meta_rl_envs import make_task_vec

        envs = make_task_vec(self.env_id, episodes, max_episode_steps=self.horizon, **self.env_kwargs)
        try:
            envs.set_tasks(np.repeat(self.task[None], episodes, axis=0))
            obs, _ = envs.reset(seed=seed)
            rng = np.random.default_rng(seed)
            total = np.zeros(episodes)
            done = np.zeros(episodes, dtype=bool)
            for _ in range(self.horizon):
                obs, reward, terminated, truncated, _ = envs.step(self.predict(obs, deterministic, rng))
                total += reward * ~done
                done |= terminated | truncated
                if done.all():
                    break
        finally:
            envs.close()
        return float(total.mean())

    def save(self, path: str | os.PathLike) -> Path:
        """Write the adapted policy (tensors and plain data only) to ``path``."""
        state = {
            "params": {k: v.cpu() for k, v in self.params.items()},
            "policy": self.policy.spec(),
            "env_id": self.env_id, "env_kwargs": self.env_kwargs, "task": self.task.tolist(),
            "horizon": self.horizon,
        }
        return save_checkpoint(state, path, file_format=ADAPTED_FORMAT, version=ADAPTED_VERSION)

    @classmethod
    def load(cls, path: str | os.PathLike) -> AdaptedPolicy:
        """Read a file written by :meth:`save` (weights-only: never executes code)."""
        state = load_checkpoint(path, file_format=ADAPTED_FORMAT, version=ADAPTED_VERSION,
                                required=("params", "policy", "env_id", "task"))
        policy = GaussianMLPPolicy(**state["policy"])
        check_params_match(state["params"], policy.shapes, "adapted policy parameters")
        return cls(policy, state["params"], state["env_id"], state.get("env_kwargs", {}), np.asarray(state["task"]),
                   int(state.get("horizon", 100)))


class MetaPolicy:
    """A trained meta-policy (initial parameters and its inner step size), ready to adapt to new tasks.

    :param config: the training config (task family, horizon, episodes per task, inner step).
    :param params: the meta-learned initial parameters.
    :param step_sizes: Meta-SGD's learned per-parameter step sizes, or ``None`` for MAML.
    :param iteration: the training iteration of the checkpoint (for reports).
    :param checkpoint: where it was loaded from.
    """

    def __init__(self, config: Config, params: Params, step_sizes: Params | None = None, iteration: int = 0,
                 checkpoint: str | None = None) -> None:
        self.config = config
        self.policy = make_policy(config)
        check_params_match(params, self.policy.shapes, "policy parameters")
        if config.inner.algorithm == "metasgd":
            check_params_match(step_sizes or {}, step_size_shapes(self.policy, config.inner.num_steps),
                               "Meta-SGD step sizes")
        self.params = {k: v.detach().float() for k, v in params.items()}
        self.step_sizes = None if step_sizes is None else {k: v.detach().float() for k, v in step_sizes.items()}
        self.iteration = iteration
        self.checkpoint = checkpoint
        self._family_env: Any = None  # made on first use by _family()

    @classmethod
    def load(cls, path: str | os.PathLike, env_id: str | None = None) -> MetaPolicy:
        """Load from a checkpoint file or a run directory (its latest checkpoint).

        :param env_id: if given, the checkpoint must be of this task family (else :class:`CheckpointError`).
        """
        file = resolve_checkpoint(path)
        state = load_checkpoint(file)
        config = config_from_dict(state["config"])
        if env_id is not None and config.env.id != env_id:
            raise CheckpointError(f"checkpoint {str(file)!r} was trained on {config.env.id!r}, not {env_id!r}")
        return cls(config, state["learner"]["params"], state["learner"]["step_sizes"], int(state["iteration"]),
                   str(file))

    @classmethod
    def untrained(cls, config: Config, seed: int = 0) -> MetaPolicy:
        """A freshly initialised policy for ``config`` (the random baseline), initialised from ``seed``."""
        policy = make_policy(config)
        params = policy.init_params(torch.Generator().manual_seed(seed))
        step_sizes = None
        if config.inner.algorithm == "metasgd":
            step_sizes = init_step_sizes(policy, config.inner.step_size, num_steps=config.inner.num_steps)
        return cls(config, params, step_sizes)

    @property
    def env_id(self) -> str:
        """The task family this meta-policy was trained on."""
        return self.config.env.id

    def with_env_kwargs(self, **changes: Any) -> MetaPolicy:
        """The same meta-policy in its family with some env keyword arguments changed (e.g. another start-state
        noise, to see what an env detail is worth without retraining); checked as a config's env kwargs are, so a
        bad name or value raises :class:`~meta_rl.config.ConfigError`."""
        return self._with_config_changes({"env": {"kwargs": changes}})

    def with_sampler(self, **changes: Any) -> MetaPolicy:
        """The same meta-policy collecting with other ``sampler`` settings (e.g. ``backend="ray"``): the episodes,
        and so the results, are the same with any backend; checked as a config's are."""
        return self._with_config_changes({"sampler": changes})

    def _with_config_changes(self, changes: dict[str, Any]) -> MetaPolicy:
        """The same parameters under the config with nested ``changes`` merged in, validated as any config is."""
        raw = merge_dicts(dataclasses.asdict(self.config), changes)
        return MetaPolicy(config_from_dict(raw), self.params, self.step_sizes, self.iteration, self.checkpoint)

    def step_schedule(self, steps: int) -> list[StepSize]:
        """Step size of each inner step: Meta-SGD's learned ones (one set per trained inner step, the last set for
        steps beyond those), or MAML's alpha then alpha / 2."""
        if self.step_sizes is not None:
            return [step_size_of_step(self.step_sizes, k) for k in range(steps)]
        return maml_step_schedule(self.config.inner.step_size, steps)

    def adapt_on(self, params: Params, episodes: Episodes, step_size: StepSize) -> Params:
        """One inner step on given episodes (with advantages), exactly the trainer's inner step."""
        return adapt(self.policy, params, episodes, step_size, estimator=self.config.inner.estimator)

    def adapt(self, task: Any = None, env: gymnasium.Env | None = None, steps: int = 1,
              episodes: int | None = None, seed: int = 0) -> AdaptedPolicy:
        """Adapt to ``task`` (or to the task ``env`` is set to) with ``steps`` inner steps, each on ``episodes``
        fresh episodes (default: the training config's episodes per task) sampled with the latest parameters.

        The returned policy's ``log`` holds the mean return before each step and after the last.
        """
        if (task is None) == (env is None):
            raise ValueError("pass exactly one of task=... or env=... (an environment already set to its task)")
        if env is not None:
            if not hasattr(env.unwrapped, "task"):
                raise ValueError(f"{env} is not a task environment (no .task); pass task=... instead")
            task = env.unwrapped.task
        task = self._validate_task(task)
        params, log = self.adapt_tasks(task[None], steps, episodes, seed)
        adapted = AdaptedPolicy(self.policy, {k: v[0] for k, v in params.items()}, self.env_id,
                                self.config.env.kwargs, task, self.config.horizon)
        adapted.log = log
        return adapted

    def adapt_tasks(
        self,
        tasks: np.ndarray,
        steps: int,
        episodes: int | None = None,
        seed: int = 0,
        schedule: list[StepSize] | None = None,
    ) -> tuple[Params, AdaptationLog]:
        """Adapt to each of ``tasks`` ``[M, task_dim]`` at once; task-batched parameters ``[M, ...]`` and the log.

        ``log.returns[k]`` is the mean return over all tasks after ``k`` steps, ``log.per_task[k]`` per task.
        """
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        episodes = self.config.episodes_per_task if episodes is None else episodes
        if episodes < 1:
            raise ValueError(f"episodes must be >= 1, got {episodes}")
        schedule = self.step_schedule(steps) if schedule is None else list(schedule)
        if len(schedule) != steps:
            raise ValueError(f"the step-size schedule has {len(schedule)} entries; expected steps = {steps}")
        tasks = np.asarray(tasks)
        # families with heavy sub-envs (Meta-World: a model each) adapt to a large task set a chunk at a time
        chunk = len(tasks) if self._family().max_envs_per_task is None else HEAVY_TASKS_AT_ONCE
        parts = []
        for index, start in enumerate(range(0, len(tasks), chunk)):
            part = tasks[start:start + chunk]
            sampler = make_sampler(self.config, self.policy, len(part), episodes)
            params = expand_to_tasks(self.params, len(part))
            key = (EVALUATION,) if index == 0 else (EVALUATION, index)  # each chunk's episodes from streams of its own
            try:
                parts.append(collect_and_adapt(sampler, self.policy, params, part, schedule, self.config, seed, key))
            finally:
                sampler.close()
        if len(parts) == 1:
            params, batches = parts[0].params, parts[0].batches
        else:
            params = {name: torch.cat([part.params[name] for part in parts]) for name in parts[0].params}
            batches = [Episodes.join_tasks(list(step)) for step in zip(*(part.batches for part in parts), strict=True)]
        per_task = _joined_per_task([part.task_returns() for part in parts])
        log = AdaptationLog([float(values.mean()) for values in per_task], per_task, batches)
        successes = [part.task_successes() for part in parts]
        if successes[0] is not None:
            log.successes = _joined_per_task(successes)
        return params, log

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> np.ndarray:
        """Tasks from the family's distribution, ``[num_tasks, task_dim]``."""
        return self._family().sample_tasks(num_tasks, rng)

    def sample_held_out_tasks(self, num_tasks: int | None, rng: np.random.Generator) -> np.ndarray:
        """Tasks to evaluate on, ``[num_tasks, task_dim]``: the family's test split where it has one (None: all of
        it), else drawn from its distribution with ``rng`` (None: the MAML paper's 40)."""
        family = self._family()
        fixed = family.held_out_task_set()
        if num_tasks is None:
            return fixed if fixed is not None else family.sample_held_out_tasks(DEFAULT_HELD_OUT_TASKS, rng)
        return family.sample_held_out_tasks(num_tasks, rng)

    def check_tasks(self, tasks: Any) -> np.ndarray:
        """Given tasks (e.g. a fixed held-out set read from a file) as ``[M, task_dim]``, each checked against the
        family as :meth:`adapt` checks one; a bad one raises ``ValueError`` naming its index and what is allowed."""
        if not isinstance(tasks, list | tuple | np.ndarray) or (isinstance(tasks, np.ndarray) and tasks.ndim == 0):
            raise ValueError(f"tasks must be a list of {self.env_id} tasks, got {tasks!r}")
        rows = list(tasks)
        if not rows:
            raise ValueError(f"no tasks given; expected a non-empty list of {self.env_id} tasks")
        checked = []
        for index, task in enumerate(rows):
            try:
                checked.append(self._validate_task(task))
            except ValueError as error:
                raise ValueError(f"task {index} ({task!r}): {error}") from None
        return np.stack(checked).reshape(len(checked), -1)

    def _validate_task(self, task: Any) -> np.ndarray:
        """The task as an array, checked against the family's task space (clear error if malformed)."""
        family = self._family()
        family.set_task(task)  # raises ValueError naming the value and the allowed range
        return np.asarray(family.task, dtype=np.float64)

    def _family(self) -> Any:
        """One unwrapped environment of the family, made once, for sampling and checking tasks."""
        if self._family_env is None:
            import meta_rl_envs  # noqa: F401  (registers the families)

            self._family_env = gymnasium.make(self.env_id, **self.config.env.kwargs).unwrapped
        return self._family_env
