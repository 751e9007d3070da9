"""Audiovisual speech: the McGurk effect.

Two models:

- Massaro's fuzzy logical model of perception (FLMP; Oden & Massaro 1978, Massaro 1998):
  each modality gives every alternative a degree of support in (0, 1); the response
  probabilities are the normalised products ``p_k = a_k v_k / sum_j a_j v_j``.
- Causal inference of audiovisual speech in the manner of Magnotti & Beauchamp 2017 (CIMS):
  syllables are points in a 2-D representational space; auditory and visual encodings are
  Gaussian with modality-specific covariances (audition precise along the acoustic axis,
  vision along the visible place-of-articulation axis). The observer infers whether both
  came from one talker-syllable (C = 1: reliability-weighted 2-D fusion) or not (C = 2: the
  auditory encoding alone), then categorises the percept by the nearest prototype (with
  Gaussian categorisation noise). The geometry below is ours, chosen so that "da" lies between
  auditory "ba" and visual "ga" but not between auditory "ga" and visual "ba": the model fuses
  A-ba/V-ga into "da" and not the reverse, as observers do (McGurk & MacDonald 1976).

Response probabilities are computed by tensor-product Gauss-Hermite quadrature over the four
measurement coordinates (deterministic); :meth:`McGurkModel.simulate` is a Monte-Carlo check.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, logsumexp

from synesthesia.errors import InputError

SYLLABLES = ("ba", "da", "ga")


# ----------------------------------------------------------------------------------------------
# FLMP
# ----------------------------------------------------------------------------------------------


def flmp_probabilities(auditory: np.ndarray, visual: np.ndarray) -> np.ndarray:
    """FLMP response probabilities (Massaro 1998, eq. 2.1: relative goodness rule).

    auditory: (A, K) support of each of K alternatives given each auditory stimulus; visual:
    (V, K). Returns (A, V, K): p(response k | auditory a, visual v).
    """
    a = np.asarray(auditory, dtype=float)
    v = np.asarray(visual, dtype=float)
    if a.ndim != 2 or v.ndim != 2 or a.shape[1] != v.shape[1]:
        raise InputError("auditory, visual: need (stimuli, alternatives) arrays with equal K")
    if np.any(a <= 0) or np.any(v <= 0) or np.any(a > 1) or np.any(v > 1):
        raise InputError("auditory, visual: supports must lie in (0, 1]")
    prod = a[:, None, :] * v[None, :, :]
    return prod / prod.sum(-1, keepdims=True)


@dataclass
class FLMPFit:
    """FLMP supports fitted by maximum likelihood to response counts."""

    auditory: np.ndarray
    visual: np.ndarray
    nll: float

    def probabilities(self) -> np.ndarray:
        """Fitted response probabilities (A, V, K)."""
        return flmp_probabilities(self.auditory, self.visual)


def fit_flmp(counts: np.ndarray, seed: int = 0) -> FLMPFit:
    """Fit FLMP supports to response counts (A, V, K) by maximum likelihood (L-BFGS-B).

    Supports are parameterised by logits z (a = expit(z)); the likelihood is multinomial per
    condition, and its gradient is exact: with l = log a + log v and p = softmax(l),
    dNLL/dl = N p - c per condition, dl/dz = 1 - expit(z).
    """
    c = np.asarray(counts, dtype=float)
    if c.ndim != 3 or not np.all(np.isfinite(c)) or np.any(c < 0):
        raise InputError("counts: need a finite, non-negative (auditory, visual, responses) array")
    n_a, n_v, k = c.shape
    rng = np.random.default_rng(seed)
    total = c.sum(-1, keepdims=True)

    def unpack(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return z[: n_a * k].reshape(n_a, k), z[n_a * k :].reshape(n_v, k)

    def nll_and_grad(z: np.ndarray) -> tuple[float, np.ndarray]:
        za, zv = unpack(z)
        la = -np.logaddexp(0.0, -za)  # log expit, without underflow
        lv = -np.logaddexp(0.0, -zv)
        logits = la[:, None, :] + lv[None, :, :]
        logp = logits - logsumexp(logits, axis=-1, keepdims=True)
        d = total * np.exp(logp) - c  # dNLL / dlogits (Massaro 1998, eq. 2.1 differentiated)
        ga = d.sum(1) * expit(-za)
        gv = d.sum(0) * expit(-zv)
        return float(-(c * logp).sum()), np.concatenate([ga.ravel(), gv.ravel()])

    z0 = rng.normal(0.0, 0.5, size=(n_a + n_v) * k)
    res = minimize(
        nll_and_grad,
        z0,
        jac=True,
        method="L-BFGS-B",
        bounds=[(-30, 30)] * z0.size,
        options={"maxiter": 5000, "ftol": 1e-15, "gtol": 1e-9},
    )
    za, zv = unpack(res.x)
    return FLMPFit(expit(za), expit(zv), float(res.fun))


# ----------------------------------------------------------------------------------------------
# causal inference of audiovisual speech
# ----------------------------------------------------------------------------------------------


def _default_prototypes() -> np.ndarray:
    # axis 0: acoustic (F2/F3 transition) continuum ba - da - ga; axis 1: visible place of
    # articulation: lips closed for ba, open and similar for da and ga.
    return np.array([[-1.0, 0.0], [0.0, 1.0], [1.0, 1.1]])


@dataclass
class McGurkModel:
    """Causal inference of audiovisual speech (after Magnotti & Beauchamp 2017).

    The default parameters and geometry are illustrative, chosen by hand to show the McGurk
    asymmetry; they are not fitted to any data set.

    sigma_auditory / sigma_visual: encoding sd along (acoustic, visible) axes per modality;
    sigma_prior: width of the Gaussian prior over the space (centred on the prototypes' mean);
    p_common: prior probability of one cause; sigma_category: categorisation noise.
    """

    prototypes: np.ndarray = field(default_factory=_default_prototypes)
    sigma_auditory: tuple[float, float] = (0.25, 1.5)
    sigma_visual: tuple[float, float] = (1.5, 0.25)
    sigma_prior: float = 2.0
    p_common: float = 0.8
    sigma_category: float = 0.3
    syllables: tuple[str, ...] = SYLLABLES

    def __post_init__(self) -> None:
        self.prototypes = np.asarray(self.prototypes, dtype=float)
        for name in ("sigma_auditory", "sigma_visual"):
            v = np.asarray(getattr(self, name), dtype=float)
            if v.shape != (2,) or np.any(v <= 0):
                raise InputError(f"{name}: need two positive standard deviations")
        if self.sigma_prior <= 0 or self.sigma_category <= 0:
            raise InputError("sigma_prior, sigma_category: must be > 0")
        if not 0.0 <= self.p_common <= 1.0:
            raise InputError(f"p_common: must be in [0, 1], got {self.p_common}")

    def _index(self, syllable: str) -> int:
        if syllable not in self.syllables:
            raise InputError(f"syllable: {syllable!r} is not one of {self.syllables}")
        return self.syllables.index(syllable)

    def percept(self, xa: np.ndarray, xv: np.ndarray, strategy: str = "averaging") -> np.ndarray:
        """The observer's percept (..., 2) for encodings xa, xv (..., 2)."""
        va = np.asarray(self.sigma_auditory) ** 2
        vv = np.asarray(self.sigma_visual) ** 2
        vp = self.sigma_prior**2
        mu = self.prototypes.mean(0)
        # per axis the model is Koerding 2007 with two cues (axes are independent)
        ua, uv = xa - mu, xv - mu
        log1 = -0.5 * (
            np.log(4 * np.pi**2 * (va * vv + va * vp + vv * vp))
            + ((ua - uv) ** 2 * vp + ua**2 * vv + uv**2 * va) / (va * vv + va * vp + vv * vp)
        ).sum(-1)  # Koerding 2007, eq. 4
        log2 = -0.5 * (
            np.log(4 * np.pi**2 * (va + vp) * (vv + vp)) + ua**2 / (va + vp) + uv**2 / (vv + vp)
        ).sum(-1)  # Koerding 2007, eq. 5
        pc = np.clip(self.p_common, 1e-300, 1 - 1e-16)
        post = expit(log1 - log2 + np.log(pc) - np.log1p(-pc))[..., None]
        fused = (xa / va + xv / vv + mu / vp) / (1 / va + 1 / vv + 1 / vp)
        alone = (xa / va + mu / vp) / (1 / va + 1 / vp)  # "what did you hear": audition only
        if strategy == "averaging":
            return post * fused + (1 - post) * alone
        if strategy == "selection":
            return np.where(post > 0.5, fused, alone)
        raise InputError(f"strategy: use averaging or selection, got {strategy!r}")

    def categorise(self, percept: np.ndarray) -> np.ndarray:
        """p(syllable | percept): Gaussian categorisation around each prototype, (..., K)."""
        d2 = ((percept[..., None, :] - self.prototypes) ** 2).sum(-1)
        logits = -0.5 * d2 / self.sigma_category**2
        return np.exp(logits - logsumexp(logits, axis=-1, keepdims=True))

    def probabilities(
        self, auditory: str, visual: str, strategy: str = "averaging", nodes: int = 16
    ) -> np.ndarray:
        """p(report syllable k | auditory, visual syllable), by Gauss-Hermite quadrature."""
        t, w = np.polynomial.hermite_e.hermegauss(nodes)
        w = w / w.sum()
        ma = self.prototypes[self._index(auditory)]
        mv = self.prototypes[self._index(visual)]
        sa, sv = np.asarray(self.sigma_auditory), np.asarray(self.sigma_visual)
        g = np.meshgrid(t, t, t, t, indexing="ij")
        wt = (w[:, None, None, None] * w[None, :, None, None] * w[None, None, :, None] * w).reshape(
            -1
        )
        xa = np.stack([ma[0] + sa[0] * g[0], ma[1] + sa[1] * g[1]], -1).reshape(-1, 2)
        xv = np.stack([mv[0] + sv[0] * g[2], mv[1] + sv[1] * g[3]], -1).reshape(-1, 2)
        return wt @ self.categorise(self.percept(xa, xv, strategy))

    def simulate(
        self, auditory: str, visual: str, n: int, strategy: str = "averaging", seed: int = 0
    ) -> np.ndarray:
        """Monte-Carlo reports (indices into ``syllables``) for n trials."""
        rng = np.random.default_rng(seed)
        ma = self.prototypes[self._index(auditory)]
        mv = self.prototypes[self._index(visual)]
        xa = ma + np.asarray(self.sigma_auditory) * rng.standard_normal((n, 2))
        xv = mv + np.asarray(self.sigma_visual) * rng.standard_normal((n, 2))
        p = self.categorise(self.percept(xa, xv, strategy))
        u = rng.random((n, 1))
        return (p.cumsum(-1) < u).sum(-1)

    def table(self, strategy: str = "averaging") -> dict[tuple[str, str], np.ndarray]:
        """Response probabilities for every (auditory, visual) pair."""
        return {
            (a, v): self.probabilities(a, v, strategy)
            for a in self.syllables
            for v in self.syllables
        }


def mcgurk_flmp_defaults() -> tuple[np.ndarray, np.ndarray]:
    """Illustrative FLMP supports for (ba, da, ga): rows are stimuli, columns alternatives.

    Audition separates the three well but confuses neighbours on the ba-da-ga continuum;
    vision separates the bilabial ba sharply and confuses da with ga.
    """
    auditory = np.array([[0.9, 0.3, 0.05], [0.3, 0.9, 0.3], [0.05, 0.3, 0.9]])
    visual = np.array([[0.95, 0.05, 0.05], [0.05, 0.9, 0.7], [0.05, 0.7, 0.9]])
    return auditory, visual


def mcgurk_rates(
    table: dict[tuple[str, str], np.ndarray], syllables: Sequence[str] = SYLLABLES
) -> dict[str, float]:
    """Fusion rates: p("da" | A-ba V-ga) (McGurk) and p("da" | A-ga V-ba) (the reverse)."""
    da = list(syllables).index("da")
    return {
        "ba+ga->da": float(table[("ba", "ga")][da]),
        "ga+ba->da": float(table[("ga", "ba")][da]),
    }
