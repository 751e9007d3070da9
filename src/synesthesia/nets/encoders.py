"""Encoders for the three modalities of the digit world, and the projection head into a joint space.

- :class:`ImageEncoder`: a small CNN for 1 x 28 x 28 digits (three stages of 3x3 convolutions,
  GroupNorm and GELU, max-pooling between stages, global average pooling at the end).
- :class:`TextEncoder`: a small pre-norm transformer over word ids (see
  :mod:`synesthesia.nets.tokenizer`); the output is the mean over the non-padding positions
  (``[CLS]`` included), so every word has a direct path to the output.
- :class:`AudioEncoder`: a 2-D CNN over log-mel spectrograms (n_mels x frames). Each clip is first
  floored at its peak minus a fixed dynamic range (so silence, padding and background noise look
  alike) and normalised to zero mean and unit variance (so loudness and gain do not matter), the
  convolutions slide over frequency as well as time (a shift in pitch moves the pattern rather
  than changing it), and time is pooled away at the end (mean and max), so clips of any length go
  in; the coarse frequency rows that remain are kept in order.
- :class:`ProjectionHead`: the two-layer MLP of the chapter's ``MultimodalEncoder`` that maps a
  tower's features into the joint space (normalisation happens in the joint model).

Every encoder has a dataclass config (JSON-serialisable) and an ``out_dim`` attribute.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def _groups(channels: int) -> int:
    for g in (8, 4, 2):
        if channels % g == 0:
            return g
    return 1


class ConvBlock(nn.Sequential):
    """3x3 convolution, GroupNorm and GELU (2-D)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.GroupNorm(_groups(c_out), c_out),
            nn.GELU(),
        )


@dataclass
class ImageEncoderConfig:
    """A CNN with one stage per entry of ``channels`` (two conv blocks each, pooling between)."""

    in_channels: int = 1
    channels: tuple[int, ...] = (16, 32, 64)


