"""Shared test data of the multimodal tests."""

import pytest
import torch


def make_bars(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Images of a horizontal (label 0) or vertical (label 1) bar at a random place."""
    labels = torch.arange(n) % 2
    images = -torch.ones(n, 1, 28, 28)
    pos = torch.randint(4, 24, (n,), generator=generator)
    for i in range(n):
        if labels[i] == 0:
            images[i, 0, pos[i] - 1 : pos[i] + 2, 4:24] = 1.0
        else:
            images[i, 0, 4:24, pos[i] - 1 : pos[i] + 2] = 1.0
    return images, labels


@pytest.fixture
def bars():
    """``bars(n, generator)``: images of two classes a small CNN separates in a few steps."""
    return make_bars
