"""Building blocks shared by the U-Nets: time embedding, residual blocks, attention, resampling.

Every block that takes a conditioning vector ``emb`` (time + class) or a token sequence
``context`` (e.g. text) accepts them as optional arguments, so the same blocks serve the
class-conditional U-Net and a text-conditioned one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding (B, dim) of float timesteps ``t`` (B,); fractional t are fine.

    Transformer positional encoding (Vaswani et al. 2017, sec. 3.5), as used for diffusion
    timesteps by DDPM (Ho et al. 2020, appendix B).
    """
    if t.ndim != 1:
        raise ValueError(f"t must be a 1-D tensor of timesteps (B,), got shape {tuple(t.shape)}")
    if dim % 2:
        raise ValueError(f"dim must be even, got {dim}")
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half
    )
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def group_norm(channels: int, groups: int = 8) -> nn.GroupNorm:
    """GroupNorm with ``min(groups, channels)`` groups that divide ``channels``."""
    g = math.gcd(min(groups, channels), channels)
    return nn.GroupNorm(g, channels)


def zero_module(module: nn.Module) -> nn.Module:
    """Zero a module's parameters: residual branches start as the identity (Dhariwal & Nichol)."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """Residual block: GroupNorm, SiLU, conv, then scale-shift conditioning on ``emb``.

    ``h = GN(h) * (1 + scale) + shift`` with ``(scale, shift) = Linear(SiLU(emb))``: the
    adaptive group normalisation of Dhariwal & Nichol 2021 ("Diffusion Models Beat GANs", sec. 3).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        emb_dim: int | None,
        groups: int = 8,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.norm1 = group_norm(in_channels, groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.emb_proj = nn.Linear(emb_dim, 2 * out_channels) if emb_dim else None
        self.norm2 = group_norm(out_channels, groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = zero_module(nn.Conv2d(out_channels, out_channels, 3, padding=1))
        self.skip = (
            nn.Identity()
            if in_channels == out_channels
            else nn.Conv2d(in_channels, out_channels, 1)
        )

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, C_in, H, W); emb: (B, emb_dim) or None -> (B, C_out, H, W)."""
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.norm2(h)
        if self.emb_proj is not None:
            if emb is None:
                raise ValueError("this ResBlock is conditioned: pass emb (B, emb_dim)")
            scale, shift = self.emb_proj(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


def sdpa(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """``F.scaled_dot_product_attention`` of (B, heads, N, d) tensors, in float32 on the CPU.

    ``attn_mask``: optional boolean mask broadcastable to (B, heads, N, M), True where a query
    may attend to a key. Under bf16 autocast on the CPU, the fused attention kernel's backward
    pass is about 8x slower in bf16 than in float32 for the short sequences of a small U-Net
    (19.5 vs 2.5 ms for 64 x 4 heads x 49 tokens x 16 dims, forward + backward, torch 2.13 on 2
    cores), so on the CPU the attention core runs in float32 (also the more accurate choice)
    and the result returns in the input dtype. On other devices the input dtype is kept.
    """
    if q.device.type != "cpu" or q.dtype == torch.float32:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    with torch.autocast("cpu", enabled=False):
        out = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), attn_mask=attn_mask)
    return out.to(q.dtype)


class Attention(nn.Module):
    """Multi-head attention of image tokens (queries) over image tokens or a ``context``.

    Self-attention when ``context_dim`` is None; cross-attention over ``context`` (B, L, D)
    otherwise (keys and values from the context, as in Rombach et al. 2022, sec. 3.3).
    Computed by ``F.scaled_dot_product_attention`` (Vaswani et al. 2017, eq. 1).
    """

    def __init__(
        self, channels: int, num_heads: int = 4, context_dim: int | None = None, groups: int = 8
    ) -> None:
        super().__init__()
        if channels % num_heads:
            raise ValueError(f"channels ({channels}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.context_dim = context_dim
        self.norm = group_norm(channels, groups)
        self.to_q = nn.Linear(channels, channels, bias=False)
        self.to_kv = nn.Linear(context_dim or channels, 2 * channels, bias=False)
        self.proj = zero_module(nn.Linear(channels, channels))

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: (B, C, H, W); context: (B, L, context_dim) for cross-attention -> (B, C, H, W).

        ``context_mask`` (B, L), True where a context token is padding: padded tokens get no
        attention weight, so padding never changes the output. Every row must keep at least
        one token (a prompt keeps its ``[CLS]``).
        """
        b, c, hgt, wid = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (B, HW, C)
        mask = None
        if self.context_dim is None:
            source = tokens
        elif context is None:
            raise ValueError("this is a cross-attention block: pass context (B, L, context_dim)")
        else:
            source = context
            if context_mask is not None:
                if context_mask.shape != context.shape[:2]:
                    raise ValueError(
                        f"context_mask must be (B, L) = {tuple(context.shape[:2])}, got "
                        f"{tuple(context_mask.shape)}"
                    )
                keep = ~context_mask.bool()
                if not bool(keep.any(dim=1).all()):
                    raise ValueError("context_mask pads every token of some row; keep one")
                mask = keep[:, None, None, :]  # (B, 1, 1, L): every head and query
        q = self.to_q(tokens)
        k, v = self.to_kv(source).chunk(2, dim=-1)

        def heads(z: torch.Tensor) -> torch.Tensor:
            return z.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)  # (B, heads, N, d)

        out = sdpa(heads(q), heads(k), heads(v), attn_mask=mask)
        out = self.proj(out.transpose(1, 2).flatten(2))  # (B, HW, C)
        return x + out.transpose(1, 2).reshape(b, c, hgt, wid)


class Downsample(nn.Module):
    """Halve the resolution with a stride-2 3x3 convolution (28 -> 14 -> 7)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Resize to ``size`` by nearest neighbour, then (if ``conv``) a 3x3 convolution.

    Without ``conv`` the next block's first 3x3 convolution does the smoothing, which saves
    the most expensive convolution of a small U-Net (full resolution, wide input).
    """

    def __init__(self, channels: int, conv: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1) if conv else nn.Identity()

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.conv(F.interpolate(x, size=size, mode="nearest"))
