"""A small KL-regularised autoencoder for latent diffusion, readable top to bottom.

The first stage of latent diffusion (Rombach et al. 2022, "High-Resolution Image Synthesis
with Latent Diffusion Models", sec. 3.1): an encoder maps an image to a diagonal Gaussian
posterior over a small latent, a decoder maps a latent back to an image, and a small KL term
towards N(0, I) keeps the latent space smooth (a VAE, Kingma & Welling 2014, with a weak
prior term). For 28 x 28 x 1 digits the default latent is 7 x 7 x 4 = 196 numbers, a quarter
of the 784 pixels: :class:`AutoencoderConfig` refuses a latent larger than a quarter of the
pixel count, the compression latent diffusion is for.

Layout (as diffusers' ``Encoder`` / ``Decoder``, smaller): a stem convolution, one level per
entry of ``channels`` (residual blocks, then a stride-2 downsample, 28 -> 14 -> 7), a middle
at the latent resolution (residual block, optional self-attention, residual block), and the
head (GroupNorm, SiLU, convolution) giving mean and log-variance. The decoder mirrors it with
nearest-neighbour upsampling. Blocks come from :mod:`synesthesia.nets.layers`.

Two views of the latent:

- unscaled: :meth:`AutoencoderKL.encode` gives the posterior, :meth:`AutoencoderKL.decode`
  takes an unscaled latent (what the autoencoder is trained on);
- scaled: :meth:`AutoencoderKL.encode_latents` multiplies by ``config.scaling_factor`` (the
  measured 1 / std of the training latents, so the diffusion model sees unit variance) and
  :meth:`AutoencoderKL.decode_latents` divides by it (diffusers' ``scaling_factor``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from synesthesia.nets.layers import Attention, Downsample, ResBlock, Upsample, group_norm

#: Bounds of the posterior's log-variance (as in Rombach et al.'s DiagonalGaussianDistribution):
#: exp(-30) ~ 1e-13 and exp(20) ~ 5e8 keep exp() finite in float32 and bf16.
LOGVAR_MIN, LOGVAR_MAX = -30.0, 20.0


def _halve(size: int) -> int:
    # output size of a 3x3 stride-2 convolution with padding 1: floor((n - 1) / 2) + 1
    return (size - 1) // 2 + 1


@dataclass
class AutoencoderConfig:
    """Hyper-parameters of :class:`AutoencoderKL` (saved as JSON next to the weights).

    ``channels`` has one width per level; each level ends with a 2x downsample, so the latent
    side is ``image_size`` halved ``len(channels)`` times (28 -> 14 -> 7 for two levels).
    ``scaling_factor`` is the measured 1 / std of the training set's latents; it lives here so
    that it travels with the weights.
    """

    in_channels: int = 1
    image_size: int = 28
    latent_channels: int = 4
    # 16/32 channels at 28/14 pixels: at equal CPU time a little better than 32/64 (28.1 vs
    # 27.5 dB; a 32/64 step takes 2.2x as long in bf16) with a quarter of the parameters, so
    # decoding latent samples costs less (benchmarks/RESULTS-autoencoder.md)
    channels: tuple[int, ...] = (16, 32)
    num_res_blocks: int = 1  # per level, in the encoder and in the decoder
    mid_attention: bool = False  # self-attention in the middle (at the latent resolution)
    num_heads: int = 4
    groups: int = 8
    scaling_factor: float = 1.0

    def __post_init__(self) -> None:
        self.channels = tuple(int(c) for c in self.channels)
        if not self.channels or min(self.channels) < 1:
            raise ValueError(f"channels must be positive widths, one per level: {self.channels}")
        for name in ("in_channels", "image_size", "latent_channels", "num_heads", "groups"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_res_blocks < 0:
            raise ValueError(f"num_res_blocks must be >= 0, got {self.num_res_blocks}")
        if not (float(self.scaling_factor) > 0 and float(self.scaling_factor) < float("inf")):
            raise ValueError(f"scaling_factor must be finite and > 0, got {self.scaling_factor}")
        self.scaling_factor = float(self.scaling_factor)
        if self.mid_attention and self.channels[-1] % self.num_heads:
            raise ValueError(
                f"channels[-1] ({self.channels[-1]}) must be divisible by num_heads "
                f"({self.num_heads}) for mid_attention"
            )
        latent, pixels = self.latent_numel, self.in_channels * self.image_size**2
        if 4 * latent > pixels:
            raise ValueError(
                f"a latent of {self.latent_shape} ({latent} numbers) is more than a quarter of "
                f"the {pixels} pixels; use fewer latent_channels or more levels"
            )

    @property
    def sizes(self) -> list[int]:
        """Side length at each level, from the image to the latent (28, 14, 7)."""
        sizes = [self.image_size]
        for _ in self.channels:
            sizes.append(_halve(sizes[-1]))
        return sizes

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one latent."""
        side = self.sizes[-1]
        return (self.latent_channels, side, side)

    @property
    def latent_numel(self) -> int:
        c, h, w = self.latent_shape
        return c * h * w

    def to_dict(self) -> dict:
        """A JSON-ready dict (tuples become lists)."""
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> AutoencoderConfig:
        """The inverse of :meth:`to_dict`; unknown keys raise a clear ValueError."""
        if not isinstance(d, dict):
            raise ValueError(f"an AutoencoderConfig must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown AutoencoderConfig keys {unknown}; known: {sorted(known)}")
        return cls(**d)


