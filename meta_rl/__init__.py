"""meta_rl: meta-reinforcement learning (MAML, Meta-SGD, ProMP) with task-batched updates and vectorized rollouts."""

from __future__ import annotations

__version__ = "0.1.0"

from meta_rl.api import AdaptedPolicy, MetaPolicy
from meta_rl.callbacks import Callback
from meta_rl.config import Config, ConfigError, load_config
from meta_rl.trainer import Trainer, train

__all__ = ["AdaptedPolicy", "Callback", "Config", "ConfigError", "MetaPolicy", "Trainer", "load_config", "train"]
