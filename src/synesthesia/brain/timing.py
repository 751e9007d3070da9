"""The temporal binding window: simultaneity judgements by causal inference over asynchrony.

After Magnotti, Ma & Beauchamp 2013 (Front. Psychol. 4:798): the observer measures the
audiovisual asynchrony ``m ~ N(soa, sigma^2)`` (ms; positive = vision leads). Under one cause
the true asynchrony is ``N(mu_c, sigma_c^2)`` (small, centred near the physical lag of sound);
under separate causes it is ``N(0, sigma_ind^2)`` (broad). The observer reports "simultaneous"
when p(C=1 | m) > criterion. The decision region is the set where a quadratic in m is positive,
so p(simultaneous | soa) is closed form (Gaussian probabilities of an interval).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit
from scipy.stats import norm

from synesthesia.errors import InputError


@dataclass(frozen=True)
class SimultaneityModel:
    """Causal-inference simultaneity judgements (parameters in ms, probabilities in [0, 1])."""

    sigma: float = 60.0
    mu_c: float = 30.0
    sigma_c: float = 40.0
    sigma_ind: float = 300.0
    p_common: float = 0.5
    lapse: float = 0.0
    criterion: float = 0.5

    def __post_init__(self) -> None:
        for name in ("sigma", "sigma_c", "sigma_ind"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name}: must be > 0, got {getattr(self, name)}")
        for name in ("p_common", "lapse"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name}: must be in [0, 1]")
        if not 0.0 < self.criterion < 1.0:
            raise InputError("criterion: must be in (0, 1)")

    def log_odds(self, m: np.ndarray) -> np.ndarray:
        """log p(C=1|m) / p(C=2|m) for measured asynchronies m."""
        v1 = self.sigma**2 + self.sigma_c**2
        v2 = self.sigma**2 + self.sigma_ind**2
        m = np.asarray(m, dtype=float)
        return (
            norm.logpdf(m, self.mu_c, math.sqrt(v1))
            - norm.logpdf(m, 0.0, math.sqrt(v2))
            + math.log(self.p_common / (1.0 - self.p_common))
        )

    def posterior_common(self, m: np.ndarray) -> np.ndarray:
        """p(C=1 | m)."""
        return expit(self.log_odds(m))

    def region(self) -> tuple[float, float] | None:
        """The interval of measurements judged simultaneous (None when empty).

        log_odds(m) - logit(criterion) = a m^2 + b m + c with a < 0 (sigma_c < sigma_ind).
        """
        v1 = self.sigma**2 + self.sigma_c**2
        v2 = self.sigma**2 + self.sigma_ind**2
        a = -0.5 / v1 + 0.5 / v2
        b = self.mu_c / v1
        c = (
            -0.5 * self.mu_c**2 / v1
            - 0.5 * math.log(v1 / v2)
            + math.log(self.p_common / (1.0 - self.p_common))
            - math.log(self.criterion / (1.0 - self.criterion))
        )
        if a >= 0:
            raise InputError("sigma_c: must be smaller than sigma_ind (a bounded binding window)")
        disc = b * b - 4 * a * c
        if disc <= 0:
            return None
        r = math.sqrt(disc)
        lo, hi = sorted(((-b + r) / (2 * a), (-b - r) / (2 * a)))
        return lo, hi

    def p_simultaneous(self, soa: np.ndarray) -> np.ndarray:
        """p(report "simultaneous" | soa), closed form, lapses answering at random."""
        soa = np.asarray(soa, dtype=float)
        reg = self.region()
        if reg is None:
            p = np.zeros_like(soa)
        else:
            p = norm.cdf((reg[1] - soa) / self.sigma) - norm.cdf((reg[0] - soa) / self.sigma)
        return (1.0 - self.lapse) * p + 0.5 * self.lapse

    def p_simultaneous_quadrature(self, soa: np.ndarray, nodes: int = 4001) -> np.ndarray:
        """The same by numerical integration over m (a cross-check of the closed form)."""
        soa = np.atleast_1d(np.asarray(soa, dtype=float))
        z = np.linspace(-8, 8, nodes)
        w = norm.pdf(z)
        w = w / w.sum()
        m = soa[:, None] + self.sigma * z[None, :]
        p = ((self.posterior_common(m) > self.criterion) * w).sum(-1)
        return (1.0 - self.lapse) * p + 0.5 * self.lapse

    def window(self, level: float = 0.5) -> tuple[float, float]:
        """SOAs where p(simultaneous) crosses ``level``: the binding window's edges (ms)."""
        grid = np.linspace(-2000, 2000, 4001)
        p = self.p_simultaneous(grid)
        i = int(np.argmax(p))
        if p[i] <= level:
            raise InputError(f"level: p(simultaneous) never exceeds {level}")
        f = lambda s: float(self.p_simultaneous(s)) - level  # noqa: E731
        lo = brentq(f, grid[0], grid[i]) if f(grid[0]) < 0 else -math.inf
        hi = brentq(f, grid[i], grid[-1]) if f(grid[-1]) < 0 else math.inf
        return lo, hi

    def simulate(self, soas: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
        """Monte-Carlo simultaneity reports (n per SOA): array (len(soas), n) of 0/1."""
        rng = np.random.default_rng(seed)
        soas = np.asarray(soas, dtype=float)
        m = soas[:, None] + self.sigma * rng.standard_normal((soas.size, n))
        rep = (self.posterior_common(m) > self.criterion).astype(float)
        lapsed = rng.random(rep.shape) < self.lapse
        return np.where(lapsed, (rng.random(rep.shape) < 0.5).astype(float), rep)


STANDARD_SOAS = (-400, -300, -200, -150, -100, -50, 0, 50, 100, 150, 200, 300, 400)
