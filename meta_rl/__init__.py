"""meta_rl: meta-reinforcement learning (MAML, Meta-SGD) with task-batched updates and vectorized rollouts."""

from __future__ import annotations

__version__ = "0.1.0"

from meta_rl.api import AdaptedPolicy, MetaPolicy
from meta_rl.config import Config, ConfigError, load_config
from meta_rl.trainer import Trainer

__all__ = ["AdaptedPolicy", "Config", "ConfigError", "MetaPolicy", "Trainer", "load_config"]
