"""Closed forms of Bayesian causal inference (Koerding et al. 2007), N modalities, on tensors.

The bottom of the brain room's arrows: :mod:`quadrature` and :mod:`causal_inference` both build
on this module, which imports nothing of the package. Every function takes measurements ``x``
of shape (..., N), noise ``sigmas`` (N,) and the prior's ``sigma_p``, ``mu_p`` (scalars), all
float64 tensors, so that fitting can differentiate through them.

:class:`Observer` is what the quadrature needs of an observer: its parameters as float64 tensors
(:class:`synesthesia.brain.CausalInference` is one).
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import torch

from synesthesia.errors import InputError

STRATEGIES = ("averaging", "selection", "matching")
LOG_2PI = math.log(2.0 * math.pi)

Array = float | np.ndarray | torch.Tensor


class Observer(Protocol):
    """The parameters of a causal-inference observer, as float64 tensors."""

    sigmas: torch.Tensor  # (N,) sensory noise per modality
    sigma_p: torch.Tensor
    mu_p: torch.Tensor
    p_common: torch.Tensor
    lapse: torch.Tensor
    sigma_motor: torch.Tensor


def as_float64(x: Array) -> torch.Tensor:
    """``x`` as a float64 tensor (a tensor input keeps its autograd graph)."""
    return torch.as_tensor(x, dtype=torch.float64)


def check_strategy(strategy: str) -> str:
    """Validate a decision-strategy name (averaging, selection, matching)."""
    if strategy not in STRATEGIES:
        raise InputError(f"strategy: must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    return strategy


def check_criterion(criterion: float) -> float:
    """A p(C=1|x) decision criterion must lie strictly inside (0, 1)."""
    c = float(criterion)
    if not 0.0 < c < 1.0:
        raise InputError(f"criterion: must be in (0, 1), got {criterion!r}")
    return c


def log_likelihood_common_t(
    x: torch.Tensor, sigmas: torch.Tensor, sigma_p: torch.Tensor, mu_p: torch.Tensor
) -> torch.Tensor:
    """log p(x | C=1): the common source integrated out analytically (Koerding 2007, eq. 4)."""
    # Gaussian integral over s of prod_m N(x_m; s, sigma_m^2) N(s; mu_p, sigma_p^2), N-modal form.
    var = sigmas**2
    vp = sigma_p**2
    u = x - mu_p
    a = 1.0 / var
    big_a = a.sum()
    s = (u * a).sum(-1)
    q = (u * u * a).sum(-1)
    denom = 1.0 + vp * big_a
    n = x.shape[-1]
    return -0.5 * (n * LOG_2PI + torch.log(var).sum() + torch.log(denom) + q - vp * s**2 / denom)


def log_likelihood_separate_t(
    x: torch.Tensor, sigmas: torch.Tensor, sigma_p: torch.Tensor, mu_p: torch.Tensor
) -> torch.Tensor:
    """log p(x | C=2) = sum_m log N(x_m; mu_p, sigma_m^2 + sigma_p^2) (Koerding 2007, eq. 5)."""
    tot = sigmas**2 + sigma_p**2
    return (-0.5 * (LOG_2PI + torch.log(tot) + (x - mu_p) ** 2 / tot)).sum(-1)


def log_odds_common_t(
    x: torch.Tensor,
    sigmas: torch.Tensor,
    sigma_p: torch.Tensor,
    mu_p: torch.Tensor,
    p_common: torch.Tensor,
) -> torch.Tensor:
    """Posterior log odds log p(C=1|x)/p(C=2|x) (Koerding 2007, eq. 2 in log form).

    ``p_common`` is clamped to [1e-300, 1 - 1e-16] so that 0 and 1 give finite log odds.
    """
    pc = p_common.clamp(1e-300, 1.0 - 1e-16)
    return (
        log_likelihood_common_t(x, sigmas, sigma_p, mu_p)
        - log_likelihood_separate_t(x, sigmas, sigma_p, mu_p)
        + torch.log(pc)
        - torch.log1p(-pc)
    )


def observer_log_odds(observer: Observer, x: torch.Tensor) -> torch.Tensor:
    """:func:`log_odds_common_t` with an observer's parameters."""
    o = observer
    return log_odds_common_t(x, o.sigmas, o.sigma_p, o.mu_p, o.p_common)


def log_odds_gradient_t(
    x: torch.Tensor, sigmas: torch.Tensor, sigma_p: torch.Tensor, mu_p: torch.Tensor
) -> torch.Tensor:
    """d(log odds)/dx, shape (..., N), in closed form (used to smooth decision boundaries)."""
    # derivatives of eq. 4 and eq. 5 of Koerding 2007 with respect to x
    var = sigmas**2
    vp = sigma_p**2
    u = x - mu_p
    big_a = (1.0 / var).sum()
    s = (u / var).sum(-1, keepdim=True)
    d1 = -(u - vp * s / (1.0 + vp * big_a)) / var
    d2 = -u / (var + vp)
    return d1 - d2


def estimate_common_t(
    x: torch.Tensor, sigmas: torch.Tensor, sigma_p: torch.Tensor, mu_p: torch.Tensor
) -> torch.Tensor:
    """Posterior mean of the common source (Koerding 2007, eq. 9, N cues plus prior)."""
    a = 1.0 / sigmas**2
    return ((x * a).sum(-1) + mu_p / sigma_p**2) / (a.sum() + 1.0 / sigma_p**2)


def estimate_separate_t(
    x: torch.Tensor, sigmas: torch.Tensor, sigma_p: torch.Tensor, mu_p: torch.Tensor
) -> torch.Tensor:
    """Posterior means of each separate source (Koerding 2007, eq. 10)."""
    a = 1.0 / sigmas**2
    return (x * a + mu_p / sigma_p**2) / (a + 1.0 / sigma_p**2)
