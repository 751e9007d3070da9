"""Population-coded sensory encodings of a source position (the ventriloquist's stimuli).

A modality is ``n`` neurons with Gaussian tuning curves ``f_i(s) = g exp(-(s - c_i)^2 / (2
w^2))`` at evenly spaced preferred positions ``c_i``, and independent unit-variance Gaussian
noise: ``r = f(s) + eps`` (Dayan & Abbott 2001, sec. 3.3). The noiseless code peaks at the
source. Its precision is the Fisher information ``I(s) = sum_i f_i'(s)^2`` (unit noise
variance; the Gaussian-noise case of Dayan & Abbott 2001, sec. 3.3), so an efficient decoder
has the sensory noise ``sigma = I(s)^(-1/2)`` (the Cramer-Rao bound);
:meth:`PopulationCode.with_sigma` picks the gain that gives a requested ``sigma`` away from the
edges. Vision is the sharper sense: a narrower tuning and a smaller ``sigma`` than audition.

Every noisy draw goes through an explicit :class:`torch.Generator`: the same seed gives the same
encodings.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from synesthesia.errors import InputError


@dataclass(frozen=True)
class PopulationCode:
    """Gaussian tuning curves over ``[low, high]`` with additive unit Gaussian noise."""

    n_neurons: int = 96
    low: float = -60.0
    high: float = 60.0
    width: float = 8.0
    gain: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.n_neurons, int) or self.n_neurons < 2:
            raise InputError(f"n_neurons: need an integer >= 2, got {self.n_neurons!r}")
        for name in ("low", "high", "width", "gain"):
            if not math.isfinite(float(getattr(self, name))):
                raise InputError(f"{name}: must be a finite number, got {getattr(self, name)!r}")
        if not self.low < self.high:
            raise InputError(f"low, high: need low < high, got ({self.low:g}, {self.high:g})")
        if self.width <= 0 or self.gain <= 0:
            raise InputError(f"width, gain: must be > 0, got ({self.width:g}, {self.gain:g})")

    @classmethod
    def with_sigma(
        cls,
        sigma: float,
        width: float,
        n_neurons: int = 96,
        low: float = -60.0,
        high: float = 60.0,
    ) -> PopulationCode:
        """The code whose Fisher information gives sensory noise ``sigma`` away from the edges.

        Dense tuning (spacing ``d``): I = g^2 sqrt(pi) / (2 d w), the sum of f_i'^2 as an
        integral (the continuum limit of Seung & Sompolinsky 1993), so g = sqrt(2 d w /
        (sqrt(pi) sigma^2)).
        """
        if not (sigma > 0 and width > 0):
            raise InputError(f"sigma, width: must be > 0, got ({sigma!r}, {width!r})")
        spacing = (high - low) / (n_neurons - 1)
        gain = math.sqrt(2.0 * spacing * width / (math.sqrt(math.pi) * sigma**2))
        return cls(n_neurons=n_neurons, low=low, high=high, width=width, gain=gain)

    def centres(self) -> torch.Tensor:
        """Preferred positions of the neurons, (n_neurons,)."""
        return torch.linspace(self.low, self.high, self.n_neurons, dtype=torch.float64)

    def mean(self, s: torch.Tensor | np.ndarray | float) -> torch.Tensor:
        """Noiseless responses f(s): shape (..., n_neurons) float32 for positions of shape (...)."""
        st = torch.as_tensor(s, dtype=torch.float64)
        z = (st[..., None] - self.centres()) / self.width
        return (self.gain * torch.exp(-0.5 * z * z)).to(torch.float32)

    def encode(
        self, s: torch.Tensor | np.ndarray | float, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Noisy responses r = f(s) + eps, eps ~ N(0, 1) per neuron (drawn with ``generator``)."""
        f = self.mean(s)
        return f + torch.randn(f.shape, generator=generator, dtype=f.dtype)

    def fisher_information(self, s: float = 0.0) -> float:
        """I(s) = sum_i f_i'(s)^2 for unit noise variance (Dayan & Abbott 2001, sec. 3.3)."""
        c = self.centres()
        d = float(s) - c
        deriv = -self.gain * d / self.width**2 * torch.exp(-0.5 * (d / self.width) ** 2)
        return float((deriv**2).sum())

    def sigma(self, s: float = 0.0) -> float:
        """The Cramer-Rao bound on the sd of an unbiased estimate of s, I(s)^(-1/2)."""
        return 1.0 / math.sqrt(self.fisher_information(s))

    def ml_decode(self, r: torch.Tensor, step: float = 0.05) -> torch.Tensor:
        """Maximum-likelihood positions of responses r (..., n): the grid point (spacing
        ``step``) minimising |r - f(s)|^2 (the Gaussian-noise log likelihood)."""
        grid = torch.arange(self.low, self.high + step / 2, step, dtype=torch.float64)
        f = self.mean(grid).to(torch.float64)  # (S, n)
        rr = torch.as_tensor(r, dtype=torch.float64)
        # |r - f|^2 = |r|^2 - 2 r.f + |f|^2; |r|^2 does not depend on s
        score = -2.0 * rr @ f.T + (f * f).sum(-1)
        return grid[score.argmin(-1)]

    def to_dict(self) -> dict:
        """The code as JSON-able data."""
        return asdict(self)
