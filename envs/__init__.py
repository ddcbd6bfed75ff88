"""Meta-RL task families, registered with Gymnasium under the ``meta_rl/`` namespace on import.

Import as ``meta_rl_envs`` (the directory is ``envs/``; the bare name ``envs`` is an unrelated package)::

    import gymnasium, meta_rl_envs
    env = gymnasium.make("meta_rl/Navigation2D-v0")
    vec = meta_rl_envs.make_task_vec("meta_rl/Navigation2D-v0", num_envs=400)
"""

from __future__ import annotations

import gymnasium

from meta_rl_envs.base import TaskEnvMixin, VectorTaskEnvMixin, validate_tasks
from meta_rl_envs.half_cheetah import (
    HalfCheetahDirEnv,
    HalfCheetahDirOracleEnv,
    HalfCheetahDirOracleVectorEnv,
    HalfCheetahDirVectorEnv,
    HalfCheetahVelEnv,
    HalfCheetahVelOracleEnv,
    HalfCheetahVelOracleVectorEnv,
    HalfCheetahVelVectorEnv,
)
from meta_rl_envs.navigation import (
    Navigation2DEnv,
    Navigation2DOracleEnv,
    Navigation2DOracleVectorEnv,
    Navigation2DVectorEnv,
)
from meta_rl_envs.vector import NativeTaskVectorEnv, TaskSyncVectorEnv, make_task_vec, registered_ids

__all__ = [
    "HalfCheetahDirEnv",
    "HalfCheetahDirOracleEnv",
    "HalfCheetahDirOracleVectorEnv",
    "HalfCheetahDirVectorEnv",
    "HalfCheetahVelEnv",
    "HalfCheetahVelOracleEnv",
    "HalfCheetahVelOracleVectorEnv",
    "HalfCheetahVelVectorEnv",
    "NativeTaskVectorEnv",
    "Navigation2DEnv",
    "Navigation2DOracleEnv",
    "Navigation2DOracleVectorEnv",
    "Navigation2DVectorEnv",
    "TaskEnvMixin",
    "TaskSyncVectorEnv",
    "VectorTaskEnvMixin",
    "family_class",
    "make_task_vec",
    "register_envs",
    "registered_ids",
    "validate_tasks",
]


# id -> (module in meta_rl_envs, single-env class, native vector-env class or None, episode length)
FAMILIES: dict[str, tuple[str, str, str | None, int]] = {
    "meta_rl/Navigation2D-v0": ("navigation", "Navigation2DEnv", "Navigation2DVectorEnv", 100),
    "meta_rl/Navigation2DOracle-v0": ("navigation", "Navigation2DOracleEnv", "Navigation2DOracleVectorEnv", 100),
    "meta_rl/HalfCheetahVel-v0": ("half_cheetah", "HalfCheetahVelEnv", "HalfCheetahVelVectorEnv", 200),
    "meta_rl/HalfCheetahVelOracle-v0": (
        "half_cheetah", "HalfCheetahVelOracleEnv", "HalfCheetahVelOracleVectorEnv", 200
    ),
    "meta_rl/HalfCheetahDir-v0": ("half_cheetah", "HalfCheetahDirEnv", "HalfCheetahDirVectorEnv", 200),
    "meta_rl/HalfCheetahDirOracle-v0": (
        "half_cheetah", "HalfCheetahDirOracleEnv", "HalfCheetahDirOracleVectorEnv", 200
    ),
    "meta_rl/AntVel-v0": ("ant", "AntVelEnv", "AntVelVectorEnv", 200),
    "meta_rl/AntVelOracle-v0": ("ant", "AntVelOracleEnv", "AntVelOracleVectorEnv", 200),
    "meta_rl/AntDir-v0": ("ant", "AntDirEnv", "AntDirVectorEnv", 200),
    "meta_rl/AntDirOracle-v0": ("ant", "AntDirOracleEnv", "AntDirOracleVectorEnv", 200),
    "meta_rl/AntGoal-v0": ("ant", "AntGoalEnv", "AntGoalVectorEnv", 200),
    "meta_rl/AntGoalOracle-v0": ("ant", "AntGoalOracleEnv", "AntGoalOracleVectorEnv", 200),
    "meta_rl/Walker2dParams-v0": ("rand_params", "Walker2dParamsEnv", "Walker2dParamsVectorEnv", 200),
    "meta_rl/Walker2dParamsOracle-v0": (
        "rand_params", "Walker2dParamsOracleEnv", "Walker2dParamsOracleVectorEnv", 200
    ),
    "meta_rl/HopperParams-v0": ("rand_params", "HopperParamsEnv", "HopperParamsVectorEnv", 200),
    "meta_rl/HopperParamsOracle-v0": ("rand_params", "HopperParamsOracleEnv", "HopperParamsOracleVectorEnv", 200),
    "meta_rl/HumanoidDir-v0": ("humanoid", "HumanoidDirEnv", "HumanoidDirVectorEnv", 200),
    "meta_rl/HumanoidDirOracle-v0": ("humanoid", "HumanoidDirOracleEnv", "HumanoidDirOracleVectorEnv", 200),
    # Meta-World steps in Python whichever way: a SyncVectorEnv of the single env (see envs/metaworld.py)
    "meta_rl/MetaWorldML1-v0": ("metaworld", "MetaWorldML1Env", None, 500),
    "meta_rl/MetaWorldML10-v0": ("metaworld", "MetaWorldML10Env", None, 500),
}


def family_class(env_id: str) -> type:
    """The single-env class registered under ``env_id`` (a task family: its ``task_space``, ``observe_task``,
    ``plots_trajectories``, ...); a clear error for an id that is not a registered family."""
    from gymnasium.envs.registration import load_env_creator

    spec = gymnasium.envs.registry.get(env_id)
    creator = None if spec is None or not isinstance(spec.entry_point, str) else load_env_creator(spec.entry_point)
    if not isinstance(creator, type) or not issubclass(creator, TaskEnvMixin):
        raise ValueError(f"{env_id!r} is not a registered meta_rl task family; registered: {sorted(FAMILIES)}")
    return creator


def register_envs() -> None:
    """Register every family with Gymnasium; safe to call more than once (already-registered ids are kept)."""
    for env_id, (module, single, vector, max_episode_steps) in FAMILIES.items():
        if env_id not in gymnasium.envs.registry:
            gymnasium.register(
                id=env_id,
                entry_point=f"meta_rl_envs.{module}:{single}",
                vector_entry_point=None if vector is None else f"meta_rl_envs.{module}:{vector}",
                max_episode_steps=max_episode_steps,
                # Meta-World's observation space bounds the hidden goal to [0, 0], which Gymnasium's passive checker
                # warns about at every make; tests/test_metaworld.py runs the full checker instead
                disable_env_checker=module == "metaworld",
            )


register_envs()
