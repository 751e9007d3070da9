"""The chapter's hierarchical sensory model (sec. 13.5.3), used as the evaluator of digit samples.

Stages follow the ventral visual stream: V1 (simple local features), V2/V4 (more complex
features, pooled), IT (object-level features, pooled), an association area (a vector of
features that a multimodal area could read) and a decision layer (class logits). The
association output is the *penultimate* representation in which classifier-FID is measured.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import nn

from synesthesia.nets.layers import group_norm


@dataclass
class ClassifierConfig:
    """Hyper-parameters of :class:`HierarchicalSensoryNet`."""

    in_channels: int = 1
    image_size: int = 28
    num_classes: int = 10
    widths: tuple[int, int, int] = (32, 64, 128)  # V1, V2/V4, IT
    feature_dim: int = 256  # association area (penultimate features)
    dropout: float = 0.3

    def __post_init__(self) -> None:
        self.widths = tuple(self.widths)
        if len(self.widths) != 3:
            raise ValueError(f"widths must hold 3 numbers (V1, V2/V4, IT), got {self.widths}")
        if self.image_size < 4:
            raise ValueError(
                f"image_size must be at least 4 (two 2x poolings), got {self.image_size}"
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ClassifierConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown ClassifierConfig keys {unknown}; known: {sorted(known)}")
        return cls(**d)


def _stage(cin: int, cout: int, pool: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, 3, padding=1), group_norm(cout), nn.ReLU()]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class HierarchicalSensoryNet(nn.Module):
    """V1 -> V2/V4 -> IT -> association -> decision; ``features(x)`` gives the association code."""

    def __init__(self, config: ClassifierConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or ClassifierConfig()
        w1, w2, w3 = cfg.widths
        self.v1 = _stage(cfg.in_channels, w1, pool=True)  # simple features; 28 -> 14
        self.v2_v4 = _stage(w1, w2, pool=True)  # more complex features; 14 -> 7
        self.it = _stage(w2, w3, pool=False)  # object-level features at 7 x 7
        side = cfg.image_size // 4
        self.association = nn.Sequential(
            nn.Flatten(), nn.Dropout(cfg.dropout), nn.Linear(w3 * side * side, cfg.feature_dim)
        )
        self.decision = nn.Sequential(
            nn.ReLU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.feature_dim, cfg.num_classes)
        )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features (B, feature_dim): the association area's output (pre-ReLU)."""
        cfg = self.config
        if x.ndim != 4 or tuple(x.shape[1:]) != (cfg.in_channels, cfg.image_size, cfg.image_size):
            raise ValueError(
                f"x must be (B, {cfg.in_channels}, {cfg.image_size}, {cfg.image_size}), "
                f"got {tuple(x.shape)}"
            )
        return self.association(self.it(self.v2_v4(self.v1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (B, num_classes) of images x in [-1, 1]."""
        return self.decision(self.features(x))
