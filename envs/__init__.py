"""Meta-RL task families, registered with Gymnasium under the ``meta_rl/`` namespace on import.

Import as ``meta_rl_envs`` (the directory is ``envs/``; the bare name ``envs`` is an unrelated package)::

    import gymnasium, meta_rl_envs
    env = gymnasium.make("meta_rl/Navigation2D-v0")
    vec = meta_rl_envs.make_task_vec("meta_rl/Navigation2D-v0", num_envs=400)
"""

from __future__ import annotations

import gymnasium

from meta_rl_envs.base import TaskEnvMixin, VectorTaskEnvMixin, validate_tasks
from meta_rl_envs.navigation import (
    Navigation2DEnv,
    Navigation2DOracleEnv,
    Navigation2DOracleVectorEnv,
    Navigation2DVectorEnv,
)
from meta_rl_envs.vector import TaskSyncVectorEnv, make_task_vec, registered_ids

__all__ = [
    "Navigation2DEnv",
    "Navigation2DOracleEnv",
    "Navigation2DOracleVectorEnv",
    "Navigation2DVectorEnv",
    "TaskEnvMixin",
    "TaskSyncVectorEnv",
    "VectorTaskEnvMixin",
    "make_task_vec",
    "register_envs",
    "registered_ids",
    "validate_tasks",
]


def register_envs() -> None:
    """Register every family with Gymnasium; safe to call more than once (already-registered ids are kept)."""
    if "meta_rl/Navigation2D-v0" not in gymnasium.envs.registry:
        gymnasium.register(
            id="meta_rl/Navigation2D-v0",
            entry_point="meta_rl_envs.navigation:Navigation2DEnv",
            vector_entry_point="meta_rl_envs.navigation:Navigation2DVectorEnv",
            max_episode_steps=100,
        )
    if "meta_rl/Navigation2DOracle-v0" not in gymnasium.envs.registry:
        gymnasium.register(
            id="meta_rl/Navigation2DOracle-v0",
            entry_point="meta_rl_envs.navigation:Navigation2DOracleEnv",
            vector_entry_point="meta_rl_envs.navigation:Navigation2DOracleVectorEnv",
            max_episode_steps=100,
        )


register_envs()
