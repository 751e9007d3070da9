"""A plain multilayer perceptron: the network of the psychophysics probes (and anything small).

Linear - GELU blocks, then a linear read-out; nothing else. Read top to bottom in a minute.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from synesthesia.errors import InputError


@dataclass
class MLPConfig:
    """Input width, hidden width, number of hidden layers and output width."""

    in_dim: int
    out_dim: int
    hidden: int = 128
    depth: int = 2

    def __post_init__(self) -> None:
        for name in ("in_dim", "out_dim", "hidden", "depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"MLPConfig.{name}: must be an integer >= 1, got {value!r}")

    def to_dict(self) -> dict:
        """The config as JSON-able data."""
        return asdict(self)


class MLP(nn.Module):
    """``depth`` hidden Linear-GELU layers of width ``hidden``, then Linear to ``out_dim``."""

    def __init__(self, config: MLPConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width = config.in_dim
        for _ in range(config.depth):
            layers += [nn.Linear(width, config.hidden), nn.GELU()]
            width = config.hidden
        layers.append(nn.Linear(width, config.out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., in_dim) -> (..., out_dim)."""
        return self.net(x)