class DiagonalGaussian:
    """A diagonal Gaussian N(mean, exp(logvar)) per latent element; batch first.

    ``logvar`` is clamped to [:data:`LOGVAR_MIN`, :data:`LOGVAR_MAX`].
    """

    def __init__(self, mean: torch.Tensor, logvar: torch.Tensor) -> None:
        if mean.shape != logvar.shape:
            raise ValueError(f"mean {tuple(mean.shape)} and logvar {tuple(logvar.shape)} differ")
        self.mean = mean
        self.logvar = logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)
        self.std = torch.exp(0.5 * self.logvar)
        self.var = torch.exp(self.logvar)

    @classmethod
    def from_moments(cls, moments: torch.Tensor) -> DiagonalGaussian:
        """From the encoder's output (B, 2C, H, W): mean first, log-variance second."""
        mean, logvar = moments.chunk(2, dim=1)
        return cls(mean, logvar)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """A reparameterised draw ``mean + std * eps``, eps ~ N(0, I) from ``generator``
        (Kingma & Welling 2014, eq. 10)."""
        eps = torch.randn(
            self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype
        )
        return self.mean + self.std * eps

    def mode(self) -> torch.Tensor:
        """The most likely latent: the mean."""
        return self.mean

    def kl(self) -> torch.Tensor:
        """KL(q || N(0, I)) per item (B,), summed over the latent elements.

        Closed form for Gaussians, Kingma & Welling 2014 ("Auto-Encoding Variational Bayes"),
        appendix B: -KL = 1/2 sum(1 + log sigma^2 - mu^2 - sigma^2).
        """
        per_element = 0.5 * (self.mean.pow(2) + self.var - 1.0 - self.logvar)
        return per_element.flatten(1).sum(dim=1)


