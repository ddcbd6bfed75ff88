"""The ``meta-rl`` command: train, presets, evaluate, adapt, plot, curves."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from meta_rl.checkpoint import SNAPSHOT_PREFIX, CheckpointError, load_checkpoint
from meta_rl.config import ConfigError, apply_override, list_presets, load_config
from meta_rl.evaluation import DEFAULT_EPISODES, DEFAULT_SEED
from meta_rl.meta_learner import NonFiniteError
from meta_rl.runtime import keep_freed_memory


def cmd_train(args: argparse.Namespace) -> int:
    """Train from a preset or YAML file, or resume a run directory."""
    from meta_rl.trainer import make_trainer

    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    trainer = make_trainer(args.config, args.run_dir, overrides, resume=args.resume)
    if args.resume:
        print(f"Resuming {trainer.run_dir} at iteration {trainer.iteration} of {trainer.config.iterations}")
    else:
        print(f"Training {args.config} -> {trainer.run_dir} (tensorboard --logdir {trainer.run_dir.parent})")
    try:
        history = trainer.train(progress=not args.no_progress)
    finally:
        trainer.close()
    if history:
        last = history[-1]
        steps = sorted(last)
        print("Final iteration: " + ", ".join(f"{k} = {last[k]:.2f}" for k in steps))
    print(f"Checkpoint: {trainer.checkpoint_path}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    """List the shipped presets."""
    for name, description in list_presets().items():
        print(f"{name:28s} {description}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Adaptation curve of a trained checkpoint (or an untrained policy) on held-out tasks."""
    from meta_rl.evaluation import (
        check_plots_trajectories,
        evaluate,
        format_table,
        load_task_file,
        plot_trajectories,
        write_json,
        write_tensorboard,
    )

    untrained = load_config(args.checkpoint) if args.random else None
    schedule = parse_task(args.step_schedule, "--step-schedule") if args.step_schedule else None
    env_kwargs = parse_env_kwargs(args.env_kwarg or [])
    sampler = parse_sampler(args.sampler or [])
    if args.task_file and args.tasks is not None:
        raise ConfigError("pass --tasks (draw that many tasks) or --task-file (evaluate on the file's), not both")
    try:
        tasks = load_task_file(args.task_file) if args.task_file else None
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if args.trajectories:  # refuse before evaluating, not after
        saved = None if untrained or args.env else load_checkpoint(args.checkpoint)["config"]
        env_id = args.env or (untrained.env.id if untrained else saved["env"]["id"])
        try:
            check_plots_trajectories(env_id)
        except ValueError as error:
            raise ConfigError(f"--trajectories: {error}") from None
    try:
        result = evaluate(None if args.random else args.checkpoint, num_tasks=args.tasks,
                          grad_steps=args.grad_steps, episodes=args.episodes, seed=args.seed,
                          step_schedule=schedule, progress=not args.no_progress, env_id=args.env,
                          untrained=untrained, env_kwargs=env_kwargs, tasks=tasks, task_file=args.task_file,
                          sampler=sampler)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    print(format_table(result))
    if args.json:
        write_json(result, args.json)
        print(f"Wrote {args.json}")
    tensorboard = args.tensorboard
    if tensorboard is None and not args.random:
        tensorboard = default_evaluation_dir(result["checkpoint"], args.seed, schedule, env_kwargs, args.task_file,
                                             args.episodes)
    if tensorboard:
        write_tensorboard(result, tensorboard)
        print(f"TensorBoard: {tensorboard}")
    if args.trajectories:
        try:
            print(f"Wrote {plot_trajectories(result, args.trajectories)}")
        except ValueError as error:
            raise ConfigError(str(error)) from None
    return 0


def parse_reference(item: str) -> tuple[str, list[float]]:
    """``--reference "LABEL=r0,r1,..."``: a published adaptation curve (or one number) to plot beside results."""
    label, _, values = item.rpartition("=")
    if not label.strip() or not values.strip():
        raise ValueError(f"--reference {item!r} must look like LABEL=r0,r1,..., e.g. \"MAML paper=-129.5,-78.6\"")
    return label.strip(), parse_task(values, f"--reference {label.strip()!r}")


