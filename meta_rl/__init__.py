"""meta_rl: meta-reinforcement learning (MAML, Meta-SGD, ProMP) with task-batched updates and vectorized rollouts."""

from __future__ import annotations

__version__ = "0.1.0"

from meta_rl.runtime import limit_openmp_spinning

limit_openmp_spinning()  # before anything imports torch: libgomp reads it when torch loads

from meta_rl.api import AdaptedPolicy, MetaPolicy  # noqa: E402 (after the OpenMP setting)
from meta_rl.callbacks import Callback  # noqa: E402
from meta_rl.config import Config, ConfigError, load_config  # noqa: E402
from meta_rl.trainer import Trainer, train  # noqa: E402

__all__ = ["AdaptedPolicy", "Callback", "Config", "ConfigError", "MetaPolicy", "Trainer", "load_config", "train"]
