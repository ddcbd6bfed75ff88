"""Random numbers of a collect, one stream per episode, so any split of the episodes draws the same numbers.

Episode ``e`` of a collect (``e = m * N + n``: task ``m``, its ``n``-th episode) gets its reset seed and its action
noise from ``numpy.random.SeedSequence(seed, spawn_key=(*key, e))`` alone: the run's seed, a key naming the collect
(for training: the iteration and the inner step) and the episode's index. Whichever process steps an episode, and
whatever else it steps beside it, the episode is the same; and a run resumed from a checkpoint needs no generator
state to continue exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["EVALUATION", "TRAINING", "EpisodeStreams"]

TRAINING, EVALUATION = 0, 1
"""First word of a collect's key: the trainer's collects and the adaptation API's (held-out evaluation) ones."""


class EpisodeStreams:
    """The random streams of one collect: ``seed`` and ``key`` name it, an episode's index picks its stream.

    :param seed: the run's (or the evaluation's) seed, a non-negative int.
    :param key: non-negative ints naming the collect, e.g. ``(TRAINING, iteration, inner_step)``.
    """

    def __init__(self, seed: int, key: Sequence[int]) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        if any(isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0 for k in key):
            raise ValueError(f"a collect's key must be non-negative ints, got {tuple(key)!r}")
        self.seed, self.key = int(seed), tuple(int(k) for k in key)

    def __repr__(self) -> str:
        return f"EpisodeStreams(seed={self.seed}, key={self.key})"

    def _sequence(self, episode: int) -> np.random.SeedSequence:
        return np.random.SeedSequence(self.seed, spawn_key=(*self.key, int(episode)))

    def draw(self, episodes: Sequence[int] | np.ndarray, horizon: int, action_dim: int
             ) -> tuple[list[int], np.ndarray]:
        """For each episode index: its reset seed, and its standard normal action noise ``[horizon, action_dim]``;
        returned as a list of seeds and an array ``[horizon, len(episodes), action_dim]`` (float32, time-major)."""
        noise = np.empty((len(episodes), horizon, action_dim), dtype=np.float32)
        seeds = []
        for row, episode in enumerate(episodes):
            sequence = self._sequence(episode)
            seeds.append(int(sequence.generate_state(9)[8] & 0x7FFFFFFF))  # past the 8 words PCG64's seeding uses
            np.random.Generator(np.random.PCG64(sequence)).standard_normal(
                (horizon, action_dim), dtype=np.float32, out=noise[row]
            )
        return seeds, np.ascontiguousarray(noise.transpose(1, 0, 2))
