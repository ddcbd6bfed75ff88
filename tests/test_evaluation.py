"""Evaluation on held-out tasks: reproducible, held-out, documented JSON, plots, TensorBoard, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import load_script
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from meta_rl.api import maml_step_schedule
from meta_rl.cli import default_evaluation_dir, main
from meta_rl.config import load_config
from meta_rl.evaluation import evaluate, load_task_file, write_json
from meta_rl.trainer import Trainer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = ["meta_batch_size=4", "episodes_per_task=4", "policy.hidden_sizes=[16]", "iterations=2", "torch_threads=1",
        "seed=5"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, list[np.ndarray]]:
    """A tiny trained run, and every task its training drew."""
    run_dir = tmp_path_factory.mktemp("run")
    trainer = Trainer(load_config("navigation-metasgd", TINY), run_dir)
    drawn: list[np.ndarray] = []
    sample = trainer.sampler.envs.sample_tasks

    def recording(num_tasks, rng):
        tasks = sample(num_tasks, rng)
        drawn.append(tasks)
        return tasks

    trainer.sampler.envs.sample_tasks = recording
    trainer.train(progress=False)
    trainer.close()
    return run_dir, drawn


def test_reproducible_for_a_seed_and_different_for_another(trained):
    run_dir, _ = trained
    a = evaluate(run_dir, num_tasks=3, grad_steps=2, episodes=3, seed=11)
    b = evaluate(run_dir, num_tasks=3, grad_steps=2, episodes=3, seed=11)
    c = evaluate(run_dir, num_tasks=3, grad_steps=2, episodes=3, seed=12)
    assert a["returns"] == b["returns"] and a["tasks"] == b["tasks"]
    assert a["tasks"] != c["tasks"]


def test_held_out_tasks_differ_from_training_tasks(trained):
    run_dir, drawn = trained
    training = np.concatenate(drawn)
    assert len(training) == 2 * 4
    held_out = np.asarray(evaluate(run_dir, num_tasks=40, grad_steps=0, episodes=1)["tasks"])
    distances = np.linalg.norm(held_out[:, None, :] - training[None, :, :], axis=-1)
    assert distances.min() > 1e-6


def test_json_has_the_documented_shape(trained, tmp_path):
    run_dir, _ = trained
    result = evaluate(run_dir, num_tasks=3, grad_steps=2, episodes=2, seed=1)
    write_json(result, tmp_path / "eval.json")
    data = json.loads((tmp_path / "eval.json").read_text())
    assert {"env", "algorithm", "tasks", "returns", "checkpoint", "seed"} <= set(data)
    assert data["env"] == "meta_rl/Navigation2D-v0" and data["algorithm"] == "metasgd" and data["seed"] == 1
    assert np.asarray(data["tasks"]).shape == (3, 2)
    assert len(data["returns"]["mean"]) == len(data["returns"]["stderr"]) == 3
    per_task = np.asarray(data["returns"]["per_task"])
    assert per_task.shape == (3, 3)
    np.testing.assert_allclose(per_task.mean(axis=0), data["returns"]["mean"])
    np.testing.assert_allclose(per_task.std(axis=0, ddof=1) / np.sqrt(3), data["returns"]["stderr"])
    assert Path(data["checkpoint"]).name == "checkpoint.pt"


def test_cli_writes_json_plots_and_tensorboard(trained, tmp_path, capsys):
    run_dir, _ = trained
    evaluation, random_eval = tmp_path / "maml.json", tmp_path / "random.json"
    trajectories, curve = tmp_path / "traj.png", tmp_path / "curve.png"
    board = tmp_path / "tb"
    assert main(["evaluate", str(run_dir), "--tasks", "3", "--grad-steps", "3", "--episodes", "2", "--json",
                 str(evaluation), "--trajectories", str(trajectories), "--tensorboard", str(board),
                 "--no-progress"]) == 0
    assert main(["evaluate", "navigation-maml", "--random", "--tasks", "3", "--grad-steps", "3", "--episodes", "2",
                 "--json", str(random_eval), "--no-progress"]) == 0
    assert json.loads(random_eval.read_text())["label"] == "random"
    assert main(["plot", str(evaluation), str(random_eval), "-o", str(curve)]) == 0
    for picture in (trajectories, curve):
        assert picture.read_bytes()[:8] == PNG_MAGIC and picture.stat().st_size > 10_000
    accumulator = EventAccumulator(str(board))
    accumulator.Reload()
    steps = [event.step for event in accumulator.Scalars("evaluation/return")]
    assert steps == [0, 1, 2, 3]
    table = capsys.readouterr().out
    assert "grad steps" in table and "mean return" in table


def test_bad_inputs_get_clear_errors(trained, tmp_path, capsys):
    run_dir, _ = trained
    assert main(["evaluate", str(tmp_path / "nowhere")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    assert main(["evaluate", str(run_dir), "--env", "meta_rl/Navigation2DOracle-v0"]) == 2
    assert "trained on 'meta_rl/Navigation2D-v0', not 'meta_rl/Navigation2DOracle-v0'" in capsys.readouterr().err
    assert main(["evaluate", "cheetah-vel-maml", "--random", "--trajectories", str(tmp_path / "t.png")]) == 2
    assert ("--trajectories: trajectory pictures are drawn for families moving in the plane (2D navigation); "
            "'meta_rl/HalfCheetahVel-v0' has none") in capsys.readouterr().err
    assert not (tmp_path / "t.png").exists()
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["plot", str(tmp_path / "bad.json")]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    # a directory, a missing file and JSON of another shape: named, no traceback
    (tmp_path / "other.json").write_text('{"returns": [1, 2]}')
    for path, message in [(tmp_path, f"cannot read the evaluation file {str(tmp_path)!r}"),
                          (tmp_path / "gone.json", "cannot read the evaluation file"),
                          (tmp_path / "other.json", "is not a `meta-rl evaluate --json` file")]:
        assert main(["plot", str(path), "-o", str(tmp_path / "p.png")]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "p.png").exists()
    with pytest.raises(ValueError, match="num_tasks must be >= 1"):
        evaluate(run_dir, num_tasks=0)


def test_training_without_adaptation_trains_the_baselines(tmp_path):
    """inner.num_steps=0 (pretrained / oracle presets) runs plain multi-task TRPO and logs only step 0."""
    for preset in ("navigation-pretrained", "navigation-oracle"):
        trainer = Trainer(load_config(preset, TINY), tmp_path / preset)
        history = trainer.train(progress=False)
        trainer.close()
        assert list(history[-1]) == ["returns/step_0"]
        result = evaluate(tmp_path / preset, num_tasks=2, grad_steps=1, episodes=2)
        assert result["label"] == preset.removeprefix("navigation-")


@pytest.mark.parametrize(("steps", "expected"), [(0, []), (1, [0.1]), (3, [0.1, 0.05, 0.05])])
def test_maml_step_schedule(steps, expected):
    assert maml_step_schedule(0.1, steps) == pytest.approx(expected)


def test_zero_grad_steps_evaluates_the_unadapted_policy(trained, tmp_path):
    """The oracle is evaluated with --grad-steps 0; MAML checkpoints must accept it too."""
    trainer = Trainer(load_config("navigation-maml", TINY), tmp_path / "maml")
    trainer.train(progress=False)
    trainer.close()
    result = evaluate(tmp_path / "maml", num_tasks=2, grad_steps=0, episodes=2)
    assert len(result["returns"]["mean"]) == 1


def test_cli_step_schedule_is_used_for_maml(tmp_path, capsys):
    trainer = Trainer(load_config("navigation-maml", TINY), tmp_path / "maml")
    trainer.train(progress=False)
    trainer.close()
    common = ["evaluate", str(tmp_path / "maml"), "--tasks", "2", "--grad-steps", "2", "--episodes", "2",
              "--no-progress", "--tensorboard", str(tmp_path / "tb")]
    assert main([*common, "--json", str(tmp_path / "default.json")]) == 0
    assert main([*common, "--step-schedule", "0.1,0.05", "--json", str(tmp_path / "same.json")]) == 0
    assert main([*common, "--step-schedule", "0.3,0.3", "--json", str(tmp_path / "other.json")]) == 0
    default, same, other = (json.loads((tmp_path / f"{n}.json").read_text())["returns"]["mean"]
                            for n in ("default", "same", "other"))
    assert default == same and default[0] == other[0] and default[1:] != other[1:]
    assert main([*common, "--step-schedule", "0.1"]) == 2
    assert "1 entries; expected steps = 2" in capsys.readouterr().err


def test_default_tensorboard_dirs_keep_snapshots_and_step_schedules_apart(trained):
    run_dir, _ = trained
    latest, snapshot = run_dir / "checkpoint.pt", run_dir / "checkpoint-00250.pt"
    assert default_evaluation_dir(latest, 7, None) == run_dir / "evaluation-seed7"
    assert default_evaluation_dir(snapshot, 7, None) == run_dir / "evaluation-iter00250-seed7"
    assert default_evaluation_dir(latest, 7, [0.02, 0.01, 0.01]) == run_dir / "evaluation-seed7-steps0.02_0.01_0.01"
    names = {default_evaluation_dir(c, 7, s) for c in (latest, snapshot) for s in (None, [0.1], [0.2])}
    assert len(names) == 6
    assert default_evaluation_dir(latest, 7, None, episodes=20) == run_dir / "evaluation-seed7"  # the default count
    assert default_evaluation_dir(latest, 7, None, episodes=40) == run_dir / "evaluation-seed7-eps40"


def test_cli_evaluates_a_snapshot_into_its_own_tensorboard_dir(tmp_path):
    run_dir = tmp_path / "snap"
    trainer = Trainer(load_config("navigation-maml", [*TINY, "snapshot_every=1"]), run_dir)
    trainer.train(progress=False)
    trainer.close()
    common = ["--tasks", "2", "--grad-steps", "1", "--episodes", "2", "--no-progress", "--seed", "3"]
    assert main(["evaluate", str(run_dir / "checkpoint-00001.pt"), *common, "--json", str(tmp_path / "1.json")]) == 0
    assert main(["evaluate", str(run_dir), *common, "--json", str(tmp_path / "2.json")]) == 0
    assert (run_dir / "evaluation-iter00001-seed3-eps2").is_dir() and (run_dir / "evaluation-seed3-eps2").is_dir()
    first, last = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("1", "2"))
    assert Path(first["checkpoint"]).name == "checkpoint-00001.pt" and Path(last["checkpoint"]).name == "checkpoint.pt"
    assert first["returns"]["mean"] != last["returns"]["mean"]  # iteration 1 and iteration 2 differ


def test_cli_env_kwarg_changes_the_env_for_the_evaluation_only(trained, tmp_path, capsys):
    run_dir, _ = trained
    common = ["evaluate", str(run_dir), "--tasks", "2", "--grad-steps", "1", "--episodes", "2", "--no-progress",
              "--seed", "4"]
    assert main([*common, "--json", str(tmp_path / "plain.json")]) == 0
    assert main([*common, "--env-kwarg", "normalized_actions=true", "--json", str(tmp_path / "changed.json")]) == 0
    assert "env kwargs changed from the training config's: normalized_actions=True" in capsys.readouterr().out
    plain, changed = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("plain", "changed"))
    assert plain["env_kwargs"] == plain["env_kwargs_changed"] == {}
    assert changed["env_kwargs"] == changed["env_kwargs_changed"] == {"normalized_actions": True}
    assert changed["tasks"] == plain["tasks"]
    assert changed["returns"]["mean"][0] != plain["returns"]["mean"][0]  # actions 10x smaller: other returns
    assert (run_dir / "evaluation-seed4-eps2").is_dir()
    assert (run_dir / "evaluation-seed4-env-normalized_actions-True-eps2").is_dir()
    assert main([*common, "--env-kwarg", "normalised_actions=true"]) == 2
    assert "unknown keyword(s) 'normalised_actions'" in capsys.readouterr().err
    assert main([*common, "--env-kwarg", "normalized_actions"]) == 2
    assert "must look like NAME=VALUE" in capsys.readouterr().err


def test_cli_evaluates_on_the_tasks_of_a_task_file(trained, tmp_path, capsys):
    run_dir, _ = trained
    goals = [[0.3, -0.2], [-0.4, 0.1], [0.0, 0.5]]
    as_list, as_object = tmp_path / "list.json", tmp_path / "goals.json"
    as_list.write_text(json.dumps(goals))
    as_object.write_text(json.dumps({"source": "three goals", "tasks": goals}))
    common = ["evaluate", str(run_dir), "--grad-steps", "1", "--episodes", "2", "--no-progress", "--seed", "6"]
    assert main([*common, "--task-file", str(as_list), "--json", str(tmp_path / "a.json")]) == 0
    assert f"3 held-out tasks from {as_list}, seed 6" in capsys.readouterr().out
    assert main([*common, "--task-file", str(as_object), "--json", str(tmp_path / "b.json")]) == 0
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("a", "b"))
    assert a["tasks"] == b["tasks"] == goals and b["task_file"] == str(as_object)
    assert a["returns"] == b["returns"]  # the same tasks and seed: the same episodes
    assert (run_dir / "evaluation-seed6-tasks-goals-eps2").is_dir()
    assert (run_dir / "evaluation-seed6-tasks-list-eps2").is_dir()
    drawn = evaluate(run_dir, num_tasks=3, grad_steps=1, episodes=2, seed=6)
    assert drawn["task_file"] is None and drawn["tasks"] != goals


def test_task_files_with_bad_contents_get_clear_errors(trained, tmp_path, capsys):
    run_dir, _ = trained
    common = ["evaluate", str(run_dir), "--grad-steps", "0", "--episodes", "1", "--no-progress"]
    cases = {
        "missing.json": (None, "cannot read the task file"),
        "broken.json": ("[0.1, ", "is not valid JSON"),
        "empty.json": ("[]", "must hold a non-empty list of tasks"),
        "keyless.json": ('{"goals": [[0.1, 0.2]]}', "must hold a non-empty list of tasks"),
        "outside.json": ("[[0.1, 0.2], [0.9, 0.0]]", "task 1 ([0.9, 0.0])"),
        "short.json": ("[[0.1, 0.2], [0.3]]", "task 1 ([0.3])"),
    }
    for name, (contents, message) in cases.items():
        if contents is not None:
            (tmp_path / name).write_text(contents)
        assert main([*common, "--task-file", str(tmp_path / name)]) == 2, name
        assert message in capsys.readouterr().err, name
    (tmp_path / "ok.json").write_text("[[0.1, 0.2]]")
    assert main([*common, "--task-file", str(tmp_path / "ok.json"), "--tasks", "1"]) == 2
    assert "not both" in capsys.readouterr().err
    with pytest.raises(ValueError, match="num_tasks is 2 but 1 tasks were given"):
        evaluate(run_dir, num_tasks=2, tasks=[[0.1, 0.2]], grad_steps=0, episodes=1)


def test_the_paper_test_task_files_are_the_authors_draws():
    """The shipped files are what research/paper_test_tasks.py writes, and that is numpy's seed-1 legacy draw."""
    root = Path(__file__).resolve().parent.parent
    module = load_script("research/paper_test_tasks.py")
    generated = module.paper_test_tasks()
    for family, contents in generated.items():
        assert json.loads((root / "meta_rl" / "task_sets" / f"{family}.json").read_text()) == contents
        assert load_task_file(f"paper:{family}") == contents["tasks"]
    speeds = np.asarray(generated["cheetah-vel"]["tasks"])
    assert speeds.shape == (40,) and speeds[0] == pytest.approx(0.834044009405148)  # RandomState(1).uniform(0, 2)
    assert speeds.min() >= 0.0 and speeds.max() <= 2.0
    directions = np.asarray(generated["cheetah-dir"]["tasks"])
    np.testing.assert_array_equal(directions, np.where(speeds < 1.0, -1.0, 1.0))
    assert (directions > 0).sum() == 18
    goals = np.asarray(generated["navigation"]["tasks"])
    assert goals.shape == (40, 2) and np.abs(goals).max() <= 0.5
