"""Sampling on Ray: workers that each hold the vector env of a shard of the tasks, with the local sampler's numbers.

The driver puts the parameters in Ray's object store once per collect (each worker's tasks' own, when they are
task-batched); worker ``w`` steps tasks ``lo..hi`` (their
episodes keep their collect-wide indices, so their random streams are the local sampler's) and returns numpy
arrays, joined along the task dimension into one :class:`~meta_rl.episodes.Episodes`. Every wait has a timeout: a
worker that dies or hangs is restarted and its shard collected again, at most ``max_restarts`` times, after which
the run stops with a :class:`SamplerError` naming the worker and the cause (the last checkpoint stays intact).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import ray
import torch
from ray.exceptions import GetTimeoutError, RayActorError

from meta_rl.config import ConfigError
from meta_rl.episodes import Episodes
from meta_rl.policy import GaussianMLPPolicy, Params, is_task_batched
from meta_rl.sampler import Sampler
from meta_rl.streams import EpisodeStreams

__all__ = ["CollectStats", "RaySampler", "SamplerError"]

logger = logging.getLogger(__name__)

FIELDS = ("observations", "actions", "rewards", "mask", "log_probs")


class SamplerError(RuntimeError):
    """A Ray worker died or hung more often than ``sampler.max_restarts`` allows."""


@dataclass
class CollectStats:
    """Where one collect's time and bytes went (:attr:`RaySampler.last_collect`), for benchmarks and diagnosis."""

    wall_s: float = 0.0  # the whole collect, as the caller waits for it
    put_s: float = 0.0  # serialising the parameters into the object store
    worker_s: list[float] = field(default_factory=list)  # each worker's own stepping time for its shard
    join_s: float = 0.0  # fetching the shards' arrays and joining them into one batch
    bytes_sent: int = 0  # parameters: each worker's share of task-batched ones, or the shared ones once per worker
    bytes_received: int = 0  # the episodes' arrays from all workers


def _pack(batch: Episodes) -> dict[str, np.ndarray]:
    """The arrays a worker sends back; the mask travels as bytes (it is 0 or 1) and is restored exactly."""
    arrays = {name: getattr(batch, name).numpy() for name in FIELDS}
    arrays["mask"] = arrays["mask"].astype(np.bool_)
    if batch.successes is not None:
        arrays["successes"] = batch.successes.numpy().astype(np.bool_)
    return arrays


def _unpack(parts: list[dict[str, Any]]) -> Episodes:
    """One batch from the shards' arrays, joined along the task dimension; the flags back to 0.0/1.0 floats."""
    shards = [Episodes(**{name: torch.from_numpy(array).to(torch.float32) if array.dtype == np.bool_
                          else torch.from_numpy(array) for name, array in part.items()}) for part in parts]
    return Episodes.join_tasks(shards)


class ShardWorker:
    """One worker: a local :class:`~meta_rl.sampler.Sampler` for a shard of the tasks (run as a Ray actor,
    :data:`RemoteShardWorker`)."""

    def __init__(self, env_id: str, env_kwargs: dict, num_tasks: int, episodes_per_task: int, horizon: int,
                 policy: dict[str, Any], num_threads: int | None) -> None:
        torch.set_num_threads(1)
        import meta_rl_envs  # noqa: F401  (registers the families in the worker process)

        self.sampler = Sampler(env_id, env_kwargs, num_tasks, episodes_per_task, horizon,
                               GaussianMLPPolicy(**policy), num_threads=num_threads)

    def collect(self, params: dict[str, np.ndarray], tasks: np.ndarray, seed: int, key: tuple[int, ...],
                episodes: np.ndarray) -> dict[str, Any]:
        """Collect the shard: its tasks, their parameters (or the shared ones), their collect-wide episode indices."""
        start = time.perf_counter()
        shard = {name: torch.from_numpy(value) for name, value in params.items()}
        arrays = _pack(self.sampler.collect(shard, tasks, EpisodeStreams(seed, key), episodes))
        arrays["seconds"] = time.perf_counter() - start
        return arrays

    def ready(self) -> bool:
        """True once the worker has built its environments (for waiting on start-up)."""
        return True


