"""Shared fixtures."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_pool(tmp_path_factory):
    """The small emoji world the Ray training tests use (1,600 samples in 4 shards, 40 concepts,
    20 eval classes, seed 1), made once per session; tests only read it. The golden loss curve
    (tests/assets/losses) is this pool's."""
    from clipscale.data.emoji_world import EmojiWorldConfig, generate_pool

    out = tmp_path_factory.mktemp("emoji")
    generate_pool(EmojiWorldConfig(num_samples=1600, samples_per_shard=400, num_concepts=40,
                                   eval_num_classes=20, eval_images_per_class=2,
                                   eval_retrieval_pairs=40, seed=1), out, progress=False)
    return out


@pytest.fixture
def one_thread():
    """Run on one intra-op thread: on a shared 2-core machine torch's default of one thread per
    core spin-waits against other processes and was measured 25x slower in wall time."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
