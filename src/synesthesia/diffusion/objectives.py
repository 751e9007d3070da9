"""What a denoiser predicts (epsilon, x0 or v), exact conversions, and the training loss.

With ``a = sqrt(abar_t)`` and ``s = sqrt(1 - abar_t)``: ``x_t = a x0 + s eps`` and
``v = a eps - s x0`` (Salimans & Ho 2022, sec. 4). Any one prediction and ``x_t`` determine the
other two.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from synesthesia.diffusion.schedules import NoiseSchedule

PREDICTIONS = ("eps", "x0", "v")

Denoiser = Callable[..., torch.Tensor]


def check_prediction(prediction: str) -> None:
    """Raise a ValueError naming ``prediction`` unless it is "eps", "x0" or "v"."""
    if prediction not in PREDICTIONS:
        raise ValueError(f"prediction must be one of {PREDICTIONS}, got {prediction!r}")


def _ab(abar: torch.Tensor | float, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    abar = torch.as_tensor(abar, dtype=torch.float64)
    if abar.ndim == 1:
        abar = abar.reshape(-1, *([1] * (like.ndim - 1)))
    a = abar.sqrt().to(device=like.device, dtype=like.dtype)
    s = (1.0 - abar).sqrt().to(device=like.device, dtype=like.dtype)
    return a, s


def to_x0_eps(
    pred: torch.Tensor, prediction: str, x_t: torch.Tensor, abar: torch.Tensor | float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (x0, eps) pair implied by a prediction of type ``prediction`` at noise level ``abar``.

    ``abar`` is a float or a tensor of shape (B,) (per sample). Raises a ValueError where the
    conversion is undefined (epsilon at abar = 0, or x0 at abar = 1 for the eps it implies).
    """
    check_prediction(prediction)
    a, s = _ab(abar, x_t)
    if prediction == "eps":
        if bool((a == 0).any()):
            raise ValueError(
                "prediction='eps' cannot give x0 where abar = 0 (zero terminal SNR); "
                "train and sample with prediction='v' or 'x0'"
            )
        return (x_t - s * pred) / a, pred
    if prediction == "x0":
        # eps is undefined where s = 0 (clean data); it is never needed there
        eps = (x_t - a * pred) / torch.where(s == 0, torch.ones_like(s), s)
        return pred, eps
    # Salimans & Ho 2022 sec. 4: x0 = a x_t - s v, eps = s x_t + a v
    return a * x_t - s * pred, s * x_t + a * pred


def convert_prediction(
    pred: torch.Tensor,
    source: str,
    target: str,
    x_t: torch.Tensor,
    abar: torch.Tensor | float,
) -> torch.Tensor:
    """Convert a prediction of type ``source`` into type ``target`` (each "eps", "x0" or "v")."""
    check_prediction(target)
    if pred.shape != x_t.shape:
        raise ValueError(f"pred shape {tuple(pred.shape)} must equal x_t shape {tuple(x_t.shape)}")
    x0, eps = to_x0_eps(pred, source, x_t, abar)
    if target == "x0":
        return x0
    if target == "eps":
        return eps
    a, s = _ab(abar, x_t)
    return a * eps - s * x0


def loss_weight(snr: torch.Tensor, prediction: str, min_snr_gamma: float | None) -> torch.Tensor:
    """Per-sample weight of the squared error of ``prediction`` under Min-SNR-gamma.

    All three objectives then weight the error in x0 by ``min(SNR, gamma)``: since
    ``|d eps|^2 = SNR |d x0|^2`` and ``|d v|^2 = (SNR + 1) |d x0|^2``, the eps loss is weighted
    by ``min(SNR, gamma) / SNR`` and the v loss by ``min(SNR, gamma) / (SNR + 1)``.
    Without gamma the weight is 1 (plain MSE in the prediction's own space).
    """
    # Hang et al. 2023 ("Efficient diffusion training via Min-SNR weighting"), eq. 4 and sec. 3.4
    check_prediction(prediction)
    if min_snr_gamma is None:
        return torch.ones_like(snr)
    if min_snr_gamma <= 0:
        raise ValueError(f"min_snr_gamma must be positive, got {min_snr_gamma}")
    clipped = torch.clamp(snr, max=min_snr_gamma)
    if prediction == "x0":
        return clipped
    if prediction == "eps":
        return clipped / snr
    return clipped / (snr + 1.0)


def make_noise(
    x0: torch.Tensor, offset_noise: float = 0.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Standard normal noise shaped like ``x0``, plus optional offset noise.

    Offset noise adds ``offset_noise * N(0, 1)`` shared by all positions of each channel
    (Guttenberg 2023, "Diffusion with offset noise"); it needs inputs of shape (B, C, ...spatial).
    """
    noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    if offset_noise:
        if x0.ndim < 3:
            raise ValueError(
                f"offset_noise needs inputs with spatial dims (B, C, ...), got shape "
                f"{tuple(x0.shape)}"
            )
        shape = (*x0.shape[:2], *([1] * (x0.ndim - 2)))
        noise = noise + offset_noise * torch.randn(
            shape, generator=generator, dtype=x0.dtype, device=x0.device
        )
    return noise


def diffusion_loss(
    denoiser: Denoiser,
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    prediction: str = "eps",
    min_snr_gamma: float | None = None,
    offset_noise: float = 0.0,
    generator: torch.Generator | None = None,
    cond: dict | None = None,
    t: torch.Tensor | None = None,
    noise: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """The denoising training loss: weighted MSE between the denoiser output and its target.

    Draws ``t ~ U{0..T-1}`` and the noise with ``generator`` unless given, forms
    ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise`` and calls ``denoiser(x_t, t, **cond)``
    with ``t`` as float timesteps. ``reduction="none"`` returns the per-sample losses.
    """
    # Ho et al. 2020 Algorithm 1 (eps); Salimans & Ho 2022 (v); Hang et al. 2023 (weights)
    check_prediction(prediction)
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if prediction == "eps" and schedule.zero_terminal_snr:
        raise ValueError(
            "a zero-terminal-SNR schedule cannot be trained with prediction='eps' "
            "(x0 is undefined at the last step): use prediction='v'"
        )
    B = x0.shape[0]
    if t is None:
        t = torch.randint(0, schedule.num_timesteps, (B,), generator=generator)
    if noise is None:
        noise = make_noise(x0, offset_noise, generator).to(x0.device)
    x_t = schedule.q_sample(x0, t, noise)
    out = denoiser(x_t, t.to(device=x0.device, dtype=x0.dtype), **(cond or {}))
    if out.shape != x0.shape:
        raise ValueError(
            f"denoiser returned shape {tuple(out.shape)} for input shape {tuple(x0.shape)}"
        )
    abar = schedule.alphas_cumprod[t.cpu()]
    if prediction == "eps":
        target = noise
    elif prediction == "x0":
        target = x0
    else:
        a, s = _ab(abar, x0)
        target = a * noise - s * x0
    per_sample = (out.float() - target.float()).pow(2).flatten(1).mean(1)
    weight = loss_weight(abar / (1.0 - abar), prediction, min_snr_gamma)
    losses = per_sample * weight.to(device=per_sample.device, dtype=per_sample.dtype)
    return losses.mean() if reduction == "mean" else losses
