"""Maximum-likelihood cue combination for N cues (Ernst & Banks 2002; Alais & Burr 2004).

Each cue ``i`` gives an unbiased Gaussian estimate ``x_i`` with standard deviation
``sigma_i``. The maximum-likelihood (minimum-variance unbiased) fused estimate weighs each
cue by its relative reliability ``1 / sigma_i**2``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from synesthesia.errors import InputError


def _sigmas(sigmas: np.ndarray | list[float]) -> np.ndarray:
    s = np.asarray(sigmas, dtype=np.float64)
    if s.ndim == 0:
        s = s[None]
    if s.shape[-1] < 1:
        raise InputError("sigmas: give at least one cue's standard deviation")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise InputError(f"sigmas: every cue noise must be finite and > 0, got {s.tolist()}")
    return s


def mle_weights(sigmas: np.ndarray | list[float]) -> np.ndarray:
    """Cue weights ``w_i = (1/sigma_i^2) / sum_j (1/sigma_j^2)`` (last axis indexes cues)."""
    r = 1.0 / _sigmas(sigmas) ** 2  # Ernst & Banks 2002, eq. 2: weights proportional to reliability
    return r / r.sum(axis=-1, keepdims=True)


def fused_sigma(sigmas: np.ndarray | list[float]) -> np.ndarray | float:
    """Standard deviation of the fused estimate, ``(sum_i sigma_i^-2)^-1/2``."""
    s = _sigmas(sigmas)
    out = (1.0 / s**2).sum(axis=-1) ** -0.5  # Ernst & Banks 2002, eq. 3
    return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class FusedEstimate:
    """A fused estimate: its value(s), standard deviation and the cue weights used."""

    estimate: np.ndarray | float
    sigma: float
    weights: np.ndarray


def fuse(estimates: np.ndarray | list[float], sigmas: np.ndarray | list[float]) -> FusedEstimate:
    """Fuse cue estimates (last axis indexes the N cues) with maximum-likelihood weights.

    ``estimates`` may have leading batch axes, e.g. shape ``(trials, N)``.
    """
    x = np.asarray(estimates, dtype=np.float64)
    s = _sigmas(sigmas)
    if s.ndim != 1:
        raise InputError("sigmas: give one standard deviation per cue (a 1-D list)")
    if x.shape[-1] != s.shape[0]:
        raise InputError(
            f"estimates: last axis has {x.shape[-1]} cues but sigmas has {s.shape[0]}; "
            "give one sigma per cue"
        )
    w = mle_weights(s)
    value = x @ w  # Ernst & Banks 2002, eq. 1: reliability-weighted average
    value = float(value) if np.ndim(value) == 0 else value
    return FusedEstimate(estimate=value, sigma=float(fused_sigma(s)), weights=w)


def discrimination_threshold(
    sigmas: np.ndarray | list[float] | float, criterion: float = 0.84, intervals: int = 2
) -> np.ndarray | float:
    """Predicted discrimination threshold (JND) for an estimate of standard deviation sigma.

    For a two-interval task the difference of two estimates has sd ``sqrt(2) sigma`` and the
    threshold at ``criterion`` proportion correct is ``sqrt(2) sigma Phi^-1(criterion)``
    (Ernst & Banks 2002: the 84% point gives ``sqrt(2) sigma``). ``intervals=1`` drops the
    ``sqrt(2)`` (a single estimate against a fixed reference). Pass the fused sigma to predict
    the bimodal threshold.
    """
    if not 0.5 < criterion < 1.0:
        raise InputError(f"criterion: must be in (0.5, 1), got {criterion}")
    if intervals not in (1, 2):
        raise InputError(f"intervals: must be 1 or 2, got {intervals}")
    s = np.asarray(sigmas, dtype=np.float64)
    if np.any(s <= 0) or not np.all(np.isfinite(s)):
        raise InputError("sigmas: must be finite and > 0")
    out = np.sqrt(intervals) * s * norm.ppf(criterion)
    return float(out) if out.ndim == 0 else out


def predicted_bimodal_threshold(
    thresholds: np.ndarray | list[float],
) -> float:
    """Bimodal threshold predicted from unimodal thresholds: ``(sum_i T_i^-2)^-1/2``.

    Thresholds are proportional to sigma, so they combine like the sigmas (Ernst & Banks 2002).
    """
    return float(fused_sigma(thresholds))
