"""Meta-World's meta-learning benchmarks as task families: ML1 (one manipulation task, 50 training and 50 test
goal/object positions) and ML10 (10 training tasks and 5 held-out ones, 50 positions each).

The tasks are the benchmark's own variations, made by the ``metaworld`` package (``metaworld.ML1(env_name,
seed=benchmark_seed)``, ``metaworld.ML10(seed=benchmark_seed)``), so results are comparable with others run on
the same benchmark: training draws from the training variations, held-out evaluation uses the test ones. A task is
a flat vector of plain numbers, the variation's random vector (``rand_vec``: the object's and the goal's
positions, 3 or 6 numbers); ML10's is preceded by the environment's index in :attr:`MetaWorldEnv.env_names`
(training environments first) and padded with zeros to 6. Only the benchmark's variations are tasks: Meta-World's
resets loop until the positions they draw are far enough apart, and would never return on some other vector.

Observations are Meta-World's (39 numbers, the goal hidden as the ML benchmarks define), the 4 actions move the
hand and close the gripper, and an episode is truncated after Meta-World's 500 steps; episodes are deterministic
given the actions (the start state holds no noise). Each step's info has ``success``, the benchmark's success flag:
a task counts as solved in an episode when it is set at any step.
"""

from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium
import numpy as np
from gymnasium import spaces

from meta_rl_envs.base import TaskEnvMixin, describe_env, validate_tasks
from meta_rl_envs.vector import check_choice

__all__ = ["EPISODE_STEPS", "MetaWorldEnv", "MetaWorldML1Env", "MetaWorldML10Env", "Variations", "ml1_env_names"]

EPISODE_STEPS = 500
"""Meta-World's episode length (``max_path_length``): its envs refuse a step after it."""

_TASK_WIDTH = 6  # the longest random vector of an ML10 environment


