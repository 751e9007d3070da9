"""A 1-D diffusion U-Net for audio: a waveform (1 x samples) or log-mel frames (mels x frames).

Read top to bottom: a stem convolution; one level per entry of ``channel_mults`` going down
(``num_res_blocks`` residual blocks, then a strided convolution that shortens time by that
level's ``strides`` entry); a middle at the coarsest scale (residual block, self-attention,
cross-attention over the prompt, residual block); and the mirror image going up, where each
level first stretches time back to the matching skip tensor's length (nearest neighbour plus a
convolution), concatenates it and runs its residual blocks.

Conditioning (as the 2-D :class:`~synesthesia.nets.unet.UNet`): the timestep goes through a
sinusoidal embedding and an MLP, a pooled prompt vector is added to it (Saharia et al. 2022,
sec. 2.2), and the sum modulates every residual block by scale and shift (Dhariwal & Nichol
2021, sec. 3). The prompt's tokens (``context``, padding masked by ``context_mask``) are the
keys and values of the cross-attention blocks (Rombach et al. 2022, sec. 3.3), computed by
:class:`synesthesia.nets.layers.Attention` on a ``B x C x 1 x T`` view.

Dilated convolutions (DiffWave, Kong et al. 2021, sec. 3.1) widen the receptive field in time
without more levels: the ``j``-th residual block of a level uses ``dilations[j % len]`` in
its second convolution.

The config has ``context_dim``, ``pooled_dim`` and ``num_classes = None``, so the module plugs
into :class:`synesthesia.nets.text_unet.TextConditionedUNet` with the project's text encoder.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from synesthesia.nets.layers import Attention, group_norm, timestep_embedding, zero_module


@dataclass
class AudioUNetConfig:
    """Hyper-parameters of :class:`AudioUNet` (saved as JSON next to the weights)."""

    in_channels: int = 64  # mel bins (log-mel domain) or 1 (waveform)
    length: int = 63  # frames or samples of one clip (any length works; this one is documented)
    base_channels: int = 64
    channel_mults: tuple[int, ...] = (1, 2, 2)
    strides: tuple[int, ...] = (2, 2)  # time reduction between consecutive levels
    num_res_blocks: int = 2
    dilations: tuple[int, ...] = (1, 2)
    attention_levels: tuple[int, ...] = ()  # self-attention there (the middle always has it)
    cross_attention_levels: tuple[int, ...] = ()  # cross-attention there (the middle too)
    num_heads: int = 4
    kernel_size: int = 3
    context_dim: int | None = None
    pooled_dim: int | None = None
    num_classes: None = None  # text conditioning only (TextConditionedUNet checks it)
    groups: int = 8
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("channel_mults", "strides", "dilations"):
            setattr(self, name, tuple(int(v) for v in getattr(self, name)))
        self.attention_levels = tuple(self.attention_levels)
        self.cross_attention_levels = tuple(self.cross_attention_levels)
        if not self.channel_mults:
            raise ValueError("channel_mults must name at least one level")
        if len(self.strides) != len(self.channel_mults) - 1:
            raise ValueError(
                f"strides needs one entry per level transition ({len(self.channel_mults) - 1}), "
                f"got {self.strides}"
            )
        if any(s < 2 for s in self.strides) or any(d < 1 for d in self.dilations):
            raise ValueError(f"strides must be >= 2 and dilations >= 1, got {self}")
        if not self.dilations or self.kernel_size % 2 == 0:
            raise ValueError("dilations must name one value at least; kernel_size must be odd")
        for name in ("attention_levels", "cross_attention_levels"):
            bad = [a for a in getattr(self, name) if not 0 <= a < len(self.channel_mults)]
            if bad:
                raise ValueError(f"{name} {bad} out of range for {len(self.channel_mults)} levels")
        if self.num_classes is not None:
            raise ValueError("AudioUNet is conditioned on text only: num_classes must be None")

    @property
    def time_embed_dim(self) -> int:
        return 4 * self.base_channels

    def to_dict(self) -> dict:
        """A JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> AudioUNetConfig:
        """The inverse of :meth:`to_dict`; unknown keys raise a clear ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown AudioUNetConfig keys {unknown}; known: {sorted(known)}")
        return cls(**d)


class ResBlock1d(nn.Module):
    """GroupNorm, SiLU, Conv1d; scale-shift by ``emb``; SiLU, dilated Conv1d (zero-init); skip."""

    def __init__(self, cin: int, cout: int, cfg: AudioUNetConfig, dilation: int) -> None:
        super().__init__()
        k = cfg.kernel_size
        self.norm1 = group_norm(cin, cfg.groups)
        self.conv1 = nn.Conv1d(cin, cout, k, padding=k // 2)
        self.emb_proj = nn.Linear(cfg.time_embed_dim, 2 * cout)
        self.norm2 = group_norm(cout, cfg.groups)
        self.dropout = nn.Dropout(cfg.dropout)
        pad = dilation * (k // 2)
        self.conv2 = zero_module(nn.Conv1d(cout, cout, k, padding=pad, dilation=dilation))
        self.skip = nn.Identity() if cin == cout else nn.Conv1d(cin, cout, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """x: (B, C_in, T); emb: (B, time_embed_dim) -> (B, C_out, T)."""
        h = self.norm2(self.conv1(F.silu(self.norm1(x))))
        scale, shift = self.emb_proj(F.silu(emb))[:, :, None].chunk(2, dim=1)
        h = self.conv2(self.dropout(F.silu(h * (1 + scale) + shift)))
        return self.skip(x) + h


class Attention1d(nn.Module):
    """:class:`~synesthesia.nets.layers.Attention` over the time steps of a (B, C, T) tensor."""

    def __init__(self, channels: int, cfg: AudioUNetConfig, context_dim: int | None) -> None:
        super().__init__()
        self.attn = Attention(channels, cfg.num_heads, context_dim, cfg.groups)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.attn(x[:, :, None], context, context_mask)[:, :, 0]


class _Level(nn.Module):
    """The residual blocks of one level, each optionally followed by attention."""

    def __init__(self, cin: int, cout: int, n: int, cfg: AudioUNetConfig, level: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList()
        self.attn = nn.ModuleList()
        self.cross = nn.ModuleList()
        attend = level in cfg.attention_levels
        cross = level in cfg.cross_attention_levels and cfg.context_dim is not None
        for j in range(n):
            self.blocks.append(
                ResBlock1d(
                    cin if j == 0 else cout, cout, cfg, cfg.dilations[j % len(cfg.dilations)]
                )
            )
            self.attn.append(Attention1d(cout, cfg, None) if attend else nn.Identity())
            self.cross.append(Attention1d(cout, cfg, cfg.context_dim) if cross else nn.Identity())

    def forward(self, h, emb, context, context_mask) -> torch.Tensor:  # noqa: ANN001
        for block, attn, cross in zip(self.blocks, self.attn, self.cross):
            h = block(h, emb)
            if isinstance(attn, Attention1d):
                h = attn(h)
            if isinstance(cross, Attention1d):
                h = cross(h, context, context_mask)
        return h


class AudioUNet(nn.Module):
    """``unet(x_t, t, context=None, context_mask=None, pooled=None)`` -> prediction (B, C, T)."""

    def __init__(self, config: AudioUNetConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or AudioUNetConfig()
        widths = [cfg.base_channels * m for m in cfg.channel_mults]
        emb_dim = cfg.time_embed_dim
        self.time_mlp = nn.Sequential(
            nn.Linear(cfg.base_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        self.pooled_proj = nn.Linear(cfg.pooled_dim, emb_dim) if cfg.pooled_dim else None
        self.conv_in = nn.Conv1d(
            cfg.in_channels, widths[0], cfg.kernel_size, padding=cfg.kernel_size // 2
        )

        # down: a level's blocks, then (between levels) a strided convolution
        self.down = nn.ModuleList()
        self.shorten = nn.ModuleList()
        ch = widths[0]
        for level, width in enumerate(widths):
            self.down.append(_Level(ch, width, cfg.num_res_blocks, cfg, level))
            ch = width
            if level < len(widths) - 1:
                s = cfg.strides[level]
                self.shorten.append(nn.Conv1d(ch, ch, 2 * s, stride=s, padding=s // 2))

        self.mid_res1 = ResBlock1d(ch, ch, cfg, 1)
        self.mid_attn = Attention1d(ch, cfg, None)
        self.mid_cross = Attention1d(ch, cfg, cfg.context_dim) if cfg.context_dim else None
        self.mid_res2 = ResBlock1d(ch, ch, cfg, 1)

        # up: stretch to the skip's length, concatenate it, run the level's blocks
        self.stretch = nn.ModuleList()
        self.up = nn.ModuleList()
        for level in reversed(range(len(widths))):
            if level < len(widths) - 1:
                self.stretch.append(
                    nn.Conv1d(ch, ch, cfg.kernel_size, padding=cfg.kernel_size // 2)
                )
            self.up.append(
                _Level(ch + widths[level], widths[level], cfg.num_res_blocks, cfg, level)
            )
            ch = widths[level]
        self.norm_out = group_norm(ch, cfg.groups)
        self.conv_out = zero_module(
            nn.Conv1d(ch, cfg.in_channels, cfg.kernel_size, padding=cfg.kernel_size // 2)
        )

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
        pooled: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: (B, C, T) noisy audio; t: (B,) float timesteps -> prediction (B, C, T)."""
        cfg = self.config
        if x.ndim != 3 or x.shape[1] != cfg.in_channels:
            raise ValueError(f"x must be (B, {cfg.in_channels}, T), got {tuple(x.shape)}")
        t = torch.as_tensor(t, device=x.device)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        emb = self.time_mlp(timestep_embedding(t, cfg.base_channels))
        if self.pooled_proj is not None:
            if pooled is None:
                raise ValueError(f"this AudioUNet takes pooled (B, {cfg.pooled_dim})")
            emb = emb + self.pooled_proj(pooled.to(emb.dtype))
        if cfg.context_dim is not None and context is None:
            raise ValueError(
                f"this AudioUNet cross-attends: pass context (B, L, {cfg.context_dim})"
            )

        h = self.conv_in(x)
        skips = []
        for i, level in enumerate(self.down):
            h = level(h, emb, context, context_mask)
            skips.append(h)
            if i < len(self.shorten):
                h = self.shorten[i](h)

        h = self.mid_attn(self.mid_res1(h, emb))
        if self.mid_cross is not None:
            h = self.mid_cross(h, context, context_mask)
        h = self.mid_res2(h, emb)

        for i, level in enumerate(self.up):
            skip = skips.pop()
            if i > 0:
                h = self.stretch[i - 1](F.interpolate(h, size=skip.shape[-1], mode="nearest"))
            h = level(torch.cat([h, skip], dim=1), emb, context, context_mask)
        return self.conv_out(F.silu(self.norm_out(h)))


