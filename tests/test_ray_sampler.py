"""Tests for meta_rl/ray_sampler.py on a local Ray cluster the tests start (and stop): the same episodes and trained
parameters as the local sampler with 1 and 2 workers, a worker that dies mid-collect recovered or reported within
the time bound, a hung one too, and a training resumed on the other backend continuing exactly."""

from __future__ import annotations

import json
import os
import sys
import time

import numpy as np
import pytest
import torch
from helpers import TINY

ray = pytest.importorskip("ray")

from meta_rl.config import ConfigError, load_config  # noqa: E402
from meta_rl.ray_sampler import FIELDS, RaySampler, SamplerError, ShardWorker  # noqa: E402
from meta_rl.rollout import make_policy  # noqa: E402
from meta_rl.sampler import Sampler  # noqa: E402
from meta_rl.streams import EpisodeStreams  # noqa: E402
from meta_rl.trainer import Trainer  # noqa: E402

CLUSTER_CPUS = 2
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module


@pytest.fixture(scope="module", autouse=True)
def cluster():
    """A local cluster for this module: 2 CPUs, an 80 MB object store, workers at normal priority, no dashboard."""
    ray.init(num_cpus=CLUSTER_CPUS, object_store_memory=80 * 1024**2, include_dashboard=False, log_to_driver=False,
             _system_config={"worker_niceness": 0})
    yield
    ray.shutdown()


def batch_of(preset: str, tasks: int = 3, horizon: int = 15):
    """A config, a small policy and task-batched parameters (each shard must get its own slice of them)."""
    config = load_config(preset, [f"horizon={horizon}", "policy.hidden_sizes=[8]"])
    policy = make_policy(config)
    generator = torch.Generator().manual_seed(0)
    params = policy.init_params(generator)
    batched = {k: v.expand(tasks, *v.shape) + 0.05 * torch.randn(tasks, *v.shape, generator=generator)
               for k, v in params.items()}
    return config, policy, batched


def samplers(config, policy, **ray_options) -> tuple[Sampler, RaySampler]:
    """The local sampler and a Ray one for 3 tasks x 2 episodes."""
    args = (config.env.id, config.env.kwargs, 3, 2, config.horizon, policy)
    return Sampler(*args, num_threads=1), RaySampler(*args, num_threads=1, **ray_options)


def assert_same_episodes(theirs, mine) -> None:
    for name in FIELDS:
        torch.testing.assert_close(getattr(theirs, name), getattr(mine, name), rtol=0, atol=0, msg=name)


@pytest.mark.parametrize("preset", ["navigation-maml", "cheetah-vel-maml"])
@pytest.mark.parametrize("workers", [1, 2])
def test_ray_backend_gives_the_local_samplers_episodes(preset: str, workers: int) -> None:
    config, policy, params = batch_of(preset)
    local, remote = samplers(config, policy, num_workers=workers)
    try:
        tasks = local.sample_tasks(3, np.random.default_rng(4))
        np.testing.assert_array_equal(remote.sample_tasks(3, np.random.default_rng(4)), tasks)
        streams = EpisodeStreams(3, (0, 5, 1))
        assert_same_episodes(remote.collect(params, tasks, streams), local.collect(params, tasks, streams))
        stats = remote.last_collect
        assert len(stats.worker_s) == workers and stats.wall_s >= max(stats.worker_s) > 0
        assert stats.bytes_sent == sum(v.numel() * 4 for v in params.values())  # split between the workers
        # float32 observations, actions, rewards, log-probs; the mask as one byte per step
        obs_dim, action_dim = policy.obs_dim, policy.action_dim
        assert stats.bytes_received == config.horizon * 3 * 2 * (4 * (obs_dim + action_dim + 2) + 1)
        shared = {k: v[0] for k, v in params.items()}  # one set for every task: each worker fetches all of it
        assert_same_episodes(remote.collect(shared, tasks, streams), local.collect(shared, tasks, streams))
        assert remote.last_collect.bytes_sent == workers * sum(v.numel() * 4 for v in shared.values())
    finally:
        local.close()
        remote.close()


@pytest.mark.parametrize(("preset", "workers"), [("navigation-maml", 1), ("navigation-maml", 2),
                                                 ("cheetah-vel-maml", 2)])
