"""Bayesian causal inference in multisensory perception (Koerding et al. 2007), N modalities.

Generative model: with probability ``p_common`` one source ``s ~ N(mu_p, sigma_p^2)`` causes
every modality's signal (C = 1); otherwise each modality m has its own independent source
(C = 2). Modality m measures ``x_m ~ N(s_m, sigma_m^2)``. The observer infers C and the
sources. The closed forms are in :mod:`closed_forms`, the response distributions in
:mod:`quadrature` (arrows: closed_forms <- quadrature <- causal_inference); the methods run in
torch float64 so that fitting can differentiate through them, and accept numpy arrays or
floats (returning numpy).

For N > 2 the two hypotheses are "one cause for all" and "a separate cause for each", the
usual N-modal generalisation (Wozny et al. 2008 use the same two extremes for three cues).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from synesthesia.brain.closed_forms import (
    STRATEGIES,
    Array,
    as_float64,
    check_criterion,
    check_strategy,
    estimate_common_t,
    estimate_separate_t,
    log_likelihood_common_t,
    log_likelihood_separate_t,
    log_odds_common_t,
    log_odds_gradient_t,
    observer_log_odds,
)
from synesthesia.brain.quadrature import TOLERANCE, Report, discrete_probabilities, single_thread
from synesthesia.errors import InputError

__all__ = [
    "STRATEGIES",
    "CausalInference",
    "check_strategy",
    "estimate_common_t",
    "estimate_separate_t",
    "log_likelihood_common_t",
    "log_likelihood_separate_t",
    "log_odds_common_t",
    "log_odds_gradient_t",
]


def _back(out: torch.Tensor, *inputs: Array) -> np.ndarray | torch.Tensor:
    """Return a tensor when any input was a tensor, else a numpy array."""
    if any(isinstance(i, torch.Tensor) for i in inputs):
        return out
    return out.detach().numpy()


def _check_positive(name: str, value: Array, allow_zero: bool = False) -> None:
    if isinstance(value, torch.Tensor) and value.requires_grad:
        return
    v = np.asarray(value.detach() if isinstance(value, torch.Tensor) else value, dtype=float)
    bad = ~np.isfinite(v) | ((v < 0) if allow_zero else (v <= 0))
    if np.any(bad):
        need = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{name}: must be finite and {need}, got {v.tolist()}")


class CausalInference:
    """Bayesian causal-inference observer (Koerding et al. 2007) for N modalities.

    Two modalities: ``CausalInference(sigma_v, sigma_a, sigma_p, mu_p, p_common, lapse,
    sigma_motor)``. N modalities: pass ``sigmas=[...]`` instead of sigma_v/sigma_a. Parameters
    may be floats or float64 torch scalars (to differentiate through every method).

    ``lapse`` is the probability of a random (uniform) response; ``sigma_motor`` is Gaussian
    response noise added to the perceptual estimate before it is reported.
    """

    def __init__(
        self,
        sigma_v: Array | None = None,
        sigma_a: Array | None = None,
        sigma_p: Array = 10.0,
        mu_p: Array = 0.0,
        p_common: Array = 0.5,
        lapse: Array = 0.0,
        sigma_motor: Array = 0.0,
        *,
        sigmas: Sequence[Array] | np.ndarray | torch.Tensor | None = None,
    ) -> None:
        if sigmas is None:
            if sigma_v is None or sigma_a is None:
                raise InputError("give sigma_v and sigma_a, or sigmas=[...] for N modalities")
            sig = torch.stack([as_float64(sigma_v), as_float64(sigma_a)])
        else:
            if sigma_v is not None or sigma_a is not None:
                raise InputError("give either sigma_v/sigma_a or sigmas, not both")
            if isinstance(sigmas, torch.Tensor):
                sig = sigmas.to(torch.float64).reshape(-1)
            else:
                sig = torch.stack([as_float64(s) for s in sigmas])
            if sig.numel() < 1:
                raise InputError("sigmas: give at least one modality's noise")
        _check_positive("sigmas (sigma_v, sigma_a)", sig)
        _check_positive("sigma_p", sigma_p)
        _check_positive("sigma_motor", sigma_motor, allow_zero=True)
        for name, v, lo, hi in (("p_common", p_common, 0.0, 1.0), ("lapse", lapse, 0.0, 1.0)):
            if not (isinstance(v, torch.Tensor) and v.requires_grad):
                fv = float(v)
                if not lo <= fv <= hi:
                    raise InputError(f"{name}: must be in [{lo}, {hi}], got {fv}")
        self.sigmas = sig
        self.sigma_p = as_float64(sigma_p)
        self.mu_p = as_float64(mu_p)
        self.p_common = as_float64(p_common)
        self.lapse = as_float64(lapse)
        self.sigma_motor = as_float64(sigma_motor)

    # --- convenience -------------------------------------------------------------------------
    @property
    def n_modalities(self) -> int:
        """Number of modalities N."""
        return int(self.sigmas.shape[0])

    @property
    def sigma_v(self) -> float:
        """Visual noise (modality 0)."""
        return float(self.sigmas[0])

    @property
    def sigma_a(self) -> float:
        """Auditory noise (modality 1)."""
        return float(self.sigmas[1])

    def params(self) -> dict[str, float]:
        """The parameters as a plain dict of floats."""
        d = {}
        if self.n_modalities == 2:
            d["sigma_v"], d["sigma_a"] = float(self.sigmas[0]), float(self.sigmas[1])
        else:
            for i, s in enumerate(self.sigmas):
                d[f"sigma_{i}"] = float(s)
        d.update(
            sigma_p=float(self.sigma_p),
            mu_p=float(self.mu_p),
            p_common=float(self.p_common),
            lapse=float(self.lapse),
            sigma_motor=float(self.sigma_motor),
        )
        return d

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v:.4g}" for k, v in self.params().items())
        return f"CausalInference({inner})"

    def _x(self, x: Array) -> torch.Tensor:
        t = as_float64(x)
        if t.ndim == 0 or t.shape[-1] != self.n_modalities:
            raise InputError(
                f"x: last axis must have {self.n_modalities} entries (one per modality), "
                f"got shape {tuple(t.shape)}"
            )
        return t

    # --- closed forms -----------------------------------------------------------------------
    def log_likelihood_common(self, x: Array) -> np.ndarray | torch.Tensor:
        """log p(x | C=1) for measurements x of shape (..., N)."""
        t = self._x(x)
        return _back(log_likelihood_common_t(t, self.sigmas, self.sigma_p, self.mu_p), x)

    def log_likelihood_separate(self, x: Array) -> np.ndarray | torch.Tensor:
        """log p(x | C=2) for measurements x of shape (..., N)."""
        t = self._x(x)
        return _back(log_likelihood_separate_t(t, self.sigmas, self.sigma_p, self.mu_p), x)

    def log_odds_common(self, x: Array) -> np.ndarray | torch.Tensor:
        """Posterior log odds of a common cause given x."""
        t = self._x(x)
        return _back(observer_log_odds(self, t), x)

    def posterior_common(self, x: Array) -> np.ndarray | torch.Tensor:
        """p(C=1 | x) (Koerding 2007, eq. 2), for x of shape (..., N)."""
        t = self._x(x)
        return _back(torch.sigmoid(observer_log_odds(self, t)), x)

    def estimate_common(self, x: Array) -> np.ndarray | torch.Tensor:
        """Fused estimate of the common source, shape (...)."""
        t = self._x(x)
        return _back(estimate_common_t(t, self.sigmas, self.sigma_p, self.mu_p), x)

    def estimate_separate(self, x: Array) -> np.ndarray | torch.Tensor:
        """Segregated estimates, one per modality, shape (..., N)."""
        t = self._x(x)
        return _back(estimate_separate_t(t, self.sigmas, self.sigma_p, self.mu_p), x)

    def estimate(
        self,
        x: Array,
        strategy: str = "averaging",
        generator: torch.Generator | None = None,
        criterion: float = 0.5,
    ) -> np.ndarray | torch.Tensor:
        """Each modality's perceptual estimate, shape (..., N), under a decision strategy.

        averaging: p(C=1|x) s_common + (1 - p(C=1|x)) s_separate (Koerding 2007, eq. 11);
        selection: s_common when p(C=1|x) > criterion, else s_separate (Wozny et al. 2010);
        matching: s_common with probability p(C=1|x) (needs ``generator``; Wozny et al. 2010).
        """
        check_strategy(strategy)
        criterion = check_criterion(criterion)
        t = self._x(x)
        s1 = estimate_common_t(t, self.sigmas, self.sigma_p, self.mu_p).unsqueeze(-1)
        s2 = estimate_separate_t(t, self.sigmas, self.sigma_p, self.mu_p)
        p = torch.sigmoid(observer_log_odds(self, t)).unsqueeze(-1)
        if strategy == "averaging":
            out = p * s1 + (1.0 - p) * s2
        elif strategy == "selection":
            out = torch.where(p > criterion, s1, s2)
        else:
            if generator is None:
                raise InputError("strategy 'matching' draws a random number: pass generator=")
            u = torch.rand(p.shape, generator=generator, dtype=torch.float64)
            out = torch.where(p > u, s1, s2)
        return _back(out, x)

    # --- Monte Carlo --------------------------------------------------------------------------
    def simulate(
        self,
        stimuli: Array,
        n: int,
        strategy: str = "averaging",
        generator: torch.Generator | None = None,
        levels: Array | None = None,
        response_range: tuple[float, float] | None = None,
        criterion: float = 0.5,
    ) -> dict[str, np.ndarray]:
        """Monte-Carlo simulation of n trials per stimulus row (stimuli: (C, N)).

        Returns arrays of shape (C, n, N) for ``measurements``, ``estimates`` and ``responses``
        (estimate plus motor noise, lapses, and, with ``levels``, the nearest button), and
        (C, n) for ``posterior_common`` and ``unity`` (1 when the observer reports one cause: under
        averaging when p(C=1|x) > ``criterion``, under selection and matching the structure the
        observer chose; lapses answer at random).
        """
        check_strategy(strategy)
        criterion = check_criterion(criterion)
        if n < 1:
            raise InputError(f"n: must be >= 1, got {n}")
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        s = self._x(stimuli)
        if s.ndim != 2:
            raise InputError("stimuli: give a 2-D array (conditions, modalities)")
        c, nm = s.shape
        with torch.no_grad():
            x = s[:, None, :] + self.sigmas * torch.randn((c, n, nm), generator=g, dtype=s.dtype)
            p = torch.sigmoid(observer_log_odds(self, x))
            s1 = estimate_common_t(x, self.sigmas, self.sigma_p, self.mu_p).unsqueeze(-1)
            s2 = estimate_separate_t(x, self.sigmas, self.sigma_p, self.mu_p)
            if strategy == "averaging":
                est = p[..., None] * s1 + (1 - p[..., None]) * s2
                unity = (p > criterion).to(torch.float64)
            else:
                if strategy == "selection":
                    thr = torch.full_like(p, criterion)
                else:
                    thr = torch.rand(p.shape, generator=g, dtype=s.dtype)
                chosen = p > thr
                est = torch.where(chosen[..., None], s1, s2)
                unity = chosen.to(torch.float64)  # the report follows the chosen structure
            resp = est + self.sigma_motor * torch.randn(est.shape, generator=g, dtype=s.dtype)
            lapsed = torch.rand((c, n), generator=g, dtype=s.dtype) < self.lapse
            if levels is not None:
                lv = as_float64(levels).sort().values
                idx = (resp[..., None] - lv).abs().argmin(-1)
                rnd = torch.randint(0, lv.numel(), resp.shape, generator=g)
                resp = lv[torch.where(lapsed[..., None], rnd, idx)]
            else:
                if response_range is None:
                    response_range = (float(s.min()) - 3 * float(self.sigma_p), float(s.max()))
                    response_range = (
                        response_range[0],
                        response_range[1] + 3 * float(self.sigma_p),
                    )
                lo, hi = response_range
                rnd = lo + (hi - lo) * torch.rand(resp.shape, generator=g, dtype=s.dtype)
                resp = torch.where(lapsed[..., None], rnd, resp)
            coin = (torch.rand((c, n), generator=g, dtype=s.dtype) < 0.5).to(torch.float64)
            unity = torch.where(lapsed, coin, unity)
        return {
            "measurements": x.numpy(),
            "posterior_common": p.numpy(),
            "estimates": est.numpy(),
            "responses": resp.numpy(),
            "unity": unity.numpy(),
        }

    # --- deterministic response distributions (quadrature) ------------------------------------
    def response_probabilities(
        self,
        stimuli: Array,
        levels: Array,
        strategy: str = "averaging",
        report: Sequence[int] | str = "both",
        unity: bool = False,
        nodes_per_sigma: float = 4.0,
        criterion: float = 0.5,
        tol: float | None = TOLERANCE,
    ) -> np.ndarray | torch.Tensor:
        """p(button response | stimuli) by quadrature, for every stimulus row (C, N).

        ``report``: "both" (joint report of every modality), "visual" (0), "auditory" (1), or a
        tuple of modality indices. Returns shape (C, K, ..., K[, 2]): one axis of ``levels`` per
        reported modality, then (different, same) cause when ``unity``. Lapses and motor noise
        included. ``criterion``: the p(C=1|x) threshold of the unity report under averaging and
        of the choice under selection. The grid starts at ``nodes_per_sigma`` and is refined until
        successive grids agree within ``tol`` (``None``: no refinement). Differentiable when the
        parameters are tensors.
        """
        mods = _report_modalities(report, self.n_modalities)
        lv = tuple(float(v) for v in np.sort(np.asarray(levels, dtype=float)))
        rep = Report(modalities=mods, kind="discrete", levels=lv, unity=unity, criterion=criterion)
        return self._quadrature(stimuli, rep, strategy, nodes_per_sigma, tol)

    def unity_probability(
        self,
        stimuli: Array,
        strategy: str = "averaging",
        criterion: float = 0.5,
        nodes_per_sigma: float = 4.0,
        tol: float | None = TOLERANCE,
    ) -> np.ndarray | torch.Tensor:
        """p(report "one cause" | stimuli) by quadrature, for every stimulus row: shape (C,)."""
        rep = Report(modalities=(), unity=True, criterion=check_criterion(criterion))
        return self._quadrature(stimuli, rep, strategy, nodes_per_sigma, tol)[..., 1]

    def _quadrature(
        self, stimuli: Array, rep: Report, strategy: str, nodes_per_sigma: float, tol: float | None
    ) -> np.ndarray | torch.Tensor:
        st = self._x(stimuli).detach().numpy().reshape(-1, self.n_modalities)
        with single_thread():
            probs = discrete_probabilities(
                self, st, rep, strategy, nodes_per_sigma=nodes_per_sigma, tol=tol
            )
        return _back(probs, stimuli)


def _report_modalities(report: Sequence[int] | str, n: int) -> tuple[int, ...]:
    named = {"both": tuple(range(n)), "all": tuple(range(n)), "visual": (0,), "auditory": (1,)}
    if isinstance(report, str):
        if report not in named:
            raise InputError(f"report: use 'both', 'visual', 'auditory' or indices, got {report!r}")
        mods = named[report]
    else:
        mods = tuple(int(m) for m in report)
    if any(m < 0 or m >= n for m in mods):
        raise InputError(f"report: modality indices must be in [0, {n}), got {mods}")
    return mods
