"""End-to-end training: learning on a small 2D-navigation problem, and seed determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import needs_cuda

from meta_rl.config import load_config
from meta_rl.trainer import Trainer

SMALL = ["meta_batch_size=10", "episodes_per_task=10", "torch_threads=2", "checkpoint_every=1000"]


@pytest.mark.parametrize("preset", ["navigation-maml", "navigation-metasgd"])
def test_short_training_improves_post_adaptation_return(tmp_path, preset):
    config = load_config(preset, [*SMALL, "iterations=12", "seed=1"])
    trainer = Trainer(config, tmp_path)
    try:
        history = trainer.train(progress=False)
    finally:
        trainer.close()
    post = np.array([h["returns/step_1"] for h in history])
    pre = np.array([h["returns/step_0"] for h in history])
    # Random init: about -65 after one step. A working meta-learner gains >15 within 12 iterations.
    assert post[-3:].mean() > post[:2].mean() + 15.0, post
    # Adaptation itself helps: one inner step beats the unadapted policy on the same tasks.
    assert (post[-3:] - pre[-3:]).mean() > 5.0, (pre, post)


def tiny(seed: int) -> list[str]:
    return ["meta_batch_size=3", "episodes_per_task=4", "horizon=20", "policy.hidden_sizes=[16]",
            "iterations=2", f"seed={seed}", "torch_threads=1"]


@pytest.mark.parametrize("preset", ["navigation-metasgd", "navigation-maml-adam"])
def test_same_seed_gives_the_same_numbers(tmp_path, preset):
    runs = []
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        trainer = Trainer(load_config(preset, tiny(seed)), tmp_path / name)
        history = trainer.train(progress=False)
        runs.append((history, [t.detach().clone() for t in trainer.learner.meta_parameters()]))
        trainer.close()
    (hist_a, params_a), (hist_b, params_b), (hist_c, params_c) = runs
    assert hist_a == hist_b
    assert all(torch.equal(a, b) for a, b in zip(params_a, params_b, strict=True))
    assert hist_a != hist_c
    assert not all(torch.equal(a, c) for a, c in zip(params_a, params_c, strict=True))


@pytest.mark.parametrize("inner_steps", [0, 1, 2])
def test_sample_meta_batch_has_one_support_per_inner_step_and_leaves_parameters_alone(tmp_path, inner_steps):
    config = load_config("navigation-maml", [*tiny(3), f"inner.num_steps={inner_steps}", "outer.fvp=gauss_newton"])
    trainer = Trainer(config, tmp_path)
    try:
        before = {k: v.detach().clone() for k, v in trainer.learner.params.items()}
        batch = trainer.sample_meta_batch()
    finally:
        trainer.close()
    assert len(batch.supports) == inner_steps
    assert sorted(batch.returns) == [f"returns/step_{k}" for k in range(inner_steps + 1)]
    assert batch.query.num_tasks == 3 and all(s.num_tasks == 3 for s in batch.supports)
    # Navigation episodes end at the goal, so the count is of steps taken, at most (K + 1) x 3 x 4 x 20.
    assert batch.env_steps == sum(e.num_steps for e in [*batch.supports, batch.query]) <= (inner_steps + 1) * 240
    assert batch.returns[f"returns/step_{inner_steps}"] == batch.query.mean_return()
    assert all(torch.equal(before[k], v) for k, v in trainer.learner.params.items())


def test_train_from_python_takes_a_config_with_overrides_refuses_a_used_directory_and_resumes(tmp_path):
    from helpers import TINY

    import meta_rl
    from meta_rl.config import ConfigError

    config = load_config("navigation-maml", [*TINY, "iterations=2"])
    meta = meta_rl.train(config, tmp_path / "run", overrides=["seed=3"], progress=False)
    assert meta.iteration == 2 and meta.config.seed == 3
    with pytest.raises(ConfigError, match="already holds a checkpoint"):
        meta_rl.train(config, tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match="resume=True continues a run directory: pass run_dir"):
        meta_rl.train(config, resume=True, progress=False)
    with pytest.raises(ConfigError, match=r"overrides must be a list of key=value strings, e.g. \['iterations=3'\]"):
        meta_rl.train(config, tmp_path / "other", overrides="iterations=3", progress=False)
    resumed = meta_rl.train(tmp_path / "run", overrides=["iterations=3"], resume=True, progress=False)
    straight = meta_rl.train(config, tmp_path / "straight", overrides=["seed=3", "iterations=3"], progress=False)
    for name, value in straight.params.items():
        assert torch.equal(resumed.params[name], value), name


@needs_cuda
@pytest.mark.parametrize("preset", ["navigation-maml", "navigation-metasgd", "cheetah-vel-maml"])
def test_training_on_cuda_matches_cpu_and_its_checkpoint_resumes_on_the_cpu(tmp_path, preset):
    """Sampling stays on the CPU, so the first batch is the same on both; the adapted policies' returns and the
    updated parameters agree to float tolerance; a checkpoint written with updates on the GPU resumes on the CPU.
    Short episodes and 3 CG steps: longer ones (cheetah) and 10 steps amplify rounding past the tolerance."""
    runs = {}
    overrides = [*tiny(5), "horizon=10", "outer.cg_iters=3", "iterations=1"]
    for device in ("cpu", "cuda"):
        trainer = Trainer(load_config(preset, [*overrides, f"device={device}"]), tmp_path / device)
        try:
            history = trainer.train(progress=False)
            runs[device] = history[0], {k: v.detach().cpu() for k, v in trainer.learner.params.items()}
        finally:
            trainer.close()
    (cpu_returns, cpu_params), (cuda_returns, cuda_params) = runs["cpu"], runs["cuda"]
    # the same parameters sample the same episodes; their mean is taken on the update's device
    assert cuda_returns["returns/step_0"] == pytest.approx(cpu_returns["returns/step_0"], rel=1e-6)
    assert cuda_returns["returns/step_1"] == pytest.approx(cpu_returns["returns/step_1"], rel=1e-3)
    for name, value in cpu_params.items():
        torch.testing.assert_close(cuda_params[name], value, rtol=1e-3, atol=1e-4, msg=name)
    resumed = Trainer.resume(tmp_path / "cuda", {"device": "cpu", "iterations": 2})
    try:
        resumed.train(progress=False)
        assert resumed.iteration == 2 and all(v.device.type == "cpu" for v in resumed.learner.params.values())
    finally:
        resumed.close()
