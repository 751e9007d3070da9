"""Space-time U-Nets for video (B, C, F, H, W): factorised (Ho et al. 2022) and plain Conv3d.

:class:`VideoUNet` is the factorised space-time U-Net of Ho et al. 2022 ("Video Diffusion
Models", sec. 3): the image :class:`~synesthesia.nets.unet.UNet` runs on every frame (its 2-D
convolutions, self- and cross-attention, unchanged, under ``self.unet`` with the image
model's parameter names), and after each of its residual/attention blocks a temporal layer
mixes the frames at every spatial position:

- ``"attention"``: multi-head self-attention over the F frames of one position, with a
  learned relative-position bias per head (Ho et al. 2022 use relative position embeddings so
  that the layer knows frame order; the bias is T5's, Raffel et al. 2020, sec. 2.1);
- ``"conv"``: a 1-D convolution over frames (kernel 3), the temporal half of a (2+1)-D
  convolution (Tran et al. 2018; Singer et al. 2022, Make-A-Video, sec. 3.2).

Each temporal layer is residual with its output projection zero-initialised, so a fresh
video model computes exactly the image model frame by frame, and a trained image U-Net can be
loaded into ``video.unet`` as the starting point. ``independent`` (B,) marks items whose
frames are independent images (joint image-video training, Ho et al. 2022, sec. 3.2): their
temporal layers are skipped, so each frame's output depends on that frame only.

The temporal layers are applied through forward hooks registered for the duration of one
call on the image U-Net's blocks (none remain between calls), so ``nets/unet.py`` needs no
video code.

:class:`Conv3dUNet` is the chapter's layout (sec. 13.4.1: 3 x 3 x 3 convolutions over
space and time) built out to a full U-Net with the same levels, conditioning and
cross-attention, as the baseline of equal parameter count (:func:`conv3d_config`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from synesthesia.errors import InputError
from synesthesia.nets.layers import Attention, group_norm, sdpa, timestep_embedding, zero_module
from synesthesia.nets.text_unet import TextConditionedUNet
from synesthesia.nets.unet import UNet, UNetConfig

LAYOUTS = ("factorised", "conv3d")
TEMPORAL_KINDS = ("attention", "conv")
#: The per-video conditioning a video U-Net passes to every frame.
CONDITIONS = ("labels", "context", "context_mask", "pooled")


@dataclass
class VideoUNetConfig:
    """Hyper-parameters of a video U-Net: the per-frame image U-Net's config, the frame count
    and the temporal layers (``temporal=()`` gives the per-frame model, no temporal mixing)."""

    spatial: UNetConfig = field(default_factory=UNetConfig)
    frames: int = 8
    layout: str = "factorised"
    temporal: tuple[str, ...] = TEMPORAL_KINDS
    # levels with temporal layers (indices into channel_mults, -1 the lowest resolution; the
    # middle has them when the lowest level does); None: every level
    temporal_levels: tuple[int, ...] | None = None
    # further levels with a temporal convolution only (no attention): cheap at the fine
    # resolutions, where a motion of a pixel or two per frame is still visible
    conv_levels: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if isinstance(self.spatial, dict):
            self.spatial = UNetConfig.from_dict(self.spatial)
        self.temporal = tuple(self.temporal)
        if self.temporal_levels is not None:
            self.temporal_levels = tuple(self.temporal_levels)
        self.conv_levels = tuple(self.conv_levels)
        if self.conv_levels and "conv" not in self.temporal:
            raise ValueError("conv_levels needs temporal convolutions ('conv' in temporal)")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        bad = [k for k in self.temporal if k not in TEMPORAL_KINDS]
        if bad:
            raise ValueError(f"temporal layers {bad} unknown; choose from {TEMPORAL_KINDS}")
        if not isinstance(self.frames, int) or self.frames < 1:
            raise ValueError(f"frames must be a positive integer, got {self.frames!r}")

    # what TextConditionedUNet reads from its U-Net's config
    @property
    def context_dim(self) -> int | None:
        return self.spatial.context_dim

    @property
    def pooled_dim(self) -> int | None:
        return self.spatial.pooled_dim

    @property
    def num_classes(self) -> int | None:
        return self.spatial.num_classes

    @property
    def in_channels(self) -> int:
        return self.spatial.in_channels

    @property
    def image_size(self) -> int:
        return self.spatial.image_size

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return {
            "spatial": self.spatial.to_dict(),
            "frames": self.frames,
            "layout": self.layout,
            "temporal": list(self.temporal),
            "temporal_levels": None if self.temporal_levels is None else list(self.temporal_levels),
            "conv_levels": list(self.conv_levels),
        }

    @classmethod
    def from_dict(cls, d: dict) -> VideoUNetConfig:
        """The inverse of :meth:`to_dict`; unknown keys raise a clear ValueError."""
        known = {"spatial", "frames", "layout", "temporal", "temporal_levels", "conv_levels"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown VideoUNetConfig keys {unknown}; known: {sorted(known)}")
        return cls(**d)


def check_video(x: torch.Tensor, config: VideoUNetConfig) -> tuple[int, int, int, int, int]:
    """(B, C, F, H, W) of a video batch, or one clear error (dimensions, channels, frames)."""
    if not isinstance(x, torch.Tensor) or x.ndim != 5:
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise InputError(f"a video batch must have 5 dimensions (B, C, F, H, W), got shape {shape}")
    b, c, f, h, w = x.shape
    if c != config.in_channels:
        raise InputError(f"the video has {c} channels, the model takes {config.in_channels}")
    if f > config.frames and config.layout == "factorised" and "attention" in config.temporal:
        raise InputError(
            f"the video has {f} frames, the model was built for at most {config.frames} "
            "(its relative-position table)"
        )
    return b, c, f, h, w


class TemporalLayer(nn.Module):
    """Residual mixing of frames at each position: ``h (N, C, F) -> h + conv + attention``.

    Both branches end in a zero-initialised projection (Dhariwal & Nichol 2021's residual
    start), so a fresh layer is the identity, exactly.
    """

    def __init__(
        self, channels: int, frames: int, kinds: tuple[str, ...], heads: int, groups: int
    ) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        self.frames, self.heads = frames, heads
        self.conv = None
        if "conv" in kinds:
            self.conv_norm = group_norm(channels, groups)
            self.conv = zero_module(nn.Conv1d(channels, channels, 3, padding=1))
        self.attn = None
        if "attention" in kinds:
            self.attn_norm = group_norm(channels, groups)
            self.attn = nn.Linear(channels, 3 * channels, bias=False)
            # one bias per head and frame offset -(F-1)..(F-1) (Raffel et al. 2020, sec. 2.1)
            self.rel_bias = nn.Parameter(torch.zeros(heads, 2 * frames - 1))
            self.proj = zero_module(nn.Linear(channels, channels))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """h: (N, C, F), N = batch x positions -> (N, C, F)."""
        if self.conv is not None:
            h = h + self.conv(F.silu(self.conv_norm(h)))
        if self.attn is not None:
            n, c, f = h.shape
            tokens = self.attn_norm(h).transpose(1, 2)  # (N, F, C)
            q, k, v = (
                z.unflatten(-1, (self.heads, -1)).transpose(1, 2)  # (N, heads, F, d)
                for z in self.attn(tokens).chunk(3, dim=-1)
            )
            offset = torch.arange(f, device=h.device)
            rel = offset[None, :] - offset[:, None] + self.frames - 1  # key - query, shifted
            bias = self.rel_bias[:, rel][None]  # (1, heads, F, F)
            # Vaswani et al. 2017 eq. 1 plus the bias, in float32 (the CPU path of sdpa casts
            # q, k, v but not a float mask)
            out = sdpa(q.float(), k.float(), v.float(), attn_mask=bias.float())
            h = h + self.proj(out.transpose(1, 2).flatten(2)).transpose(1, 2)
        return h


def _mix_frames(
    layer: TemporalLayer, out: torch.Tensor, frames: int, keep: torch.Tensor | None
) -> torch.Tensor:
    """Apply ``layer`` across frames to a block output (B*F, C, H, W); items not in ``keep``
    (independent frames) pass through unchanged."""
    bf, c, h, w = out.shape
    v = out.reshape(bf // frames, frames, c, h, w)
    sel = v if keep is None else v[keep]
    n = sel.shape[0]
    seq = sel.permute(0, 3, 4, 2, 1).reshape(n * h * w, c, frames)
    mixed = layer(seq).reshape(n, h, w, c, frames).permute(0, 4, 3, 1, 2)
    if keep is None:
        v = mixed
    else:
        v = v.clone()
        v[keep] = mixed.to(v.dtype)
    return v.reshape(bf, c, h, w)


def _expand(value: torch.Tensor | None, frames: int) -> torch.Tensor | None:
    """Per-video conditioning (B, ...) repeated for each frame (B*F, ...)."""
    if value is None:
        return None
    return torch.as_tensor(value).repeat_interleave(frames, dim=0)


def _keep(independent: torch.Tensor | None, batch: int, device) -> torch.Tensor | None:
    """None (every item mixes frames) or a boolean (B,) of the items that do."""
    if independent is None:
        return None
    ind = torch.as_tensor(independent, device=device).bool().reshape(-1)
    if ind.shape != (batch,):
        raise InputError(f"independent must have shape ({batch},), got {tuple(ind.shape)}")
    return None if not bool(ind.any()) else ~ind


class _VideoNet(nn.Module):
    """What both layouts share: the call, its checks, and per-video conditioning."""

    config: VideoUNetConfig

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, independent: torch.Tensor | None = None, **cond
    ) -> torch.Tensor:
        """x: (B, C, F, H, W) noisy videos; t: (B,) timesteps; ``cond``: per-video ``labels``
        (B,), ``context`` (B, L, D) with ``context_mask`` (B, L), ``pooled`` (B, D), as the
        image U-Net takes them; ``independent`` (B,) True where an item's frames are unrelated
        images (their temporal mixing is skipped) -> the prediction (B, C, F, H, W)."""
        b = check_video(x, self.config)[0]
        t = torch.as_tensor(t, device=x.device)
        unknown = sorted(set(cond) - set(CONDITIONS))
        if unknown:
            raise TypeError(f"unknown conditioning {unknown}; a video U-Net takes {CONDITIONS}")
        cond = {k: cond.get(k) for k in CONDITIONS}
        return self.run(x, t.expand(b) if t.ndim == 0 else t, cond, _keep(independent, b, x.device))

    def run(
        self, x: torch.Tensor, t: torch.Tensor, cond: dict, keep: torch.Tensor | None
    ) -> torch.Tensor:
        raise NotImplementedError


class VideoUNet(_VideoNet):
    """Factorised space-time U-Net: ``net(x (B, C, F, H, W), t (B,), ...) -> (B, C, F, H, W)``."""

    def __init__(self, config: VideoUNetConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or VideoUNetConfig()
        if cfg.layout != "factorised":
            raise ValueError(f"VideoUNet is the factorised layout; use build_video_unet for {cfg}")
        self.unet = UNet(cfg.spatial)
        self.temporal = nn.ModuleDict()
        n = len(cfg.spatial.channel_mults)
        levels = range(n) if cfg.temporal_levels is None else {lv % n for lv in cfg.temporal_levels}
        conv_only = {lv % n for lv in cfg.conv_levels} - set(levels)
        if cfg.temporal:
            for name, level, block in self.blocks():
                kinds = cfg.temporal if level in levels else ("conv",) if level in conv_only else ()
                if kinds:
                    width = block.res.conv2.out_channels
                    self.temporal[name] = TemporalLayer(
                        width, cfg.frames, kinds, cfg.spatial.num_heads, cfg.spatial.groups
                    )

    def blocks(self) -> Iterator[tuple[str, int, nn.Module]]:
        """``(name, level, block)`` of every block of the image U-Net, in the order it runs."""
        unet, last = self.unet, len(self.config.spatial.channel_mults) - 1
        for i, blocks in enumerate(unet.down):
            for j, block in enumerate(blocks):
                yield f"down{i}_{j}", i, block
        yield "mid1", last, unet.mid1
        yield "mid2", last, unet.mid2
        for k, blocks in enumerate(unet.up):
            for j, block in enumerate(blocks):
                yield f"up{last - k}_{j}", last - k, block

    @property
    def null_class(self) -> int | None:
        return self.unet.null_class

    def run(
        self, x: torch.Tensor, t: torch.Tensor, cond: dict, keep: torch.Tensor | None
    ) -> torch.Tensor:
        """The image U-Net on the B*F frames, a temporal layer after each block that has one."""
        b, c, f, h, w = x.shape
        hooks = []
        if keep is None or bool(keep.any()):
            for name, _, block in self.blocks():
                if name in self.temporal:

                    def hook(module, inputs, output, layer=self.temporal[name]):
                        return _mix_frames(layer, output, f, keep)

                    hooks.append(block.register_forward_hook(hook))
        try:
            per_frame = {k: _expand(v, f) for k, v in cond.items()}
            frames = x.transpose(1, 2).reshape(b * f, c, h, w)
            out = self.unet(frames, t.repeat_interleave(f), **per_frame)
        finally:
            for handle in hooks:
                handle.remove()
        return out.reshape(b, f, c, h, w).transpose(1, 2)


# ---------------------------------------------------------------------- the Conv3d baseline
class _Res3d(nn.Module):
    """A residual block of 3 x 3 x 3 convolutions with scale-shift conditioning (the 3-D
    counterpart of :class:`~synesthesia.nets.layers.ResBlock`)."""

    def __init__(self, cin: int, cout: int, emb_dim: int, groups: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = group_norm(cin, groups), group_norm(cout, groups)
        self.conv1 = nn.Conv3d(cin, cout, 3, padding=1)
        self.emb_proj = nn.Linear(emb_dim, 2 * cout)
        self.conv2 = zero_module(nn.Conv3d(cout, cout, 3, padding=1))
        self.skip = nn.Identity() if cin == cout else nn.Conv3d(cin, cout, 1)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.norm2(self.conv1(F.silu(self.norm1(x))))
        # adaptive group norm (Dhariwal & Nichol 2021, sec. 3)
        scale, shift = self.emb_proj(F.silu(emb))[:, :, None, None, None].chunk(2, dim=1)
        return self.skip(x) + self.conv2(F.silu(h * (1 + scale) + shift))


def _per_frame(attn: Attention, x: torch.Tensor, context, context_mask) -> torch.Tensor:
    """A 2-D attention block applied to every frame of (B, C, F, H, W)."""
    b, c, f, h, w = x.shape
    frames = x.transpose(1, 2).reshape(b * f, c, h, w)
    out = attn(frames, _expand(context, f), _expand(context_mask, f))
    return out.reshape(b, f, c, h, w).transpose(1, 2)


class _Level3d(nn.Module):
    """One resolution of the Conv3d U-Net, holding the coarser ones inside it: residual
    blocks going down, a stride-(1, 2, 2) convolution into the next level (or, at the
    lowest, the middle: block, per-frame self- and cross-attention, block), nearest
    upsampling back, and one more block going up than down, each reading one skip tensor
    (the level's input, then each down block's output, last first)."""

    def __init__(self, cin: int, widths: list[int], cfg: UNetConfig) -> None:
        super().__init__()
        w, n, emb, g = widths[0], cfg.num_res_blocks, cfg.time_embed_dim, cfg.groups
        self.down = nn.ModuleList(_Res3d(cin if i == 0 else w, w, emb, g) for i in range(n))
        if len(widths) > 1:
            self.pool = nn.Conv3d(w, w, 3, stride=(1, 2, 2), padding=1)
            self.inner: nn.Module = _Level3d(w, widths[1:], cfg)
            below = widths[1]
        else:
            self.mid = nn.ModuleList([_Res3d(w, w, emb, g), _Res3d(w, w, emb, g)])
            self.attn = Attention(w, cfg.num_heads, groups=g)
            cross = cfg.context_dim is not None
            self.cross = Attention(w, cfg.num_heads, cfg.context_dim, g) if cross else None
            below = w
        skips = [cin] + [w] * n
        self.up = nn.ModuleList(
            _Res3d((below if i == 0 else w) + skips.pop(), w, emb, g) for i in range(n + 1)
        )

    def forward(self, h: torch.Tensor, emb: torch.Tensor, cond: dict) -> torch.Tensor:
        skips = [h]
        for block in self.down:
            h = block(h, emb)
            skips.append(h)
        if hasattr(self, "inner"):
            h = self.inner(self.pool(h), emb, cond)
            h = F.interpolate(h, size=skips[-1].shape[-3:], mode="nearest")
        else:
            h = _per_frame(self.attn, self.mid[0](h, emb), None, None)
            if self.cross is not None:
                h = _per_frame(self.cross, h, cond["context"], cond["context_mask"])
            h = self.mid[1](h, emb)
        for block in self.up:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return h


class Conv3dUNet(_VideoNet):
    """The chapter's layout as a U-Net: Conv3d residual blocks at every level of the image
    U-Net's config, per-frame self- and cross-attention at the lowest level, the same
    time and pooled-text conditioning as :class:`~synesthesia.nets.unet.UNet`."""

    def __init__(self, config: VideoUNetConfig) -> None:
        super().__init__()
        self.config = config
        cfg = config.spatial
        widths = [cfg.base_channels * m for m in cfg.channel_mults]
        emb = cfg.time_embed_dim
        self.time_mlp = nn.Sequential(
            nn.Linear(cfg.base_channels, emb), nn.SiLU(), nn.Linear(emb, emb)
        )
        self.pooled_proj = nn.Linear(cfg.pooled_dim, emb) if cfg.pooled_dim else None
        self.conv_in = nn.Conv3d(cfg.in_channels, widths[0], 3, padding=1)
        self.levels = _Level3d(widths[0], widths, cfg)
        self.norm_out = group_norm(widths[0], cfg.groups)
        self.conv_out = zero_module(nn.Conv3d(widths[0], cfg.in_channels, 3, padding=1))

    @property
    def null_class(self) -> None:
        return None

    def run(
        self, x: torch.Tensor, t: torch.Tensor, cond: dict, keep: torch.Tensor | None
    ) -> torch.Tensor:
        """3-D convolutions always mix frames: items with independent frames are refused."""
        if cond["labels"] is not None:
            raise InputError("the Conv3d U-Net is text-conditioned: pass no labels")
        if keep is not None:
            raise InputError("the Conv3d U-Net cannot mask temporal mixing (image_fraction 0)")
        # sinusoidal time features -> MLP (Ho et al. 2020, appendix B), plus the pooled prompt
        emb = self.time_mlp(timestep_embedding(t, self.config.spatial.base_channels))
        if self.pooled_proj is not None:
            emb = emb + self.pooled_proj(cond["pooled"].to(emb.dtype))
        h = self.levels(self.conv_in(x), emb, cond)
        return self.conv_out(F.silu(self.norm_out(h)))


def build_video_unet(config: VideoUNetConfig) -> nn.Module:
    """The network of a config: :class:`VideoUNet` or :class:`Conv3dUNet`."""
    return VideoUNet(config) if config.layout == "factorised" else Conv3dUNet(config)


def count_parameters(module: nn.Module) -> int:
    """The number of parameters (trained or frozen)."""
    return sum(p.numel() for p in module.parameters())


def conv3d_config(config: VideoUNetConfig, step: int | None = None) -> VideoUNetConfig:
    """The Conv3d layout with the base width (a multiple of ``step``, default the number of
    attention heads) whose parameter count is closest to that of ``config``'s network."""
    step = step or config.spatial.num_heads
    target = count_parameters(build_video_unet(config))
    best = None
    for base in range(step, 8 * config.spatial.base_channels + step, step):
        spatial = UNetConfig.from_dict({**config.spatial.to_dict(), "base_channels": base})
        candidate = VideoUNetConfig(spatial, config.frames, "conv3d", (), None)
        gap = abs(count_parameters(Conv3dUNet(candidate)) - target)
        if best is None or gap < best[0]:
            best = (gap, candidate)
    return best[1]


class TextConditionedVideoUNet(TextConditionedUNet):
    """A text encoder and a video U-Net as one module: ``model(x (B, C, F, H, W), t,
    ids=..., mask=..., independent=...)`` in training, or with an encoded ``context``,
    ``context_mask`` and ``pooled`` in sampling (the prompt encoded once for every step)."""

    def forward(
        self, x: torch.Tensor, t: torch.Tensor, independent: torch.Tensor | None = None, **text
    ) -> torch.Tensor:
        """``text``: ``ids`` and ``mask``, or ``context``, ``context_mask`` and ``pooled``."""
        if "context" not in text:
            if text.get("ids") is None or text.get("mask") is None:
                raise ValueError("pass ids and mask, or context and context_mask")
            text = self.encode_text(text["ids"], text["mask"])
        return self.unet(x, t, **text, independent=independent)


__all__ = [
    "Conv3dUNet",
    "LAYOUTS",
    "TEMPORAL_KINDS",
    "TemporalLayer",
    "TextConditionedVideoUNet",
    "VideoUNet",
    "VideoUNetConfig",
    "build_video_unet",
    "check_video",
    "conv3d_config",
    "count_parameters",
]
