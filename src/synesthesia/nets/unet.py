"""A time-conditioned U-Net for diffusion on small images, readable top to bottom.

Layout (Ho et al. 2020, appendix B; Dhariwal & Nichol 2021): a stem convolution, then one
level per entry of ``channel_mults`` going down (residual blocks, self-attention where asked,
a stride-2 downsample between levels), a middle (residual block, attention, residual block),
and the mirror image going up, each up block reading the matching skip connection.

Conditioning: the timestep ``t`` (float, fractional values allowed) goes through a sinusoidal
embedding and an MLP; an optional class label adds a learned embedding. The label
``num_classes`` is the *null class* used for classifier-free guidance (Ho & Salimans 2022).
Both enter every residual block through scale-shift normalisation. An optional token
``context`` (B, L, context_dim) enables cross-attention in the attention levels.

For 28 x 28 digits the resolutions are 28, 14 and 7 (no padding to 32 needed); attention runs
only at 7 x 7 (49 tokens), where it is cheap.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn

from synesthesia.nets.layers import (
    Attention,
    Downsample,
    ResBlock,
    Upsample,
    group_norm,
    timestep_embedding,
    zero_module,
)


@dataclass
class UNetConfig:
    """Hyper-parameters of :class:`UNet` (saved as JSON next to the weights)."""

    in_channels: int = 1
    image_size: int = 28
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 4)
    num_res_blocks: int = 1  # per level going down; one more per level going up
    attention_levels: tuple[int, ...] = (2,)  # indices into channel_mults
    num_heads: int = 4
    num_classes: int | None = 10  # None: unconditional. Label num_classes is the null class.
    context_dim: int | None = None  # cross-attention over a token context when set
    # levels with cross-attention (the middle always has it); None: the attention_levels
    cross_attention_levels: tuple[int, ...] | None = None
    pooled_dim: int | None = None  # a pooled context vector added to the time embedding
    groups: int = 8
    dropout: float = 0.0
    upsample_conv: bool = False  # a 3x3 conv after each nearest-neighbour upsampling
    extra: dict = field(default_factory=dict)  # free-form notes kept with the config

    def __post_init__(self) -> None:
        self.channel_mults = tuple(self.channel_mults)
        self.attention_levels = tuple(self.attention_levels)
        if self.cross_attention_levels is not None:
            self.cross_attention_levels = tuple(self.cross_attention_levels)
        if not self.channel_mults:
            raise ValueError("channel_mults must name at least one level")
        for name in ("attention_levels", "cross_attention_levels"):
            levels = getattr(self, name) or ()
            bad = [a for a in levels if not 0 <= a < len(self.channel_mults)]
            if bad:
                raise ValueError(f"{name} {bad} out of range for {len(self.channel_mults)} levels")

    @property
    def cross_levels(self) -> tuple[int, ...]:
        """The levels with cross-attention (when ``context_dim`` is set)."""
        if self.cross_attention_levels is None:
            return self.attention_levels
        return self.cross_attention_levels

    @property
    def time_embed_dim(self) -> int:
        return 4 * self.base_channels

    def to_dict(self) -> dict:
        """A JSON-ready dict (tuples become lists)."""
        d = asdict(self)
        d["channel_mults"] = list(self.channel_mults)
        d["attention_levels"] = list(self.attention_levels)
        if self.cross_attention_levels is not None:
            d["cross_attention_levels"] = list(self.cross_attention_levels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> UNetConfig:
        """The inverse of :meth:`to_dict`; unknown keys raise a clear ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown UNetConfig keys {unknown}; known: {sorted(known)}")
        return cls(**d)


#: Named sizes: tiny for tests, small for the 10-minute CPU demo, base for longer runs.
UNET_PRESETS: dict[str, dict] = {
    "tiny": dict(base_channels=16, channel_mults=(1, 2), attention_levels=(1,), num_heads=2),
    # 16/48/80 channels at 28/14/7 pixels: narrow where pixels are many, wide where they are
    # few. At ~1.07M parameters it trains 1.5x faster than 32/64/64 (1.12M), which spends half
    # its FLOPs at 28 x 28 (benchmarks/RESULTS-image.md).
    "small": dict(base_channels=16, channel_mults=(1, 3, 5), attention_levels=(2,)),
    "base": dict(
        base_channels=64, channel_mults=(1, 2, 2), num_res_blocks=2, attention_levels=(1, 2)
    ),
}


def unet_preset(name: str, **overrides) -> UNetConfig:
    """The :class:`UNetConfig` of preset ``name`` (tiny | small | base), with overrides."""
    if name not in UNET_PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(UNET_PRESETS)}")
    return UNetConfig(**{**UNET_PRESETS[name], **overrides})


