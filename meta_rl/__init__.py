"""meta_rl: meta-reinforcement learning (MAML, Meta-SGD) with task-batched updates and vectorized rollouts."""

from __future__ import annotations

__version__ = "0.1.0"
