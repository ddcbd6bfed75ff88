import dataclasses

import torch
from helpers import tiny_episodes


def test_task_major_is_the_transposed_field_and_follows_a_reassigned_field():
    episodes = tiny_episodes(seed=3)
    first = episodes.task_major("advantages")
    torch.testing.assert_close(first, episodes.advantages.transpose(0, 1), rtol=0, atol=0)
    assert episodes.task_major("advantages") is first  # cached

    episodes.advantages = episodes.advantages * 2.0
    torch.testing.assert_close(episodes.task_major("advantages"), 2.0 * first, rtol=0, atol=0)


def test_a_replaced_copy_does_not_share_the_cache():
    episodes = tiny_episodes(seed=4)
    episodes.task_major("log_probs")
    copy = dataclasses.replace(episodes, log_probs=episodes.log_probs + 1.0)
    torch.testing.assert_close(copy.task_major("log_probs"), episodes.task_major("log_probs") + 1.0, rtol=0, atol=0)


def test_selections_keep_every_field_and_their_own_cache():
    episodes = tiny_episodes(seed=5)
    episodes.task_major("observations")
    selected = episodes.select_tasks(slice(0, 1)).select_episodes(slice(0, 2))
    assert selected.num_tasks == 1 and selected.episodes_per_task == 2
    torch.testing.assert_close(selected.task_major("observations"),
                               episodes.task_major("observations")[:1, :, :2], rtol=0, atol=0)
    torch.testing.assert_close(selected.advantages, episodes.advantages[:, :1, :2], rtol=0, atol=0)