class _Encoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        ch = cfg.channels
        self.conv_in = nn.Conv2d(cfg.in_channels, ch[0], 3, padding=1)
        self.levels = nn.ModuleList()
        width = ch[0]
        for out in ch:
            blocks: list[nn.Module] = []
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResBlock(width, out, None, cfg.groups))
                width = out
            if width != out:  # no residual block to change the width: a 1x1 convolution
                blocks.append(nn.Conv2d(width, out, 1))
                width = out
            self.levels.append(nn.Sequential(*blocks, Downsample(out)))
        self.mid = _Middle(width, cfg)
        self.norm_out = group_norm(width, cfg.groups)
        self.conv_out = nn.Conv2d(width, 2 * cfg.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for level in self.levels:
            h = level(h)
        h = self.mid(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class _Middle(nn.Module):
    """Residual block, optional self-attention, residual block (at the latent resolution)."""

    def __init__(self, width: int, cfg: AutoencoderConfig) -> None:
        super().__init__()
        self.res1 = ResBlock(width, width, None, cfg.groups)
        self.attn = (
            Attention(width, cfg.num_heads, groups=cfg.groups) if cfg.mid_attention else None
        )
        self.res2 = ResBlock(width, width, None, cfg.groups)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.res1(h)
        if self.attn is not None:
            h = self.attn(h)
        return self.res2(h)


class _Decoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig) -> None:
        super().__init__()
        ch = cfg.channels
        self.sizes = cfg.sizes[:-1][::-1]  # the side after each upsampling (14, 28)
        width = ch[-1]
        self.conv_in = nn.Conv2d(cfg.latent_channels, width, 3, padding=1)
        self.mid = _Middle(width, cfg)
        self.up = nn.ModuleList()
        self.levels = nn.ModuleList()
        for out in reversed(ch):
            # nearest-neighbour upsampling; the next block's first 3x3 convolution smooths it
            self.up.append(Upsample(width, conv=cfg.num_res_blocks == 0))
            blocks: list[nn.Module] = []
            for _ in range(cfg.num_res_blocks):
                blocks.append(ResBlock(width, out, None, cfg.groups))
                width = out
            if width != out:
                blocks.append(nn.Conv2d(width, out, 1))
                width = out
            self.levels.append(nn.Sequential(*blocks))
        self.norm_out = group_norm(width, cfg.groups)
        self.conv_out = nn.Conv2d(width, cfg.in_channels, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        for up, level, size in zip(self.up, self.levels, self.sizes, strict=True):
            h = level(up(h, size=(size, size)))
        return self.conv_out(F.silu(self.norm_out(h)))


class AutoencoderKL(nn.Module):
    """KL autoencoder: ``encode(x) -> DiagonalGaussian``, ``decode(z) -> images``.

    Images are (B, C, H, W) in [-1, 1]; the decoder's output is unbounded but trained towards
    that range. ``forward(x, generator)`` is the training pass: a posterior sample (its mean
    when ``generator`` is None) decoded, and the posterior for the KL term.
    """

    def __init__(self, config: AutoencoderConfig | None = None) -> None:
        super().__init__()
        self.config = config or AutoencoderConfig()
        self.encoder = _Encoder(self.config)
        self.decoder = _Decoder(self.config)

    @property
    def scaling_factor(self) -> float:
        """The latent scaling factor (1 / std of the training latents), from the config."""
        return self.config.scaling_factor

    def _check_images(self, x: torch.Tensor) -> None:
        cfg = self.config
        want = (cfg.in_channels, cfg.image_size, cfg.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(
                f"images must be (B, {', '.join(map(str, want))}), got {tuple(x.shape)}"
            )

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """The posterior q(z | x) over UNSCALED latents (B, *latent_shape)."""
        self._check_images(x)
        return DiagonalGaussian.from_moments(self.encoder(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images (B, C, H, W), about [-1, 1], from UNSCALED latents (B, *latent_shape)."""
        want = self.config.latent_shape
        if z.ndim != 4 or tuple(z.shape[1:]) != want:
            raise ValueError(
                f"latents must be (B, {', '.join(map(str, want))}), got {tuple(z.shape)}"
            )
        return self.decoder(z)

    def forward(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, DiagonalGaussian]:
        """``(reconstruction, posterior)``: a posterior sample (the mean without ``generator``)
        decoded."""
        posterior = self.encode(x)
        z = posterior.sample(generator) if generator is not None else posterior.mode()
        return self.decode(z), posterior

    def encode_latents(
        self, x: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """SCALED latents for diffusion: ``scaling_factor * z`` with z a posterior sample
        (drawn from ``generator``) or, without a generator, the posterior mean."""
        posterior = self.encode(x)
        z = posterior.sample(generator) if generator is not None else posterior.mode()
        return z * self.config.scaling_factor

    def decode_latents(self, z_scaled: torch.Tensor) -> torch.Tensor:
        """Images from SCALED latents: ``decode(z_scaled / scaling_factor)``."""
        return self.decode(z_scaled / self.config.scaling_factor)