#: Named sizes. "mel": 64 mel bins x 63 frames (1 s at 8 kHz, hop 128), 63 -> 31 -> 15
#: frames; "wave": 1 x 8,000 samples, 8000 -> 2000 -> 500 -> 125 -> 31, dilated blocks;
#: "tiny" for tests.
AUDIO_PRESETS: dict[str, dict] = {
    "tiny": dict(
        base_channels=16,
        channel_mults=(1, 2),
        strides=(2,),
        num_res_blocks=1,
        dilations=(1,),
        num_heads=2,
    ),
    "mel": dict(
        base_channels=64,
        channel_mults=(1, 2, 2),
        strides=(2, 2),
        num_res_blocks=2,
        dilations=(1, 2),
        cross_attention_levels=(2,),
    ),
    # narrow where samples are many: 16 channels at 8,000 samples, 128 at 31 (about 6x the
    # FLOPs of "mel" per clip)
    "wave": dict(
        base_channels=16,
        channel_mults=(1, 2, 4, 4, 8),
        strides=(4, 4, 4, 4),
        num_res_blocks=2,
        dilations=(1, 3),
        attention_levels=(4,),
        cross_attention_levels=(4,),
    ),
}


def audio_unet_preset(name: str, **overrides) -> AudioUNetConfig:
    """The :class:`AudioUNetConfig` of preset ``name`` (tiny | mel | wave), with overrides."""
    if name not in AUDIO_PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(AUDIO_PRESETS)}")
    return AudioUNetConfig(**{**AUDIO_PRESETS[name], **overrides})
