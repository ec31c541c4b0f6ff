"""Shared fixtures."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_thread():
    """Run on one intra-op thread: on a shared 2-core machine torch's default of one thread per
    core spin-waits against other processes and was measured 25x slower in wall time."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
