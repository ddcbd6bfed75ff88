"""Run configuration: dataclasses with strict validation, loaded from YAML presets or files plus overrides.

Every field has a docstring (the ``help`` metadata) because the README's field table and ``meta-rl presets``
are generated from the same place. A wrong key or value is a :class:`ConfigError` that names the key, the
value and what is allowed, raised before anything runs.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from meta_rl.estimators import estimator_names
from meta_rl.outer import algorithm_names


class ConfigError(ValueError):
    """A configuration key or value is not allowed; the message says which and what is."""


def _field(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field with its user-facing description."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **kwargs})
    if dataclasses.is_dataclass(default):
        return field(default_factory=type(default), metadata={"help": help, **kwargs})
    return field(default=default, metadata={"help": help, **kwargs})


@dataclass
class EnvConfig:
    """Which task family to train on."""

    id: str = _field("meta_rl/Navigation2D-v0", "Gymnasium id of the task family (`meta-rl presets` lists them).")
    kwargs: dict[str, Any] = _field({}, "Keyword arguments for the environment, e.g. {goal_low: -0.5}.")


@dataclass
class PolicyConfig:
    """The Gaussian MLP policy."""

    hidden_sizes: list[int] = _field([64, 64], "Hidden layer widths.", positive=True)
    activation: Literal["tanh", "relu"] = _field("tanh", "Hidden nonlinearity.")
    init_std: float = _field(1.0, "Initial standard deviation of the (state-independent) Gaussian.", positive=True)
    action_scale: float = _field(
        0.0, "0: the policy acts in the env's units. Else the env gets centre + action_scale x half-range x the "
        "policy's action, per bounded action dimension (ProMP's normalize(env) is 0.1).", nonnegative=True)


@dataclass
class InnerConfig:
    """The inner loop: how a policy adapts to one task."""

    algorithm: Literal["maml", "metasgd"] = _field(
        "maml", "maml: one scalar step size; metasgd: a meta-learned step size per parameter element."
    )
    step_size: float = _field(0.1, "MAML's step size, or the initial value of Meta-SGD's step sizes.", positive=True)
    num_steps: int = _field(
        1, "Inner policy-gradient steps, each on fresh support episodes; 0 trains without adaptation (the "
        "pretrained and oracle baselines).", nonnegative=True
    )
    first_order: bool = _field(False, "Drop the second-order term of the meta-gradient (first-order MAML).")
    estimator: str = _field(
        "lvc", "The inner loss the meta-gradient differentiates through: lvc (ProMP's low-variance curvature; the "
        "default: it learned best on 2D navigation), maml (the MAML paper's surrogate; biased, kept for reproducing "
        "the paper) or dice (DiCE; unbiased, higher variance). See docs/estimators.md.",
        choices=estimator_names,
    )


@dataclass
class ProMPConfig:
    """ProMP's outer loop (``outer.optimizer: promp``); the defaults are the ProMP paper's."""

    lr: float = _field(1e-3, "Adam's learning rate.", positive=True)
    steps: int = _field(5, "Adam steps per meta-iteration, all on the same episodes.", positive=True)
    clip_eps: float = _field(0.3, "PPO clip range of the outer likelihood ratio, in (0, 1).", unit_open=True)
    inner_kl_coeff: float = _field(
        5e-4, "Weight of the penalty on each inner step's KL between its sampling policy and the same policy "
        "recomputed from the updated meta-parameters (its starting value when adaptive).", nonnegative=True
    )
    adaptive_inner_kl: bool = _field(
        False, "After each update, halve an inner step's coefficient when its KL is below target_inner_kl / 1.5 and "
        "double it when above target_inner_kl * 1.5."
    )
    target_inner_kl: float = _field(0.01, "The inner KL adaptive_inner_kl steers towards.", positive=True)


@dataclass
class OuterConfig:
    """The outer loop: how the initial parameters (and Meta-SGD's step sizes) are updated."""

    optimizer: str = _field(
        "trpo", "trpo: conjugate gradient on the KL plus line search; adam/sgd: a torch optimizer step; promp: ProMP's "
        "clipped surrogate with an inner-KL penalty, several Adam steps (outer.promp). See meta_rl.outer.",
        choices=algorithm_names,
    )
    max_kl: float = _field(0.01, "TRPO trust region: largest mean KL between old and new adapted policies.",
                           positive=True)
    cg_iters: int = _field(10, "TRPO conjugate-gradient iterations.", positive=True)
    fvp: Literal["analytic", "gauss_newton", "kl_hessian"] = _field(
        "analytic", "TRPO Fisher-vector product, all exact: analytic (hand-written R-operators, inner.num_steps 0 or "
        "1), gauss_newton (J^T D J by autograd, any num_steps), kl_hessian (double backward; slowest)."
    )
    fvp_subsample: float = _field(
        1.0, "Fraction of the meta-batch the TRPO Fisher-vector products use, in (0, 1]: 1 is exact; 0.25 makes "
        "each product about 4x cheaper (the gradient and the line search still use everything).", unit_closed=True
    )
    fvp_subsample_by: Literal["tasks", "episodes"] = _field(
        "tasks", "What fvp_subsample keeps a fraction of: tasks (the first tasks, with all their episodes) or "
        "episodes (the first episodes of every task, so every task's curvature counts)."
    )
    cg_damping: float = _field(1e-5, "TRPO damping added to the Fisher-vector product.", nonnegative=True)
    line_search_steps: int = _field(15, "TRPO backtracking line-search steps.", positive=True)
    line_search_backtrack_ratio: float = _field(0.8, "TRPO line-search shrink factor, in (0, 1).", unit_open=True)
    lr: float = _field(0.01, "Learning rate of the adam/sgd meta-optimizer.", positive=True)
    promp: ProMPConfig = _field(ProMPConfig(), "ProMP's settings (outer.optimizer: promp).")


@dataclass
class SamplerConfig:
    """Where episodes are collected: in this process, or on Ray workers; the numbers are the same either way."""

    backend: Literal["local", "ray"] = _field(
        "local", "local: one vector env in this process; ray: workers that each step a shard of the tasks (pip "
        "install -e '.[ray]'). Every episode has its own random stream, so the backend and the number of workers "
        "never change the numbers."
    )
    num_workers: int = _field(2, "Ray workers (backend: ray), each holding the vector env of a shard of the tasks.",
                              positive=True)
    address: str = _field(
        "", "Ray cluster to join (backend: ray): auto for the one `ray start` runs on this machine, host:port for "
        "another, empty to start a local one for the run."
    )
    cpus_per_worker: float = _field(
        1.0, "CPUs Ray reserves for each worker (backend: ray): the number of cores of a machine places one worker "
        "per machine, stepping with sampler_threads threads (0: every core).", positive=True
    )
    timeout_s: float = _field(
        300.0, "Seconds a worker may take for its shard of one collect before it counts as hung (backend: ray).",
        positive=True
    )
    start_timeout_s: float = _field(
        120.0, "Seconds a new worker may take to start (import torch, build its environments) before it counts as "
        "hung (backend: ray).", positive=True
    )
    max_restarts: int = _field(
        3, "Times a dead or hung worker is restarted and its shard collected again before the run stops with an "
        "error naming it (backend: ray); 0 stops at once.", nonnegative=True
    )


@dataclass
class Config:
    """A whole training run."""

    env: EnvConfig = _field(EnvConfig(), "The task family.")
    policy: PolicyConfig = _field(PolicyConfig(), "The policy network.")
    inner: InnerConfig = _field(InnerConfig(), "The inner (adaptation) loop.")
    outer: OuterConfig = _field(OuterConfig(), "The outer (meta) update.")
    iterations: int = _field(500, "Meta-iterations to train for.", positive=True)
    meta_batch_size: int = _field(20, "Tasks per meta-iteration (M).", positive=True)
    episodes_per_task: int = _field(20, "Episodes per task for each support and query batch (N).", positive=True)
    horizon: int = _field(100, "Steps per episode (H); episodes that end earlier are masked.", positive=True)
    gamma: float = _field(0.99, "Discount factor, in (0, 1].", unit_closed=True)
    gae_lambda: float = _field(1.0, "GAE lambda, in [0, 1].", unit_interval=True)
    normalize_advantages: bool = _field(True, "Normalise advantages per task (zero mean, unit std).")
    seed: int = _field(0, "Seeds tasks, environment resets, policy noise and initialisation.", nonnegative=True)
    device: str = _field("auto", "Where updates run: auto (CUDA when present), cpu, cuda or cuda:N.")
    checkpoint_every: int = _field(25, "Write the checkpoint every K iterations (and at the end).", positive=True)
    snapshot_every: int = _field(
        0, "Also keep the checkpoint of every K-th iteration as checkpoint-ITERATION.pt, so an earlier iteration "
        "can be evaluated; 0 keeps only the latest.", nonnegative=True
    )
    eval_every: int = _field(
        0, "Every K iterations, adapt to eval_tasks held-out tasks and log their returns after 0..eval_grad_steps "
        "inner steps (heldout/step_K); 0 never.", nonnegative=True
    )
    eval_tasks: int = _field(
        10, "Held-out tasks of the periodic evaluation: the same ones each time, drawn from a seed apart from "
        "training's.", positive=True
    )
    eval_grad_steps: int = _field(3, "Inner steps of the periodic evaluation (the test-time schedule of "
                                  "`meta-rl evaluate`).", nonnegative=True)
    torch_threads: int = _field(0, "torch intra-op threads; 0 keeps torch's default.", nonnegative=True)
    sampler_threads: int = _field(
        0, "Threads stepping the environments, for families with threaded native stepping (the MuJoCo ones), in "
        "this process or in each Ray worker; 0 uses every core.", nonnegative=True
    )
    sampler: SamplerConfig = _field(SamplerConfig(), "Where episodes are collected: here or on Ray workers.")

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict (JSON/YAML-serialisable)."""
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        """The config as YAML, loadable by :func:`load_config`."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


PRESET_PACKAGE = "meta_rl.presets"


def list_presets() -> dict[str, str]:
    """Preset name -> its one-line description (the YAML's first comment line)."""
    presets = {}
    for entry in sorted(resources.files(PRESET_PACKAGE).iterdir(), key=lambda e: e.name.removesuffix(".yaml")):
        if entry.name.endswith(".yaml"):
            first = entry.read_text().splitlines()[0] if entry.read_text() else ""
            presets[entry.name[: -len(".yaml")]] = first.lstrip("# ").strip()
    return presets


BASE_KEY = "base"
"""A config's top-level key naming the preset or YAML file it extends (its own keys are merged over it)."""


def _read_source(source: str | Path, extended_by: tuple[str, ...] = ()) -> dict[str, Any]:
    """Raw dict from a preset name or a YAML path, with its ``base`` chain merged in (the file's keys win)."""
    path = Path(source)
    from_file = path.suffix in (".yaml", ".yml") or path.exists()
    if from_file:
        if not path.is_file():
            raise ConfigError(f"config file {str(source)!r} does not exist")
        text, identity = path.read_text(), str(path.resolve())
    else:
        presets = list_presets()
        if str(source) not in presets:
            raise ConfigError(
                f"unknown preset {str(source)!r}; allowed: {', '.join(presets)} (or a path to a .yaml file)"
            )
        text, identity = resources.files(PRESET_PACKAGE).joinpath(f"{source}.yaml").read_text(), f"preset {source}"
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"config {str(source)!r} is not valid YAML: {error}") from error
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config {str(source)!r} must be a mapping of keys to values, got {type(raw).__name__}")
    if BASE_KEY not in raw:
        return raw
    base = raw.pop(BASE_KEY)
    if not isinstance(base, str) or not base:
        raise ConfigError(f"config {str(source)!r}: {BASE_KEY} must be a preset name or a .yaml path, got {base!r}")
    chain = (*extended_by, identity)
    if identity in extended_by:
        raise ConfigError(f"config {str(source)!r}: its {BASE_KEY} chain loops: {' -> '.join(chain)}")
    base_source: str | Path = base
    if from_file and Path(base).suffix in (".yaml", ".yml"):
        base_source = path.parent / base  # relative to the file that names it (an absolute path stays itself)
    return merge_dicts(_read_source(base_source, chain), raw)


