"""Tests for scripts/inner_step_noise.py: the shuffle keeps each task's advantages, and a step with signal moves
the policy farther than the same step on shuffled advantages."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from helpers import load_script

from meta_rl.api import MetaPolicy
from meta_rl.config import load_config

SMALL = ["meta_batch_size=4", "episodes_per_task=6", "horizon=40"]


@pytest.fixture(scope="module")
def script():
    return load_script("scripts/inner_step_noise.py")


def test_shuffle_keeps_each_tasks_advantages_and_the_mask(script) -> None:
    meta = MetaPolicy.untrained(load_config("navigation-maml", SMALL))
    tasks = meta.sample_tasks(4, np.random.default_rng(0))
    _, log = meta.adapt_tasks(tasks, steps=0)
    support = log.episodes[0]
    support.mask[30:, 0, :3] = 0.0  # some episodes end early: their tail must stay out of the shuffle
    support.advantages[30:, 0, :3] = 0.0
    shuffled = script.shuffled_advantages(support, torch.Generator().manual_seed(0))
    assert (shuffled.advantages[support.mask == 0] == 0).all()
    for task in range(4):
        valid = support.mask[:, task].bool()
        before, after = support.advantages[:, task][valid], shuffled.advantages[:, task][valid]
        assert torch.equal(before.sort().values, after.sort().values)  # the same values, within the task
        assert not torch.equal(before, after)  # in another order
    assert shuffled.observations is support.observations and shuffled.advantages is not support.advantages


def test_a_step_with_signal_moves_the_policy_farther_than_noise(script, capsys) -> None:
    """On 2D navigation an untrained policy's gradient is mostly signal: the shuffled step moves it far less."""
    assert script.main(["navigation-maml", *SMALL]) == 0
    out = capsys.readouterr().out
    kl = float(re.search(r"KL of the inner step: +([\d.e-]+) nats", out).group(1))
    noise = float(re.search(r"shuffled advantages: +([\d.e-]+) nats", out).group(1))
    assert kl > 0 and noise > 0 and noise < 0.5 * kl
    assert "4 tasks x 6 episodes, horizon 40" in out and "mean length" in out


def test_bad_input_is_named(script, capsys, tmp_path) -> None:
    with pytest.raises(SystemExit):
        script.main(["navigation-maml", "--step-size", "0"])
    assert "--step-size must be > 0, got 0.0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main(["navigation-metasgd", *SMALL])
    assert "inner.algorithm is 'metasgd'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        script.main([str(tmp_path), "meta_batch_size=2"])
    assert "overrides apply to a preset, not to a run directory" in capsys.readouterr().err
    assert script.main(["navigation-maml", "meta_batch_sise=2"]) == 2
    assert "meta_batch_sise" in capsys.readouterr().err