def parse_name_values(items: list[str], option: str, example: str) -> dict:
    """``--OPTION NAME=VALUE`` options as a dict, each value parsed as YAML (``true``, ``0.05``, ``rllab``)."""
    parsed: dict = {}
    for item in items:
        name = item.partition("=")[0].strip()
        if "=" not in item or not name or "." in name:
            raise ConfigError(f"{option} {item!r} must look like NAME=VALUE, e.g. {example}")
        apply_override(parsed, item)
    return parsed


def parse_env_kwargs(items: list[str]) -> dict:
    """``--env-kwarg NAME=VALUE`` options: env keyword arguments to change."""
    return parse_name_values(items, "--env-kwarg", "reset_noise=rllab")


def parse_sampler(items: list[str]) -> dict:
    """``--sampler NAME=VALUE`` options: ``sampler`` settings to change (checked as a config's are)."""
    return parse_name_values(items, "--sampler", "backend=ray")


def default_evaluation_dir(checkpoint: str | Path, seed: int, schedule: list[float] | None,
                           env_kwargs: dict | None = None, task_file: str | Path | None = None,
                           episodes: int = DEFAULT_EPISODES) -> Path:
    """Where ``evaluate`` writes TensorBoard by default: ``RUN_DIR/evaluation-seedS``, with the snapshot's iteration
    (``evaluation-iter00250-seedS``), a ``--step-schedule`` (``...-steps0.02_0.01``), changed env kwargs
    (``...-env-reset_noise-rllab``), a task file's name (``...-tasks-cheetah-vel``) and a non-default episode count
    (``...-eps40``) in the name, so evaluations of other snapshots, step sizes, env settings, task sets or sample
    sizes do not write their curves over each other."""
    checkpoint = Path(checkpoint)
    name = f"evaluation-seed{seed}"
    snapshot = checkpoint.stem.removeprefix(SNAPSHOT_PREFIX)
    if snapshot != checkpoint.stem:
        name = f"evaluation-iter{snapshot}-seed{seed}"
    if schedule:
        name += "-steps" + "_".join(f"{step:g}" for step in schedule)
    if env_kwargs:
        name += "-env-" + "_".join(f"{key}-{value}" for key, value in sorted(env_kwargs.items()))
    if task_file:
        name += f"-tasks-{Path(str(task_file).removeprefix('paper:')).stem}"
    if episodes != DEFAULT_EPISODES:
        name += f"-eps{episodes}"
    return checkpoint.parent / name


def parse_task(text: str, option: str = "--task") -> list[float]:
    """Comma-separated numbers from the command line, e.g. a goal ``0.3,-0.2`` or a speed ``1.5``."""
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"{option} {text!r} is not a comma-separated list of numbers, e.g. 0.3,-0.2") from None


def cmd_adapt(args: argparse.Namespace) -> int:
    """Adapt a trained meta-policy to one task; print returns, save the adapted policy, optionally plot."""
    from meta_rl.api import MetaPolicy

    meta = MetaPolicy.load(args.checkpoint)
    if args.sampler:
        meta = meta.with_sampler(**parse_sampler(args.sampler))
    if args.plot:  # refuse before adapting, not after
        from meta_rl.evaluation import check_plots_trajectories

        try:
            check_plots_trajectories(meta.env_id)
        except ValueError as error:
            raise ConfigError(f"--plot: {error}") from None
    try:
        adapted = meta.adapt(task=parse_task(args.task), steps=args.steps, episodes=args.episodes, seed=args.seed)
    except ValueError as error:  # a malformed or out-of-range task: the family's message says what is allowed
        raise ConfigError(str(error)) from None
    print(f"{meta.env_id} ({meta.config.inner.algorithm}, iteration {meta.iteration}), task {adapted.task.tolist()}")
    for step, value in enumerate(adapted.log.returns):
        print(f"  after {step} step{'s' if step != 1 else ''}: mean return {value:9.2f}")
    save = Path(args.save) if args.save else Path(meta.checkpoint).parent / "adapted.pt"
    adapted.save(save)
    print(f"Saved the adapted policy to {save}")
    if args.plot:
        from meta_rl.plots import plot_navigation_trajectories


        labels = [f"after {k} step{'s' if k != 1 else ''}" for k in range(len(adapted.log.episodes))]
        plot_navigation_trajectories(adapted.task[None], adapted.log.episodes, labels, args.plot, episodes_per_goal=5)
        print(f"Wrote {args.plot}")
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    """Adaptation curves from evaluation JSON files."""
    from meta_rl.evaluation import load_results
    from meta_rl.plots import plot_adaptation_curves

    try:
        results = load_results(args.results)
        if args.labels and len(args.labels) != len(results):
            raise ValueError(f"{len(args.labels)} --labels for {len(results)} result files")
        references = [parse_reference(item) for item in args.reference or []]
        path = plot_adaptation_curves(results, args.output, args.labels, args.title, references)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    print(f"Wrote {path}")
    return 0