def ml1_env_names() -> list[str]:
    """Every Meta-World environment ML1 can be built on (``reach-v3``, ``push-v3``, ...)."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    return sorted(ALL_V3_ENVIRONMENTS)


@dataclass(frozen=True)
class Variations:
    """A benchmark's tasks as vectors: its environments' names (in task order), the training and the test
    variations (``[50 per environment, task_dim]``), their bounds, and the Meta-World task each vector stands for."""

    env_names: tuple[str, ...]
    train: np.ndarray
    test: np.ndarray
    task_space: spaces.Box
    lookup: dict[bytes, tuple[str, Any]]  # vector.tobytes() -> (environment name, metaworld.Task)


@functools.lru_cache(maxsize=8)
def benchmark_variations(benchmark: str, env_name: str | None, seed: int) -> Variations:
    """The variations of ``ML1`` (on ``env_name``) or ``ML10``, as the ``metaworld`` package makes them with ``seed``
    (it seeds NumPy's global generator for this and restores it); made once per process."""
    import metaworld

    made = metaworld.ML1(env_name, seed=seed) if benchmark == "ML1" else metaworld.ML10(seed=seed)
    names = tuple(dict.fromkeys([*made.train_classes, *made.test_classes]))
    indexed = len(names) > 1
    lookup: dict[bytes, tuple[str, Any]] = {}

    def encode(tasks: list) -> np.ndarray:
        rows = []
        for task in tasks:
            rand_vec = np.asarray(pickle.loads(task.data)["rand_vec"], dtype=np.float64)  # metaworld's own bytes
            if indexed:
                padded = np.zeros(_TASK_WIDTH)
                padded[: len(rand_vec)] = rand_vec
                rand_vec = np.concatenate([[float(names.index(task.env_name))], padded])
            lookup[rand_vec.tobytes()] = (task.env_name, task)
            rows.append(rand_vec)
        return np.stack(rows)

    train, test = encode(made.train_tasks), encode(made.test_tasks)
    both = np.concatenate([train, test])
    task_space = spaces.Box(both.min(axis=0), both.max(axis=0), dtype=np.float64)
    for array in (train, test):
        array.setflags(write=False)
    return Variations(names, train, test, task_space, lookup)


class MetaWorldEnv(gymnasium.Env, TaskEnvMixin):
    """A Meta-World benchmark as one task family: the task picks the environment and its variation.

    :param benchmark_seed: the seed ``metaworld`` makes the benchmark's variations with (the same seed, the same
        tasks on any machine).
    :param render_mode: only None (no rendering).
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (Gymnasium convention)
    reports_success = True
    max_episode_steps = EPISODE_STEPS
    max_envs_per_task = 1  # each env holds a whole MuJoCo model (about 24 MB with its meshes): a task's episodes
    # run one after another, which costs nothing when, as here, stepping is a Python loop
    benchmark: ClassVar[str]

    def __init__(self, env_name: str | None, benchmark_seed: int, render_mode: str | None) -> None:
        who = type(self).__name__
        if render_mode is not None:
            raise ValueError(f"{who}: render_mode must be None (rendering is not supported), got {render_mode!r}")
        if isinstance(benchmark_seed, bool) or not isinstance(benchmark_seed, int | np.integer) or benchmark_seed < 0:
            raise ValueError(f"{who}: benchmark_seed must be an int >= 0, got {benchmark_seed!r}")
        self.render_mode = None
        self.env_name, self.benchmark_seed = env_name, int(benchmark_seed)
        self.variations = benchmark_variations(self.benchmark, env_name, self.benchmark_seed)
        self.env_names = self.variations.env_names
        self.task_space = self.variations.task_space
        self._env: Any = None  # the Meta-World env of the current task's environment
        self._env_name: str | None = None
        self.set_task(self.variations.train[0])
        self.observation_space = self._env.observation_space
        self.action_space = self._env.action_space

    def set_task(self, task: Any) -> None:
        """Set one of the benchmark's variations (training or test) as the task; it applies from the next reset."""
        where = f"{describe_env(self)}.set_task"
        vector = validate_tasks(task, self.task_space, where)
        found = self.variations.lookup.get(vector.tobytes())
        if found is None:
            raise ValueError(
                f"{where}: task {vector.tolist()!r} is not one of the {self._benchmark_name()} variations "
                f"(benchmark_seed {self.benchmark_seed}: {len(self.variations.train)} training, "
                f"{len(self.variations.test)} test); draw them with sample_tasks or sample_held_out_tasks"
            )
        env_name, metaworld_task = found
        if env_name != self._env_name:  # ML10: one Meta-World env at a time (a model is about 24 MB)
            from metaworld.env_dict import ALL_V3_ENVIRONMENTS

            if self._env is not None:
                self._env.close()
            self._env, self._env_name = ALL_V3_ENVIRONMENTS[env_name](), env_name
        self._env.set_task(metaworld_task)
        self._task = vector

    def _benchmark_name(self) -> str:
        return f"ML1 {self.env_name}" if self.env_name else self.benchmark

    def sample_tasks(self, num_tasks: int, rng: np.random.Generator) -> np.ndarray:
        """``num_tasks`` of the benchmark's training variations, without repeats while there are enough."""
        return _draw(self.variations.train, self._checked_num_tasks(num_tasks, rng), rng)

    def sample_held_out_tasks(self, num_tasks: int, rng: np.random.Generator) -> np.ndarray:
        """``num_tasks`` of the benchmark's test variations, without repeats (at most all of them)."""
        num_tasks = self._checked_num_tasks(num_tasks, rng)
        if num_tasks > len(self.variations.test):
            raise ValueError(f"{describe_env(self)}: {num_tasks} held-out tasks asked for, but the "
                             f"{self._benchmark_name()} benchmark has {len(self.variations.test)} test variations")
        return _draw(self.variations.test, num_tasks, rng)

    def held_out_task_set(self) -> np.ndarray:
        """Every test variation of the benchmark (ML1: 50; ML10: 250, 50 per held-out environment)."""
        return self.variations.test.copy()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        """Meta-World's reset of the current task (its start state draws nothing, so ``seed`` changes nothing)."""
        super().reset(seed=seed)
        observation, _ = self._env.reset()
        return observation, {"task": self._task.copy()}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Meta-World's step; the info keeps only the benchmark's ``success`` flag (the task is in the reset's:
        ``SyncVectorEnv`` gathering a task array from every env at every step cost 10 % of the step)."""
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (4,):
            raise ValueError(f"{describe_env(self)}.step: action {action!r} has shape {action.shape}, expected (4,)")
        observation, reward, terminated, truncated, info = self._env.step(action)
        return (observation, float(reward), bool(terminated), bool(truncated),
                {"success": bool(info["success"])})

    def close(self) -> None:
        if self._env is not None:
            self._env.close()


def _draw(variations: np.ndarray, num_tasks: int, rng: np.random.Generator) -> np.ndarray:
    """``num_tasks`` rows of ``variations``, uniformly: without repeats up to all of them, then every row once
    (shuffled) and the rest drawn again."""
    count = len(variations)
    if num_tasks <= count:
        rows = rng.choice(count, size=num_tasks, replace=False)
    else:
        rows = np.concatenate([rng.permutation(count), rng.choice(count, size=num_tasks - count)])
    return variations[rows].copy()


class MetaWorldML1Env(MetaWorldEnv):
    """ML1: one Meta-World environment (``env_name``, e.g. ``reach-v3``), 50 training and 50 test positions of its
    object and goal; a task is the variation's random vector (3 or 6 numbers)."""

    benchmark = "ML1"

    def __init__(self, env_name: str = "reach-v3", benchmark_seed: int = 0, render_mode: str | None = None) -> None:
        check_choice(env_name, "env_name", tuple(ml1_env_names()), type(self).__name__)
        super().__init__(env_name, benchmark_seed, render_mode)


class MetaWorldML10Env(MetaWorldEnv):
    """ML10: 10 training environments and 5 held-out ones, 50 positions each; a task is the environment's index in
    ``env_names`` (0-9 training, 10-14 held out) and its random vector padded to 6 numbers."""

    benchmark = "ML10"

    def __init__(self, benchmark_seed: int = 0, render_mode: str | None = None) -> None:
        super().__init__(None, benchmark_seed, render_mode)