class _Block(nn.Module):
    """A residual block, optionally followed by (self- and/or cross-) attention."""

    def __init__(
        self, cin: int, cout: int, cfg: UNetConfig, attend: bool, cross: bool | None = None
    ) -> None:
        super().__init__()
        cross = attend if cross is None else cross
        self.res = ResBlock(cin, cout, cfg.time_embed_dim, cfg.groups, cfg.dropout)
        self.attn = Attention(cout, cfg.num_heads, groups=cfg.groups) if attend else None
        self.cross = (
            Attention(cout, cfg.num_heads, cfg.context_dim, cfg.groups)
            if cross and cfg.context_dim
            else None
        )

    def forward(
        self,
        x: torch.Tensor,
        emb: torch.Tensor,
        context: torch.Tensor | None,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = self.res(x, emb)
        if self.attn is not None:
            x = self.attn(x)
        if self.cross is not None:
            x = self.cross(x, context, context_mask)
        return x


class UNet(nn.Module):
    """Time- (and class-) conditioned U-Net: ``unet(x_t, t, labels=None, context=None)``."""

    def __init__(self, config: UNetConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or UNetConfig()
        widths = [cfg.base_channels * m for m in cfg.channel_mults]
        emb_dim = cfg.time_embed_dim

        # Conditioning: sinusoidal time features -> MLP, plus a class embedding (null class last).
        self.time_mlp = nn.Sequential(
            nn.Linear(cfg.base_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        self.class_embed = (
            nn.Embedding(cfg.num_classes + 1, emb_dim) if cfg.num_classes is not None else None
        )
        # A pooled text vector joins the time embedding (Saharia et al. 2022, Imagen, sec. 2.2)
        self.pooled_proj = nn.Linear(cfg.pooled_dim, emb_dim) if cfg.pooled_dim else None

        self.conv_in = nn.Conv2d(cfg.in_channels, widths[0], 3, padding=1)

        # Down path: remember the width of every tensor pushed on the skip stack.
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips, ch = [widths[0]], widths[0]
        for level, width in enumerate(widths):
            blocks = nn.ModuleList()
            for _ in range(cfg.num_res_blocks):
                blocks.append(
                    _Block(ch, width, cfg, level in cfg.attention_levels, level in cfg.cross_levels)
                )
                ch = width
                skips.append(ch)
            self.down.append(blocks)
            last = level == len(widths) - 1
            self.downsample.append(nn.Identity() if last else Downsample(ch))
            if not last:
                skips.append(ch)

        # Middle, at the lowest resolution: always with attention.
        self.mid1 = _Block(ch, ch, cfg, attend=True, cross=True)
        self.mid2 = _Block(ch, ch, cfg, attend=False, cross=False)

        # Up path: each block concatenates one skip tensor.
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level in reversed(range(len(widths))):
            blocks = nn.ModuleList()
            for _ in range(cfg.num_res_blocks + 1):
                blocks.append(
                    _Block(
                        ch + skips.pop(),
                        widths[level],
                        cfg,
                        level in cfg.attention_levels,
                        level in cfg.cross_levels,
                    )
                )
                ch = widths[level]
            self.up.append(blocks)
            self.upsample.append(Upsample(ch, cfg.upsample_conv) if level > 0 else nn.Identity())

        self.norm_out = group_norm(ch, cfg.groups)
        self.conv_out = zero_module(nn.Conv2d(ch, cfg.in_channels, 3, padding=1))

    @property
    def null_class(self) -> int | None:
        """The label meaning "no class" (classifier-free guidance), or None if unconditional."""
        return self.config.num_classes

    def embed(
        self,
        t: torch.Tensor,
        labels: torch.Tensor | None,
        batch: int,
        pooled: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The conditioning vector (B, emb_dim) from timesteps, class labels, pooled context."""
        t = torch.as_tensor(t, device=self.conv_in.weight.device)
        if t.ndim == 0:
            t = t.expand(batch)
        emb = self.time_mlp(timestep_embedding(t, self.config.base_channels))
        if self.class_embed is not None:
            if labels is None:  # unconditional: the null class
                labels = torch.full((batch,), self.null_class, device=emb.device)
            labels = torch.as_tensor(labels, device=emb.device).long()
            if labels.shape != (batch,):
                raise ValueError(f"labels must have shape ({batch},), got {tuple(labels.shape)}")
            if labels.min() < 0 or labels.max() > self.config.num_classes:
                raise ValueError(
                    f"labels must lie in [0, {self.config.num_classes}] "
                    f"({self.config.num_classes} is the null class)"
                )
            emb = emb + self.class_embed(labels)
        elif labels is not None:
            raise ValueError("this U-Net is unconditional (num_classes=None): do not pass labels")
        if self.pooled_proj is not None:
            if pooled is None:
                raise ValueError(f"this U-Net takes pooled (B, {self.config.pooled_dim})")
            emb = emb + self.pooled_proj(pooled.to(emb.dtype))
        return emb

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        labels: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
        pooled: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: (B, C, H, W) noisy images; t: (B,) float timesteps -> prediction (B, C, H, W).

        ``context`` (B, L, context_dim) with ``context_mask`` (B, L, True where padded) feeds
        the cross-attention blocks; ``pooled`` (B, pooled_dim) joins the time embedding.
        """
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"x must be (B, {self.config.in_channels}, H, W), got {tuple(x.shape)}"
            )
        emb = self.embed(t, labels, x.shape[0], pooled)

        h = self.conv_in(x)
        skips = [h]
        for blocks, down in zip(self.down, self.downsample):
            for block in blocks:
                h = block(h, emb, context, context_mask)
                skips.append(h)
            if not isinstance(down, nn.Identity):
                h = down(h)
                skips.append(h)

        h = self.mid2(self.mid1(h, emb, context, context_mask), emb, context)

        for blocks, up in zip(self.up, self.upsample):
            for block in blocks:
                h = block(torch.cat([h, skips.pop()], dim=1), emb, context, context_mask)
            if not isinstance(up, nn.Identity):
                h = up(h, size=skips[-1].shape[-2:])

        return self.conv_out(F.silu(self.norm_out(h)))
