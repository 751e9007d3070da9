"""Noise correlated across the frames of a video, as a change of variables.

Ge et al. 2023 ("Preserve Your Own Correlation", PYoCo, sec. 3.2, mixed noise) fine-tune an
image diffusion model into a video model with noise whose frames share a component: per
position, ``eps_f = sqrt(rho) xi + sqrt(1 - rho) eta_f`` with ``xi, eta_f ~ N(0, 1)``, so
every frame's noise is still standard normal (what the image model was trained on) while
two frames' noises have correlation ``rho``. Its covariance over the F frames is
``S = (1 - rho) I + rho 1 1^T``.

Here the correlated process is written as the ordinary (white-noise) one on ``y = M^-1 x``
with ``M = S^(1/2)``: ``x_t = M y_t = sqrt(abar) x0 + sqrt(1 - abar) M eps`` with
``M eps ~ N(0, S)``. Every sampler and objective then runs unchanged in ``y``; the network
sees ``x_t = M y_t`` (frames with the noise it knows) and, as each prediction (eps, x0, v)
is linear in ``(x0, eps)``, its output in ``x`` maps to ``y`` by ``M^-1``
(:class:`FrameCorrelatedDenoiser`). ``M`` acts on the frame mean and the deviations from it
(``P = 1 1^T / F``): ``M = sqrt(1 - rho + rho F) P + sqrt(1 - rho) (I - P)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def _factors(rho: torch.Tensor | float, frames: int, inverse: bool) -> tuple:
    """The scale of the frame mean and of the deviations under ``M`` (or ``M^-1``)."""
    rho = torch.as_tensor(rho, dtype=torch.float64)
    if bool(((rho < 0) | (rho >= 1)).any()):
        raise ValueError(f"frame noise correlation must lie in [0, 1), got {rho.tolist()}")
    mean = torch.sqrt(1.0 - rho + rho * frames)  # eigenvalue of S on 1: 1 - rho + rho F
    dev = torch.sqrt(1.0 - rho)  # on the vectors orthogonal to 1
    return (1.0 / mean, 1.0 / dev) if inverse else (mean, dev)


def mix_frames(
    x: torch.Tensor, rho: torch.Tensor | float, inverse: bool = False, dim: int = 2
) -> torch.Tensor:
    """``M x`` (or ``M^-1 x`` with ``inverse``) along the frame axis ``dim`` of ``x`` (B, C,
    F, H, W by default); ``rho`` a number or one per item (B,) (0: the identity)."""
    frames = x.shape[dim]
    mean_s, dev_s = _factors(rho, frames, inverse)
    shape = [-1] + [1] * (x.ndim - 1) if mean_s.ndim else []
    work = torch.promote_types(x.dtype, torch.float32)  # bf16 in float32, float64 kept
    mean_s = mean_s.to(x.device, work).reshape(shape)
    dev_s = dev_s.to(x.device, work).reshape(shape)
    x_w = x.to(work)
    mean = x_w.mean(dim=dim, keepdim=True)
    return (mean_s * mean + dev_s * (x_w - mean)).to(x.dtype)


def correlated_noise(
    shape: tuple[int, ...], rho: float, generator: torch.Generator | None = None, dim: int = 2
) -> torch.Tensor:
    """Noise of ``shape`` whose frames (axis ``dim``) have correlation ``rho``, drawn as in
    PYoCo (a shared part plus a per-frame part); each element is standard normal."""
    # Ge et al. 2023, eq. 3 (mixed noise): eps_f = sqrt(rho) xi + sqrt(1 - rho) eta_f
    shared_shape = list(shape)
    shared_shape[dim] = 1
    eta = torch.randn(shape, generator=generator)
    xi = torch.randn(shared_shape, generator=generator)
    return math.sqrt(rho) * xi + math.sqrt(1.0 - rho) * eta


class FrameCorrelatedDenoiser:
    """A denoiser of ``y`` from one of ``x = M y``: ``out_y = M^-1 net(M y_t, t, **cond)``.

    ``net`` is a denoiser of videos (B, C, F, H, W) trained on frame-correlated noise (its
    input and output in ``x``); ``rho`` a number or one per item (B,).
    """

    def __init__(self, net: Callable[..., torch.Tensor], rho: torch.Tensor | float) -> None:
        self.net, self.rho = net, rho

    def __call__(self, y_t: torch.Tensor, t: torch.Tensor, **cond) -> torch.Tensor:
        rho = self.rho
        if isinstance(rho, torch.Tensor) and rho.ndim and len(rho) != len(y_t):
            raise ValueError(f"rho has {len(rho)} entries for a batch of {len(y_t)}")
        out = self.net(mix_frames(y_t, rho), t, **cond)
        return mix_frames(out, rho, inverse=True)


__all__ = ["FrameCorrelatedDenoiser", "correlated_noise", "mix_frames"]