def test_training_on_ray_gives_the_local_runs_parameters(tmp_path, preset: str, workers: int) -> None:
    overrides = [*TINY, "iterations=3", "meta_batch_size=3"]
    trainers = [Trainer(load_config(preset, [*overrides, *backend]), tmp_path / str(index))
                for index, backend in enumerate([[], ["sampler.backend=ray", f"sampler.num_workers={workers}"]])]
    for trainer in trainers:
        trainer.train(progress=False)
        trainer.close()
    local, remote = trainers
    assert type(remote.sampler).__name__ == "RaySampler"
    assert remote.history == local.history
    for name, value in local.learner.params.items():
        assert torch.equal(remote.learner.params[name], value), name


class ExitMidCollect:
    """Wraps a worker's vector env so the worker's process exits at the given step of its first collect."""

    def __init__(self, envs, at_step: int) -> None:
        self.envs, self.at_step, self.steps = envs, at_step, 0

    def __getattr__(self, name):
        return getattr(self.envs, name)

    def step(self, actions):
        self.steps += 1
        if self.steps == self.at_step:
            os._exit(1)
        return self.envs.step(actions)


@ray.remote
class DyingShardWorker(ShardWorker):
    """A shard worker whose process dies in the middle of its first collect."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.sampler.envs = ExitMidCollect(self.sampler.envs, at_step=5)


def dying_worker(remote: RaySampler, index: int, *args) -> None:
    """Replace worker ``index`` by one that dies mid-collect (its restarts are ordinary workers)."""
    ray.kill(remote.workers[index], no_restart=True)
    lo, hi = remote.shards[index]
    remote.workers[index] = DyingShardWorker.remote(*args[:2], hi - lo, *args[2:])
    remote._starting[index] = remote.workers[index].ready.remote()


@ray.remote
class Sleeper:
    """A worker that never answers: neither its start-up check nor its collect."""

    def ready(self) -> bool:
        time.sleep(600)
        return True

    def collect(self, *args) -> None:
        time.sleep(600)


def hung_worker(remote: RaySampler, index: int, started: bool) -> None:
    """Replace worker ``index`` by a :class:`Sleeper` that hangs in its collect, or (``started=False``) at start-up."""
    ray.kill(remote.workers[index], no_restart=True)
    remote.workers[index] = Sleeper.remote()
    remote._starting[index] = None if started else remote.workers[index].ready.remote()


def worker_args(config, policy, horizon: int) -> tuple:
    return config.env.id, config.env.kwargs, 2, horizon, policy.spec(), 1


@pytest.mark.parametrize(("fault", "failure"), [
    ("dies", "Ray worker 1 (tasks 2-2) died during collect ("),
    ("hangs", "Ray worker 1 (tasks 2-2) hung (no reply within 3 s of collect)"),
])
def test_a_worker_that_dies_mid_collect_or_hangs_is_restarted_and_its_shard_collected_again(
        fault: str, failure: str) -> None:
    config, policy, params = batch_of("navigation-maml")
    local, remote = samplers(config, policy, num_workers=2, timeout_s=3.0 if fault == "hangs" else 60.0,
                             max_restarts=1)
    try:
        tasks = local.sample_tasks(3, np.random.default_rng(0))
        if fault == "dies":
            dying_worker(remote, 1, *worker_args(config, policy, config.horizon))
        else:
            hung_worker(remote, 1, started=True)
        streams = EpisodeStreams(0, (1,))
        batch = remote.collect(params, tasks, streams)
        assert remote.restarts >= 1
        assert any(text.startswith(failure) for text in remote.failures), remote.failures
        assert_same_episodes(batch, local.collect(params, tasks, streams))
    finally:
        remote.close()
        local.close()


def test_without_restarts_a_dead_or_hung_worker_is_an_error_within_the_time_bound() -> None:
    config, policy, params = batch_of("navigation-maml")
    remote = RaySampler(config.env.id, config.env.kwargs, 3, 2, config.horizon, policy, num_workers=2,
                        timeout_s=5.0, max_restarts=0)
    try:
        tasks = remote.sample_tasks(3, np.random.default_rng(0))
        dying_worker(remote, 0, *worker_args(config, policy, config.horizon))
        with pytest.raises(SamplerError, match=r"^Ray worker 0 \(tasks 0-1\) died during collect \(.*\); restarted 0 "
                                               r"time\(s\), sampler.max_restarts=0$"):
            remote.collect(params, tasks, EpisodeStreams(0, (1,)))

        hung_worker(remote, 0, started=True)
        start = time.perf_counter()
        with pytest.raises(SamplerError, match=r"^Ray worker 0 \(tasks 0-1\) hung \(no reply within 5 s of collect\)"):
            remote.collect(params, tasks, EpisodeStreams(0, (1,)))
        assert time.perf_counter() - start < 5.0 + 15.0
        remote.start_timeout_s = 2.0
        hung_worker(remote, 0, started=False)
        start = time.perf_counter()
        with pytest.raises(SamplerError, match=r"^Ray worker 0 \(tasks 0-1\) hung \(no reply within 2 s of start-up\) "
                                               r"\(it needs 1 CPUs; the cluster has [0-9.]+ free\)"):
            remote.collect(params, tasks, EpisodeStreams(0, (1,)))
        assert time.perf_counter() - start < 2.0 + 15.0
    finally:
        remote.close()


def test_more_workers_than_the_cluster_has_cpus_is_a_config_error() -> None:
    config, policy, _ = batch_of("navigation-maml")
    with pytest.raises(ConfigError, match=r"sampler.num_workers=3 x sampler.cpus_per_worker=1 needs 3 CPUs; the "
                                          r"Ray cluster has 2"):
        RaySampler(config.env.id, config.env.kwargs, 3, 2, config.horizon, policy, num_workers=3)
    assert ray.is_initialized()  # the tests' cluster, not the sampler's, so it stays up


def test_a_run_resumed_on_the_other_backend_continues_exactly(tmp_path) -> None:
    overrides = [*TINY, "iterations=3"]
    straight = Trainer(load_config("navigation-maml", overrides), tmp_path / "straight")
    straight.train(progress=False)
    straight.close()
    first = Trainer(load_config("navigation-maml", [*overrides[:-1], "iterations=2"]), tmp_path / "switched")
    first.train(progress=False)
    first.close()
    resumed = Trainer.resume(tmp_path / "switched", {"iterations": 3, "sampler": {"backend": "ray"}})
    assert type(resumed.sampler).__name__ == "RaySampler"
    resumed.train(progress=False)
    resumed.close()
    assert resumed.history == straight.history
    for name, value in straight.learner.params.items():
        assert torch.equal(resumed.learner.params[name], value), name


def test_evaluate_and_adapt_on_ray_give_the_local_results(tmp_path, capsys) -> None:
    from meta_rl.cli import main

    run_dir = tmp_path / "run"
    assert main(["train", "navigation-maml", *TINY, "iterations=1", "--run-dir", str(run_dir), "--no-progress"]) == 0
    results = {}
    for name, options in (("local", []), ("ray", ["--sampler", "backend=ray", "--sampler", "num_workers=2"])):
        path = tmp_path / f"{name}.json"
        assert main(["evaluate", str(run_dir), "--tasks", "3", "--episodes", "2", "--grad-steps", "1",
                     "--json", str(path), "--tensorboard", "", "--no-progress", *options]) == 0
        results[name] = json.loads(path.read_text())
        assert main(["adapt", str(run_dir), "--task", "0.3,-0.2", "--episodes", "2", "--save",
                     str(tmp_path / f"{name}.pt"), *options]) == 0
    assert results["ray"]["returns"] == results["local"]["returns"]
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--sampler", "backend=dask"]) == 2
    assert "sampler.backend: 'dask' is not allowed; expected one of 'local', 'ray'" in capsys.readouterr().err


def test_a_run_that_starts_its_own_cluster_trains_like_the_local_backend(tmp_path) -> None:
    """`meta-rl train ... sampler.backend=ray` in a fresh process: the sampler starts a local cluster and stops it."""
    import subprocess

    from meta_rl.checkpoint import load_checkpoint

    overrides = [*TINY, "iterations=2"]
    command = [sys.executable, "-m", "meta_rl.cli", "train", "navigation-maml", *overrides, "sampler.backend=ray",
               "sampler.num_workers=2", "--run-dir", str(tmp_path / "ray"), "--no-progress"]
    subprocess.run(command, check=True, timeout=300, capture_output=True)
    local = Trainer(load_config("navigation-maml", overrides), tmp_path / "local")
    local.train(progress=False)
    local.close()
    state = load_checkpoint(tmp_path / "ray")
    assert state["config"]["sampler"]["backend"] == "ray" and state["history"] == local.history
    for name, value in local.learner.params.items():
        assert torch.equal(state["learner"]["params"][name], value), name