class ImageEncoder(nn.Module):
    """Images ``B x C x H x W`` (in [-1, 1]) to features ``B x channels[-1]``."""

    def __init__(self, config: ImageEncoderConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or ImageEncoderConfig()
        if not config.channels:
            raise ValueError("ImageEncoderConfig.channels must name at least one stage")
        layers: list[nn.Module] = []
        c_in = config.in_channels
        for i, c in enumerate(config.channels):
            if i > 0:
                layers.append(nn.MaxPool2d(2))
            layers += [ConvBlock(c_in, c), ConvBlock(c, c)]
            c_in = c
        self.body = nn.Sequential(*layers)
        self.out_dim = config.channels[-1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != self.config.in_channels:
            raise ValueError(
                f"images must be B x {self.config.in_channels} x H x W, got {tuple(images.shape)}"
            )
        return self.body(images).mean(dim=(-2, -1))


@dataclass
class TextEncoderConfig:
    """A pre-norm transformer encoder over word ids, mean-pooled over non-padding positions."""

    vocab_size: int = 128
    dim: int = 64
    depth: int = 2
    heads: int = 4
    mlp_ratio: int = 2
    max_length: int = 24
    dropout: float = 0.0
    pad_id: int = 0


class TextEncoder(nn.Module):
    """Word ids ``B x L`` (with a padding mask, True where padded) to features ``B x dim``."""

    def __init__(self, config: TextEncoderConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or TextEncoderConfig()
        if config.dim % config.heads:
            raise ValueError(
                f"TextEncoderConfig.dim={config.dim} must divide by heads={config.heads}"
            )
        self.token = nn.Embedding(config.vocab_size, config.dim, padding_idx=config.pad_id)
        self.position = nn.Parameter(torch.zeros(config.max_length, config.dim))
        nn.init.normal_(self.position, std=0.02)
        nn.init.normal_(self.token.weight, std=0.02)
        layer = nn.TransformerEncoderLayer(
            config.dim,
            config.heads,
            config.mlp_ratio * config.dim,
            dropout=config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(
            layer, config.depth, enable_nested_tensor=False, norm=nn.LayerNorm(config.dim)
        )
        self.out_dim = config.dim

    def encode_tokens(
        self, ids: torch.Tensor, padding_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Per-token features ``B x L x dim`` (what cross-attention reads, as Stable Diffusion
        reads CLIP's last hidden states); padded positions are left as computed."""
        if ids.ndim != 2:
            raise ValueError(f"ids must be B x L, got shape {tuple(ids.shape)}")
        length = ids.shape[1]
        if length > self.config.max_length:
            raise ValueError(
                f"sequence length {length} exceeds max_length {self.config.max_length}"
            )
        if padding_mask is None:
            padding_mask = ids == self.config.pad_id
        x = self.token(ids) + self.position[:length]
        return self.blocks(x, src_key_padding_mask=padding_mask)

    @staticmethod
    def pool(tokens: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
        """The mean of ``tokens`` (B x L x D) over non-padding positions: B x D."""
        keep = (~padding_mask).unsqueeze(-1).to(tokens.dtype)
        return (tokens * keep).sum(1) / keep.sum(1).clamp(min=1.0)

    def forward(self, ids: torch.Tensor, padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        if padding_mask is None:
            padding_mask = ids == self.config.pad_id
        return self.pool(self.encode_tokens(ids, padding_mask), padding_mask)


@dataclass
class AudioEncoderConfig:
    """A 2-D CNN over ``n_mels x frames``; one stage per entry of ``channels``."""

    n_mels: int = 40
    channels: tuple[int, ...] = (16, 32, 64, 64)
    dynamic_range: float | None = 11.5  # natural-log units kept below each clip's peak (50 dB)


class AudioEncoder(nn.Module):
    """Log-mel spectrograms ``B x n_mels x T`` to features ``B x out_dim``.

    ``out_dim = 2 * channels[-1] * F'`` where ``F'`` is the number of frequency rows left after
    the pooling (time is pooled away by mean and max; frequency rows are kept in order).
    """

    def __init__(self, config: AudioEncoderConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or AudioEncoderConfig()
        if not config.channels:
            raise ValueError("AudioEncoderConfig.channels must name at least one stage")
        layers: list[nn.Module] = []
        c_in = 1
        for i, c in enumerate(config.channels):
            if i > 0:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            layers.append(ConvBlock(c_in, c))
            c_in = c
        self.body = nn.Sequential(*layers)
        freq = config.n_mels
        for _ in config.channels[1:]:
            freq = -(-freq // 2)
        self.out_dim = 2 * config.channels[-1] * freq

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 3 or features.shape[1] != self.config.n_mels:
            raise ValueError(
                f"features must be B x n_mels={self.config.n_mels} x frames, "
                f"got {tuple(features.shape)}"
            )
        x = features.float()
        if self.config.dynamic_range is not None:
            # floor at peak - range, as librosa's power_to_db(top_db=...): silence, padding and
            # background noise of different recordings all map to the same floor
            peak = x.amax(dim=(1, 2), keepdim=True)
            x = torch.maximum(x, peak - self.config.dynamic_range)
        # per-clip standardisation (cepstral mean and variance normalisation, over the whole clip)
        mean = x.mean(dim=(1, 2), keepdim=True)
        std = x.std(dim=(1, 2), keepdim=True)
        x = (x - mean) / (std + 1e-5)
        h = self.body(x[:, None])  # B x C x F' x T'
        h = torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=1)  # pool time away: B x 2C x F'
        return h.flatten(1)


class ProjectionHead(nn.Module):
    """Linear - GELU - Linear into the joint space (as the chapter's per-modality projection)."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or 2 * out_dim
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def l2_normalize(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Rows of ``x`` scaled to unit Euclidean norm."""
    return F.normalize(x, dim=-1, eps=eps)