def cmd_curves(args: argparse.Namespace) -> int:
    """Training returns of runs, as block means (printed) and a plot (``--output``)."""
    from meta_rl.plots import block_means, drift, plot_training_curves, step_label

    labels = args.labels or [Path(run).name if Path(run).is_dir() else str(run) for run in args.runs]
    if len(labels) != len(args.runs):
        raise ConfigError(f"{len(labels)} --labels for {len(args.runs)} runs")
    histories = []
    try:
        for run, label in zip(args.runs, labels, strict=True):
            history = load_checkpoint(run).get("history", [])
            rows = block_means(history, args.block)
            keys = list(rows[0][2])
            print(f"{label}: mean training return per {args.block} iterations")
            print(f"  {'iterations':>11s}" + "".join(f" {step_label(key):>15s}" for key in keys))
            for first, last, means in rows:
                print(f"  {f'{first}-{last}':>11s}" + "".join(f" {means[key]:15.2f}" for key in keys))
            best, first, last, tail = drift(history, args.block)
            print(f"  {step_label(keys[-1])}: best block {best:.2f} (iterations {first}-{last}), last "
                  f"{min(100, len(history))} iterations {tail:.2f} ({tail - best:+.2f})")
            histories.append(history)
        if args.output:
            print(f"Wrote {plot_training_curves(histories, labels, args.output, args.block, args.title)}")
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (shared by ``scripts/``)."""
    parser = argparse.ArgumentParser(prog="meta-rl", description="Meta-reinforcement learning: MAML and Meta-SGD.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="meta-train a policy")
    train.add_argument("config", help="preset name (see `meta-rl presets`), a .yaml file, or with --resume a run dir")
    train.add_argument("overrides", nargs="*", metavar="key=value", help="override a config field, e.g. iterations=50")
    train.add_argument("--run-dir", help="where logs and checkpoints go (default runs/PRESET-seedN)")
    train.add_argument("--seed", type=int, help="shorthand for seed=N")
    train.add_argument("--resume", action="store_true", help="continue the run in --run-dir (or CONFIG as a run dir)")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    presets = sub.add_parser("presets", help="list the shipped presets")
    presets.set_defaults(func=cmd_presets)

    evaluate = sub.add_parser("evaluate", help="returns after 0..k inner steps on held-out tasks")
    evaluate.add_argument("checkpoint", help="a run directory (its latest checkpoint) or a checkpoint file; with "
                          "--random, a preset or config file")
    evaluate.add_argument("--tasks", type=int, help="held-out tasks to draw with --seed (default 40; "
                          "Meta-World: its test variations, all of them by default)")
    evaluate.add_argument("--task-file", metavar="JSON",
                          help="evaluate on the tasks in this file instead of drawn ones: a JSON list, or an object "
                               "with a \"tasks\" list; paper:cheetah-vel, paper:cheetah-dir and paper:navigation are "
                               "the MAML paper's test tasks, shipped with the package")
    evaluate.add_argument("--grad-steps", type=int, default=3, help="inner steps (default 3)")
    evaluate.add_argument("--episodes", type=int, default=DEFAULT_EPISODES,
                          help=f"episodes per task per step (default {DEFAULT_EPISODES})")
    evaluate.add_argument("--seed", type=int, default=DEFAULT_SEED,
                          help="seeds the drawn held-out tasks (a stream apart from training's) and the episodes "
                               f"(default {DEFAULT_SEED})")
    evaluate.add_argument("--json", help="also write the results as JSON to this file")
    evaluate.add_argument("--step-schedule", help="MAML: step size of each inner step, e.g. 0.1,0.05,0.05 "
                          "(default: alpha, then alpha/2); Meta-SGD always uses its learned step sizes")
    evaluate.add_argument("--env", help="refuse a checkpoint of another task family than this id")
    evaluate.add_argument("--env-kwarg", action="append", metavar="NAME=VALUE",
                          help="evaluate with this env keyword argument changed from the training config's, e.g. "
                          "reset_noise=rllab (repeatable)")
    evaluate.add_argument("--sampler", action="append", metavar="NAME=VALUE",
                          help="collect with this sampler setting changed, e.g. backend=ray or num_workers=4 "
                          "(repeatable; the results do not change)")
    evaluate.add_argument("--random", action="store_true",
                          help="evaluate a freshly initialised policy of the given preset (the random baseline)")
    evaluate.add_argument("--tensorboard", help="write return vs gradient step here (default RUN_DIR/evaluation-seedS; "
                          "evaluation-iterN-seedS for a snapshot, -stepsA_B added for --step-schedule)")
    evaluate.add_argument("--trajectories", help="2D navigation: PNG of trajectories for 4 held-out goals "
                          "before adapting, after 1 and after the last step")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress lines")
    evaluate.set_defaults(func=cmd_evaluate)

    adapt = sub.add_parser("adapt", help="adapt a trained meta-policy to one new task")
    adapt.add_argument("checkpoint", help="a run directory (its latest checkpoint) or a checkpoint file")
    adapt.add_argument("--task", required=True, help="the task: a goal '0.3,-0.2' (2D navigation), a speed '1.5'")
    adapt.add_argument("--steps", type=int, default=1, help="inner steps (default 1)")
    adapt.add_argument("--episodes", type=int, help="episodes per step (default: the training config's)")
    adapt.add_argument("--seed", type=int, default=0, help="seeds the episodes")
    adapt.add_argument("--sampler", action="append", metavar="NAME=VALUE",
                       help="collect with this sampler setting changed, e.g. backend=ray (repeatable)")
    adapt.add_argument("--save", help="where to save the adapted policy (default RUN_DIR/adapted.pt)")
    adapt.add_argument("--plot", help="2D navigation: write a PNG of trajectories before and after each step")
    adapt.set_defaults(func=cmd_adapt)

    plot = sub.add_parser("plot", help="adaptation curves from `evaluate --json` files")
    plot.add_argument("results", nargs="+", help="evaluation JSON files")
    plot.add_argument("--output", "-o", default="adaptation.png", help="PNG to write (default adaptation.png)")
    plot.add_argument("--labels", nargs="+", help="one legend label per file (default: the algorithm)")
    plot.add_argument("--title", help="plot title (default: the env id)")
    plot.add_argument("--reference", action="append", metavar="LABEL=R0,R1,...",
                      help="published returns after 0, 1, ... steps to draw beside the results (dashed; one number: "
                           "a dotted line), e.g. \"MAML paper=-129.5,-78.6,-66.6,-60.8\"; repeatable")
    plot.set_defaults(func=cmd_plot)

    curves = sub.add_parser("curves", help="training returns of runs: block means, and a plot with --output")
    curves.add_argument("runs", nargs="+", help="run directories (their latest checkpoint) or checkpoint files")
    curves.add_argument("--block", type=int, default=50,
                        help="iterations per printed mean, and the plot's moving-average window (default 50)")
    curves.add_argument("--output", "-o", help="also write a PNG of the training curves here")
    curves.add_argument("--labels", nargs="+", help="one legend label per run (default: the run directory's name)")
    curves.add_argument("--title", help="plot title")
    curves.set_defaults(func=cmd_curves)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``meta-rl`` console script."""
    keep_freed_memory()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # key=value overrides may also follow the options
        if args.command != "train" or any("=" not in item or item.startswith("-") for item in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    try:
        return args.func(args)
    except (ConfigError, CheckpointError, NonFiniteError) as error:
        print(f"meta-rl: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
