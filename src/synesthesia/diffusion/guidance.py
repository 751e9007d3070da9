"""Classifier-free guidance as a wrapper around any denoiser."""

from __future__ import annotations

import math

import torch

from synesthesia.diffusion.objectives import Denoiser
from synesthesia.errors import InputError


def _expand(value, batch: int, key: str):
    if not isinstance(value, torch.Tensor) or value.ndim == 0:
        return value
    if value.shape[0] == batch:
        return value
    if value.shape[0] == 1:
        return value.expand(batch, *value.shape[1:])
    raise ValueError(f"uncond[{key!r}] has batch size {value.shape[0]}; expected 1 or {batch}")


def cfg_denoiser(
    denoiser: Denoiser,
    guidance_scale: float,
    uncond: dict,
    guidance_rescale: float = 0.0,
) -> Denoiser:
    """A denoiser that returns ``u + w (c - u)`` from one batched call on [cond; uncond].

    ``w = guidance_scale``: 0 gives the unconditional model, 1 the conditional one, > 1 guides.
    The combination has weights summing to one, so it is the same whether the denoiser predicts
    eps, x0 or v. ``uncond`` holds the null conditioning (tensors of batch 1 or of the full batch,
    with the same keys as the conditioning passed at call time). ``guidance_rescale`` (phi)
    rescales the guided prediction towards the conditional one's standard deviation, at any
    ``w`` (at w = 1 it changes nothing: the guided prediction is the conditional one).
    """
    # Ho & Salimans 2022 ("Classifier-free diffusion guidance"), eq. 6
    if not 0.0 <= guidance_rescale <= 1.0:  # also refuses nan
        raise InputError(f"guidance_rescale must lie in [0, 1], got {guidance_rescale}")
    w = float(guidance_scale)
    if not math.isfinite(w):
        raise InputError(f"guidance_scale must be a finite number, got {guidance_scale}")

    def guided(x: torch.Tensor, t: torch.Tensor, **cond) -> torch.Tensor:
        missing = set(uncond) ^ set(cond)
        if missing:
            raise ValueError(
                f"conditioning keys {sorted(cond)} and uncond keys {sorted(uncond)} differ"
            )
        B = x.shape[0]
        if w == 1.0:
            return denoiser(x, t, **cond)
        null = {k: _expand(v, B, k) for k, v in uncond.items()}
        if w == 0.0 and guidance_rescale == 0.0:  # rescaling needs the conditional output
            return denoiser(x, t, **null)
        both = {
            k: torch.cat([cond[k], null[k].to(cond[k].device)])
            if isinstance(cond[k], torch.Tensor)
            else cond[k]
            for k in cond
        }
        out = denoiser(torch.cat([x, x]), torch.cat([t, t]), **both)
        c, u = out[:B], out[B:]
        g = u + w * (c - u)
        if guidance_rescale > 0:
            # Lin et al. 2024 ("Common diffusion noise schedules ..."), sec. 3.4, eq. 15-16
            dims = tuple(range(1, x.ndim))
            factor = c.std(dim=dims, keepdim=True) / g.std(dim=dims, keepdim=True)
            g = guidance_rescale * (g * factor) + (1 - guidance_rescale) * g
        return g

    return guided
