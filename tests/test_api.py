"""The user's adaptation API: same step as the trainer, save/load, clear errors, and it actually adapts."""

from __future__ import annotations

import os
import re
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch

from meta_rl import AdaptedPolicy, MetaPolicy
from meta_rl.checkpoint import CheckpointError
from meta_rl.cli import main
from meta_rl.config import load_config
from meta_rl.trainer import Trainer

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module", params=["navigation-maml", "navigation-metasgd"])
def run_dir(request, tmp_path_factory) -> Path:
    """A meta-policy trained for a few iterations (small batches) — enough to adapt visibly."""
    directory = tmp_path_factory.mktemp(request.param)
    config = load_config(request.param, ["meta_batch_size=8", "episodes_per_task=10", "iterations=4", "seed=3",
                                         "torch_threads=2"])
    trainer = Trainer(config, directory)
    trainer.train(progress=False)
    trainer.close()
    return directory


def test_api_step_equals_the_trainers_inner_step(run_dir):
    meta = MetaPolicy.load(run_dir)
    adapted = meta.adapt(task=[0.2, -0.3], steps=1, episodes=6, seed=5)
    trainer = Trainer.resume(run_dir)
    support = adapted.log.episodes[0]
    expected = trainer.learner.adapt([support])  # the differentiable step used by the meta-update
    trainer.close()
    for name, value in adapted.params.items():
        torch.testing.assert_close(value, expected[name][0].detach(), rtol=1e-6, atol=1e-7)
    assert not torch.equal(adapted.params["mean.bias"], meta.params["mean.bias"])


def test_adapting_improves_the_return_on_average(run_dir):
    meta = MetaPolicy.load(run_dir)
    tasks = meta.sample_tasks(6, np.random.default_rng(123))
    gains = [np.diff(meta.adapt(task=task, steps=1, episodes=10, seed=i).log.returns)[0]
             for i, task in enumerate(tasks)]
    assert np.mean(gains) > 3.0, gains


def test_env_already_set_to_its_task(run_dir):
    meta = MetaPolicy.load(run_dir)
    env = gymnasium.make(meta.env_id)
    env.unwrapped.set_task([0.1, 0.4])
    from_env = meta.adapt(env=env, episodes=4, seed=1)
    from_task = meta.adapt(task=[0.1, 0.4], episodes=4, seed=1)
    np.testing.assert_array_equal(from_env.task, [0.1, 0.4])
    for name in from_env.params:
        assert torch.equal(from_env.params[name], from_task.params[name])


def test_predict_shapes_and_modes(run_dir):
    policy = MetaPolicy.load(run_dir).adapt(task=[0.3, 0.3], episodes=4)
    single = policy.predict([0.0, 0.1])
    batch = policy.predict(np.array([[0.0, 0.1], [0.2, -0.2]]))
    assert single.shape == (2,) and batch.shape == (2, 2)
    np.testing.assert_allclose(batch[0], single, rtol=1e-6)
    with torch.no_grad():
        mean, _ = policy.policy.forward(torch.tensor([0.0, 0.1]), policy.params)
    np.testing.assert_allclose(single, mean.numpy(), rtol=1e-6)
    a = policy.predict([0.0, 0.1], deterministic=False, rng=np.random.default_rng(0))
    b = policy.predict([0.0, 0.1], deterministic=False, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, single)
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        policy.predict([0.0, 0.1, 0.2])


def test_adapted_policy_save_load_round_trip(run_dir, tmp_path):
    policy = MetaPolicy.load(run_dir).adapt(task=[-0.25, 0.1], episodes=4)
    path = policy.save(tmp_path / "adapted.pt")
    loaded = AdaptedPolicy.load(path)
    for name in policy.params:
        assert torch.equal(policy.params[name], loaded.params[name])
    np.testing.assert_array_equal(loaded.task, policy.task)
    obs = np.random.default_rng(0).uniform(-0.5, 0.5, size=(5, 2))
    np.testing.assert_array_equal(loaded.predict(obs), policy.predict(obs))
    assert loaded.evaluate(episodes=3, seed=2) == policy.evaluate(episodes=3, seed=2)