def merge_dicts(base: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """``base`` with nested ``updates`` applied (a new dict): mappings merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in updates.items():
        nested = isinstance(value, dict) and isinstance(base.get(key), dict)
        merged[key] = merge_dicts(base[key], value) if nested else value
    return merged


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Apply one ``dotted.key=value`` override (the value parsed as YAML) to a raw config dict."""
    if "=" not in override:
        raise ConfigError(f"override {override!r} must look like key=value, e.g. outer.max_kl=0.02")
    key, _, text = override.partition("=")
    key = key.strip()
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as error:
        raise ConfigError(f"override {override!r}: value {text!r} is not valid YAML") from error
    parts = key.split(".")
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {override!r}: {'.'.join(parts[: depth + 1])} is not a section")
        node = child
    node[parts[-1]] = value


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (list, dict):
        return str(annotation).replace("typing.", "")
    return getattr(annotation, "__name__", str(annotation))


def _coerce(path: str, value: Any, annotation: Any, meta: dict[str, Any]) -> Any:
    """Check ``value`` against the field's type and bounds; return it (ints promoted to float where asked)."""
    origin = typing.get_origin(annotation)
    bad = ConfigError(f"{path}: {value!r} is not allowed; expected {_type_name(annotation)}")
    if origin is Literal:
        if value not in typing.get_args(annotation):
            raise bad
        return value
    if origin is list:
        (item_type,) = typing.get_args(annotation)
        if not isinstance(value, list):
            raise bad
        return [_coerce(f"{path}[{i}]", item, item_type, meta) for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise bad
        return dict(value)
    if origin in (typing.Union, types.UnionType):
        raise TypeError(f"unsupported annotation {annotation}")  # keep config types simple
    if annotation is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
    elif annotation is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-5 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                raise bad from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{path}: {value!r} is not allowed; expected a finite number")
    elif annotation is str and not isinstance(value, str):
        raise bad
    if "choices" in meta and value not in meta["choices"]():
        raise ConfigError(f"{path}: {value!r} is not allowed; expected one of "
                          f"{', '.join(repr(c) for c in meta['choices']())}")
    if meta.get("positive") and not value > 0:
        raise ConfigError(f"{path}: {value!r} is not allowed; expected a value > 0")
    if meta.get("nonnegative") and not value >= 0:
        raise ConfigError(f"{path}: {value!r} is not allowed; expected a value >= 0")
    if meta.get("unit_open") and not 0 < value < 1:
        raise ConfigError(f"{path}: {value!r} is not allowed; expected a value in (0, 1)")
    if meta.get("unit_closed") and not 0 < value <= 1:
        raise ConfigError(f"{path}: {value!r} is not allowed; expected a value in (0, 1]")
    if meta.get("unit_interval") and not 0 <= value <= 1:
        raise ConfigError(f"{path}: {value!r} is not allowed; expected a value in [0, 1]")
    return value


def _build(cls: type, raw: dict[str, Any], prefix: str) -> Any:
    """Instantiate dataclass ``cls`` from ``raw``, rejecting unknown keys and bad values."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [key for key in raw if key not in fields]
    if unknown:
        where = f"in section {prefix.rstrip('.')!r}" if prefix else "at the top level"
        raise ConfigError(f"unknown config key {prefix + str(unknown[0])!r} {where}; allowed: {', '.join(fields)}")
    values = {}
    for name, value in raw.items():
        annotation = hints[name]
        path = prefix + name
        if dataclasses.is_dataclass(annotation):
            if not isinstance(value, dict):
                raise ConfigError(f"{path}: {value!r} is not allowed; expected a section with keys "
                                  f"{', '.join(f.name for f in dataclasses.fields(annotation))}")
            values[name] = _build(annotation, value, path + ".")
        else:
            values[name] = _coerce(path, value, annotation, dict(fields[name].metadata))
    return cls(**values)


def _check_semantics(config: Config) -> None:
    """Checks that need more than one field or outside knowledge (the Gymnasium registry, torch devices)."""
    import gymnasium
    from gymnasium.envs.registration import load_env_creator

    import meta_rl_envs  # registers the task families

    known = sorted(i for i in gymnasium.envs.registry if i.startswith("meta_rl/"))
    if config.env.id not in gymnasium.envs.registry:
        raise ConfigError(f"env.id: unknown environment id {config.env.id!r}; registered task families: "
                          f"{', '.join(known)}")
    entry_point = gymnasium.spec(config.env.id).entry_point
    env_class = load_env_creator(entry_point) if isinstance(entry_point, str) else entry_point
    if not (isinstance(env_class, type) and issubclass(env_class, meta_rl_envs.TaskEnvMixin)):
        raise ConfigError(f"env.id: {config.env.id!r} is not a task family (its environment has no set_task/"
                          f"sample_tasks); task families: {', '.join(known)}")
    _check_env_kwargs(config.env.id, env_class, config.env.kwargs)
    if config.outer.fvp == "analytic" and config.inner.num_steps > 1:
        raise ConfigError(
            f"outer.fvp: 'analytic' supports inner.num_steps 0 or 1, got inner.num_steps={config.inner.num_steps}; "
            "use outer.fvp=gauss_newton for more inner steps"
        )
    device = config.device
    if not (device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit())):
        raise ConfigError(f"device: {device!r} is not allowed; expected auto, cpu, cuda or cuda:N")


def _check_env_kwargs(env_id: str, env_class: type, kwargs: dict[str, Any]) -> None:
    """Build the env once with ``kwargs``, so an unknown keyword or a value the env refuses is a
    :class:`ConfigError` naming it (and the allowed keywords) before any work starts, not a traceback later."""
    parameters = inspect.signature(env_class.__init__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    allowed = sorted(name for name, p in parameters.items()
                     if name not in ("self", "render_mode") and p.kind is not inspect.Parameter.VAR_KEYWORD)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown and not takes_any:
        raise ConfigError(f"env.kwargs: unknown keyword(s) {', '.join(map(repr, unknown))} for {env_id!r}; "
                          f"allowed: {', '.join(allowed)}")
    try:
        env = env_class(**kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"env.kwargs: {error}") from None
    env.close()


def replace_validated(section: Any, prefix: str, **changes: Any) -> Any:
    """``dataclasses.replace`` for a config section (e.g. ``OuterConfig``), with the checks a loaded config gets:
    an unknown key or a bad value raises :class:`ConfigError` naming ``prefix + key``."""
    return _build(type(section), {**dataclasses.asdict(section), **changes}, prefix)


def config_from_dict(raw: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from a (possibly partial) nested dict."""
    config = _build(Config, raw, "")
    _check_semantics(config)
    return config


def load_config(source: str | Path, overrides: list[str] | None = None) -> Config:
    """Load a preset name or YAML file, apply ``key=value`` overrides, and validate everything."""
    raw = _read_source(source)
    for override in overrides or []:
        apply_override(raw, override)
    return config_from_dict(raw)


def field_docs(cls: type = Config, prefix: str = "") -> list[tuple[str, str, Any]]:
    """(dotted key, description, default) for every leaf field, for documentation."""
    rows = []
    defaults = cls()
    for f in dataclasses.fields(cls):
        value = getattr(defaults, f.name)
        if dataclasses.is_dataclass(value):
            rows.extend(field_docs(type(value), prefix + f.name + "."))
        else:
            rows.append((prefix + f.name, f.metadata["help"], value))
    return rows