RemoteShardWorker = ray.remote(ShardWorker)


def _one_line(error: BaseException) -> str:
    """Ray's multi-line error text on one line, for an error message that names the cause."""
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip())


class RaySampler:
    """The :class:`~meta_rl.sampler.SamplerBackend` interface on Ray workers, with the local sampler's episodes.

    :param address: the Ray cluster: ``"auto"`` (the one ``ray start`` runs here), ``"host:port"``, or empty to start
        a local one, shut down again by :meth:`close`. A cluster already joined by this process (``ray.init``) is
        used as it is.
    :param num_workers: workers; a collect gives each a contiguous shard of the tasks (at most one worker per task).
    :param cpus_per_worker: the CPUs Ray reserves for each worker, so that e.g. 16 places one worker per 16-core
        machine; its physics threads are ``num_threads`` (None or 0: every core of its machine).
    :param timeout_s: seconds a worker may take for its shard before it counts as hung.
    :param start_timeout_s: seconds a new worker may take to start (import torch, build its environments).
    :param max_restarts: restarts of a dead or hung worker within one collect before :class:`SamplerError`.
    The other parameters are :class:`~meta_rl.sampler.Sampler`'s.
    """

    def __init__(self, env_id: str, env_kwargs: dict, num_tasks: int, episodes_per_task: int, horizon: int,
                 policy: GaussianMLPPolicy, num_threads: int | None = None, num_workers: int = 2,
                 address: str = "", cpus_per_worker: float = 1.0, timeout_s: float = 300.0,
                 start_timeout_s: float = 120.0, max_restarts: int = 3) -> None:
        import gymnasium

        import meta_rl_envs  # noqa: F401  (registers the families)

        self.num_tasks, self.episodes_per_task, self.horizon = num_tasks, episodes_per_task, horizon
        self.policy, self.timeout_s, self.max_restarts = policy, float(timeout_s), int(max_restarts)
        self.start_timeout_s = float(start_timeout_s)
        self._family = gymnasium.make(env_id, **env_kwargs).unwrapped  # draws tasks on the driver
        self._owns_cluster = not ray.is_initialized()
        if self._owns_cluster:
            # Ray starts its workers at niceness 15; these workers are the run's sampling, not background work.
            local = {} if address else {"_system_config": {"worker_niceness": 0}}
            ray.init(address=address or "local", include_dashboard=False, log_to_driver=False, **local)
        self.shards = [(int(part[0]), int(part[-1]) + 1)
                       for part in np.array_split(np.arange(num_tasks), min(num_workers, num_tasks))]
        needed = len(self.shards) * cpus_per_worker
        total = ray.cluster_resources().get("CPU", 0.0)
        if needed > total:  # the workers would wait for CPUs forever: say so now, not after a start-up timeout
            self.close()
            raise ConfigError(
                f"sampler.num_workers={len(self.shards)} x sampler.cpus_per_worker={cpus_per_worker:g} needs "
                f"{needed:g} CPUs; the Ray cluster has {total:g}: lower either, or add machines "
                "(ray start --address=...)"
            )
        self.cpus_per_worker = cpus_per_worker
        spec = policy.spec()
        worker = RemoteShardWorker.options(num_cpus=cpus_per_worker)
        self._make_worker = lambda lo, hi: worker.remote(env_id, env_kwargs, hi - lo, episodes_per_task, horizon,
                                                         spec, num_threads)
        self.workers = [self._make_worker(lo, hi) for lo, hi in self.shards]
        self._starting: list[Any] = [worker.ready.remote() for worker in self.workers]  # None once it answered
        self.failures: list[str] = []  # what each restart recovered from, over the sampler's life
        self.last_collect = CollectStats()

    @property
    def restarts(self) -> int:
        """Workers restarted over the sampler's life."""
        return len(self.failures)

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> np.ndarray:
        """Tasks from the family's distribution, drawn on the driver."""
        return self._family.sample_tasks(num_tasks, rng)

    def collect(self, params: Params, tasks: np.ndarray, streams: EpisodeStreams,
                episodes: np.ndarray | None = None) -> Episodes:
        """As :meth:`Sampler.collect`: the same episodes, collected by the workers."""
        if len(tasks) != self.num_tasks:
            raise ValueError(f"got {len(tasks)} tasks; this sampler was built for {self.num_tasks}")
        if is_task_batched(params) and params["log_std"].shape[0] != self.num_tasks:
            raise ValueError(f"parameters carry {params['log_std'].shape[0]} tasks; expected {self.num_tasks}")
        start = time.perf_counter()
        n = self.episodes_per_task
        episodes = np.arange(self.num_tasks * n) if episodes is None else np.asarray(episodes)
        arrays = {name: value.detach().to("cpu", torch.float32).numpy() for name, value in params.items()}
        if is_task_batched(params):  # each worker gets its own tasks' parameters, so the bytes do not grow with it
            refs = [ray.put({name: value[lo:hi] for name, value in arrays.items()}) for lo, hi in self.shards]
            sent = sum(a.nbytes for a in arrays.values())
        else:  # shared parameters: one object, fetched by every machine
            refs = [ray.put(arrays)] * len(self.shards)
            sent = sum(a.nbytes for a in arrays.values()) * len(self.shards)
        stats = CollectStats(put_s=time.perf_counter() - start, bytes_sent=sent)
        tasks = np.asarray(tasks)

        def submit(index: int) -> Any:
            lo, hi = self.shards[index]
            return self.workers[index].collect.remote(refs[index], tasks[lo:hi], streams.seed, streams.key,
                                                      episodes[lo * n:hi * n])

        futures = [submit(index) for index in range(len(self.shards))]
        parts = []
        for index in range(len(self.shards)):
            for attempt in range(self.max_restarts + 1):
                try:
                    if self._starting[index] is not None:  # a new worker: its start-up has its own bound
                        phase, wait = "start-up", self.start_timeout_s
                        ray.get(self._starting[index], timeout=wait)
                        self._starting[index] = None
                    phase, wait = "collect", self.timeout_s
                    part = ray.get(futures[index], timeout=wait)
                    break
                except (GetTimeoutError, RayActorError) as error:
                    lo, hi = self.shards[index]
                    cause = (f"hung (no reply within {wait:g} s of {phase})" if isinstance(error, GetTimeoutError)
                             else f"died during {phase} ({_one_line(error)})")
                    if phase == "start-up" and isinstance(error, GetTimeoutError):
                        free = ray.available_resources().get("CPU", 0.0)
                        cause += f" (it needs {self.cpus_per_worker:g} CPUs; the cluster has {free:g} free)"
                    failure = f"Ray worker {index} (tasks {lo}-{hi - 1}) {cause}"
                    if attempt == self.max_restarts:
                        raise SamplerError(f"{failure}; restarted {attempt} time(s), "
                                           f"sampler.max_restarts={self.max_restarts}") from None
                    logger.warning("%s; restarting it and collecting its shard again", failure)
                    self.failures.append(failure)
                    self._restart(index)
                    futures[index] = submit(index)
            stats.worker_s.append(float(part.pop("seconds")))
            parts.append(part)
        join_start = time.perf_counter()
        batch = _unpack(parts)
        stats.join_s = time.perf_counter() - join_start
        stats.bytes_received = sum(a.nbytes for part in parts for a in part.values())
        stats.wall_s = time.perf_counter() - start
        self.last_collect = stats
        return batch

    def _restart(self, index: int) -> None:
        """Replace worker ``index`` by a fresh one (the old one is killed first, in case it only hung)."""
        ray.kill(self.workers[index], no_restart=True)
        lo, hi = self.shards[index]
        self.workers[index] = self._make_worker(lo, hi)
        self._starting[index] = self.workers[index].ready.remote()

    def close(self) -> None:
        """Stop the workers (and the local cluster, if this sampler started it)."""
        for worker in getattr(self, "workers", []):
            ray.kill(worker, no_restart=True)
        self.workers = []
        self._family.close()
        if self._owns_cluster and ray.is_initialized():
            ray.shutdown()