def test_bad_tasks_and_files_get_clear_errors(run_dir, tmp_path):
    meta = MetaPolicy.load(run_dir)
    with pytest.raises(ValueError, match=r"0\.9.*outside.*-0\.5, 0\.5"):
        meta.adapt(task=[0.9, 0.0])
    with pytest.raises(ValueError, match="shape"):
        meta.adapt(task=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="exactly one of"):
        meta.adapt()
    with pytest.raises(CheckpointError, match="trained on 'meta_rl/Navigation2D-v0', not 'meta_rl/HalfCheetahVel-v0'"):
        MetaPolicy.load(run_dir, env_id="meta_rl/HalfCheetahVel-v0")
    with pytest.raises(CheckpointError, match="not a meta_rl checkpoint"):
        AdaptedPolicy.load(run_dir / "checkpoint.pt")  # a training checkpoint is not an adapted policy
    with pytest.raises(CheckpointError, match="no checkpoint"):
        MetaPolicy.load(tmp_path / "missing")


def test_cli_adapt(run_dir, tmp_path, capsys):
    out = tmp_path / "adapted.pt"
    picture = tmp_path / "trajectories.png"
    assert main(["adapt", str(run_dir), "--task", "0.3,-0.2", "--steps", "2", "--episodes", "4",
                 "--save", str(out), "--plot", str(picture)]) == 0
    text = capsys.readouterr().out
    assert len(re.findall(r"after \d steps?: mean return", text)) == 3
    assert AdaptedPolicy.load(out).task.tolist() == [0.3, -0.2]
    assert picture.stat().st_size > 10_000
    assert main(["adapt", str(run_dir), "--task", "0.9,0"]) == 2
    assert "outside the task space" in capsys.readouterr().err
    assert main(["adapt", str(run_dir), "--task", "north"]) == 2
    assert "not a comma-separated list of numbers" in capsys.readouterr().err


def test_readme_training_example_runs(tmp_path, monkeypatch):
    text = README.read_text()
    section = text[text.index("## Train from Python"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    meta = namespace["meta"]
    assert isinstance(meta, MetaPolicy) and meta.iteration == 4
    assert (tmp_path / "runs" / "quick" / "checkpoint.pt").is_file()
    assert MetaPolicy.load(tmp_path / "runs" / "quick").iteration == 4


def test_readme_task_family_example_runs():
    text = README.read_text()
    code = re.search(r"```python\n(.*?)```", text[text.index("## Task families"):], re.S).group(1)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["env"].unwrapped.task.tolist() == [1.5]
    assert namespace["envs"].tasks.shape == (8, 2)
    namespace["env"].close()
    namespace["envs"].close()


def test_readme_example_runs(run_dir, tmp_path, monkeypatch):
    text = README.read_text()
    section = text[text.index("## Adapt to a new task"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    (tmp_path / "runs").mkdir()
    os.symlink(run_dir, tmp_path / "runs" / "navigation-maml-seed0")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert isinstance(namespace["same"], AdaptedPolicy)
    assert (tmp_path / "adapted.pt").is_file()


def test_metasgd_trained_with_two_steps_adapts_with_each_steps_own_step_sizes(tmp_path):
    """The checkpoint holds one set of step sizes per trained inner step; adapting for three steps uses the first,
    the second, then the second again, and resuming keeps both sets."""
    config = load_config("navigation-metasgd", ["meta_batch_size=2", "episodes_per_task=2", "horizon=10",
                                                "policy.hidden_sizes=[8]", "iterations=2", "inner.num_steps=2",
                                                "outer.fvp=gauss_newton", "torch_threads=1", "device=cpu"])
    trainer = Trainer(config, tmp_path)
    trainer.train(progress=False)
    trainer.close()
    meta = MetaPolicy.load(tmp_path)
    assert {name for name in meta.step_sizes if name.startswith("step2/")} == {f"step2/{n}" for n in meta.params}
    assert not torch.equal(meta.step_sizes["log_std"], meta.step_sizes["step2/log_std"]), "the two sets moved apart"
    first, second, third = meta.step_schedule(3)
    assert torch.equal(first["log_std"], meta.step_sizes["log_std"])
    assert torch.equal(second["log_std"], meta.step_sizes["step2/log_std"])
    assert torch.equal(third["log_std"], meta.step_sizes["step2/log_std"])
    resumed = Trainer.resume(tmp_path, {"iterations": 3})
    torch.testing.assert_close(resumed.learner.step_sizes["step2/log_std"].float(), meta.step_sizes["step2/log_std"],
                               rtol=0, atol=0)
    resumed.close()
