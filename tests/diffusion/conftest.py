"""The diffusion tests run small tensors (thousands of numbers): one thread is fastest, and on
a shared machine a second thread mostly spins waiting for a busy core."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
