"""Fixtures of the nets tests."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Small ops on a shared 2-core machine: one thread avoids spinning against other work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
