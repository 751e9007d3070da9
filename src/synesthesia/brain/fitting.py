"""Maximum-likelihood fitting of the causal-inference observer to trial tables.

The likelihood is the deterministic quadrature of :mod:`synesthesia.brain.quadrature`, so the
objective is smooth and torch autograd gives its exact gradient; scipy's L-BFGS-B minimises it
within bounds from several starts. Which parameters are free, fixed or tied, their bounds and
transforms are one :class:`ParameterSpec` (:mod:`parameters`), shared by the search and the
standard errors, which come from the Hessian of the negative log likelihood (autograd);
AIC/BIC, strategy/model comparison, parameter recovery and posterior predictive checks build on
the same likelihood.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import minimize

from synesthesia.brain.causal_inference import CausalInference, check_strategy
from synesthesia.brain.parameters import (
    PARAMETERS,
    ParameterSpec,
    default_bounds,
)
from synesthesia.brain.quadrature import (
    Report,
    continuous_density,
    converged_grid,
    discrete_probabilities,
    make_grid,
    single_thread,
)
from synesthesia.brain.simulation import simulate_trials
from synesthesia.brain.trials import Trials
from synesthesia.errors import InputError

__all__ = [
    "FitResult",
    "ParameterSpec",
    "PosteriorPredictive",
    "RecoveryResult",
    "compare_fits",
    "compare_strategies",
    "default_bounds",
    "fit_causal_inference",
    "format_comparison",
    "parameter_recovery",
    "posterior_predictive",
    "report_for",
    "standard_errors",
]

# grid refinement of the final fit: no response probability may change by more than this at the
# next refinement; about a twenty-fifth of the sampling error of a proportion from 40 trials
# (sqrt(0.25 / 40) = 0.08), so the quadrature error is negligible against the data's
FIT_TOLERANCE = 3e-3


@dataclass
class FitResult:
    """The outcome of a maximum-likelihood fit."""

    params: dict[str, float]
    se: dict[str, float]
    free: tuple[str, ...]
    fixed: dict[str, float]
    tied: dict[str, str]
    nll: float
    n_trials: int
    strategy: str
    report: Report
    converged: bool
    start_nlls: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    at_bound: tuple[str, ...] = ()
    n_calls: tuple[int, int] = (0, 0)
    grid_change: float = float("nan")  # last grid refinement's largest probability change
    nodes_per_sigma: float = float("nan")  # the final grid's density

    @property
    def n_free(self) -> int:
        """Number of free parameters."""
        return len(self.free)

    @property
    def log_likelihood(self) -> float:
        """Maximised log likelihood."""
        return -self.nll

    @property
    def aic(self) -> float:
        """Akaike information criterion, 2k - 2 log L (Akaike 1974)."""
        return 2.0 * self.n_free + 2.0 * self.nll

    @property
    def bic(self) -> float:
        """Bayesian information criterion, k ln n - 2 log L (Schwarz 1978)."""
        return self.n_free * math.log(self.n_trials) + 2.0 * self.nll

    def model(self) -> CausalInference:
        """The fitted observer."""
        return CausalInference(**self.params)

    def table(self) -> str:
        """A printable parameter table with standard errors and fit statistics."""
        lines = [f"{'parameter':<12} {'estimate':>11} {'std.err':>10}  status"]
        for name in PARAMETERS:
            v = self.params[name]
            if name in self.free:
                se = self.se.get(name, float("nan"))
                status = "free" + (" (at bound)" if name in self.at_bound else "")
                lines.append(f"{name:<12} {v:>11.4g} {se:>10.3g}  {status}")
            elif name in self.tied:
                lines.append(f"{name:<12} {v:>11.4g} {'':>10}  tied to {self.tied[name]}")
            else:
                lines.append(f"{name:<12} {v:>11.4g} {'':>10}  fixed")
        lines.append(
            f"strategy {self.strategy}; n = {self.n_trials} trials; log L = {-self.nll:.3f}; "
            f"AIC = {self.aic:.2f}; BIC = {self.bic:.2f}; {len(self.start_nlls)} starts; "
            f"{'converged' if self.converged else 'NOT converged'}; {self.seconds:.2f} s"
        )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """A JSON-serialisable summary."""
        return {
            "params": self.params,
            "se": {k: (v if math.isfinite(v) else None) for k, v in self.se.items()},
            "free": list(self.free),
            "fixed": self.fixed,
            "tied": self.tied,
            "nll": self.nll,
            "aic": self.aic,
            "bic": self.bic,
            "n_trials": self.n_trials,
            "strategy": self.strategy,
            "converged": self.converged,
            "at_bound": list(self.at_bound),
            "seconds": self.seconds,
        }


def report_for(
    trials: Trials,
    levels: Sequence[float] | None = None,
    response: str = "auto",
    response_range: tuple[float, float] | None = None,
) -> Report:
    """The :class:`Report` describing a trial table's responses.

    response "auto": discrete buttons when the responses take at most 12 distinct values.
    """
    if response not in ("auto", "discrete", "continuous"):
        raise InputError(f"response: use auto, discrete or continuous, got {response!r}")
    kind = response
    lv = None
    if trials.reported:
        found = trials.response_levels()
        if kind == "auto":
            kind = "discrete" if (levels is not None or found.size <= 12) else "continuous"
        if kind == "discrete":
            lv = tuple(float(v) for v in (levels if levels is not None else found))
            if len(lv) < 2:
                raise InputError("levels: discrete responses need at least 2 distinct levels")
            ok = np.isclose(trials.responses[..., None], np.asarray(lv)).any(-1)
            if not ok.all():
                i, j = (int(v[0]) for v in np.nonzero(~ok))
                col = ("resp_v", "resp_a")[trials.reported[j]]
                raise InputError(
                    f"{trials.source}: row {i + 1}, column '{col}': response "
                    f"{trials.responses[i, j]:g} is not one of the levels {list(lv)}"
                )
    else:
        kind = "discrete"
    return Report(
        modalities=trials.reported,
        kind=kind,
        levels=lv,
        unity=trials.unity is not None,
        response_range=response_range,
    )


class _Objective:
    """Negative log likelihood of a trial table as a function of the parameter dict."""

    def __init__(self, trials: Trials, report: Report, strategy: str, tol: float) -> None:
        self.trials, self.report, self.strategy, self.tol = trials, report, strategy, tol
        self.cond, self.cond_index = trials.conditions()
        if report.kind == "discrete":
            counts = _response_counts(trials, report, self.cond_index, len(self.cond))
            self.counts = torch.as_tensor(counts)
        self.grid = None
        self.richardson = True
        self.max_nodes = 30_000  # bounds the cost of one likelihood evaluation
        self.n_calls = 0
        self.grid_change = float("nan")  # change of the probabilities at the last refinement

    def rebuild(self, params: dict[str, float], nodes_per_sigma: float, fine: bool) -> None:
        """A grid of ``nodes_per_sigma`` for the observer at ``params``."""
        self.richardson = fine
        model = CausalInference(**params)
        stim = self.cond if self.report.kind == "discrete" else self.trials.stimuli
        self.grid = make_grid(
            stim, model, self.strategy, self.report, nodes_per_sigma, self.max_nodes
        )

    def density(self, params: dict[str, float], nodes_per_sigma: float) -> float:
        """The lowest density from ``nodes_per_sigma`` up at which the response probabilities at
        ``params`` agree within ``tol`` with the next finer grid (discrete reports; continuous:
        ``nodes_per_sigma``)."""
        if self.report.kind != "discrete":
            return nodes_per_sigma
        with torch.no_grad():
            result = converged_grid(
                CausalInference(**params),
                self.cond,
                self.report,
                self.strategy,
                nodes_per_sigma,
                self.tol,
                self.max_nodes,
            )
        self.grid_change = result.change
        return result.coarse_nodes_per_sigma if result.ok else result.nodes_per_sigma

    def __call__(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        model = CausalInference(**params)
        if self.report.kind == "discrete":
            p = discrete_probabilities(
                model, self.cond, self.report, self.strategy, self.grid, richardson=self.richardson
            )
            logp = torch.log(p.reshape(p.shape[0], -1).clamp_min(1e-300))
            return -(self.counts * logp).sum()
        like = continuous_density(
            model,
            self.trials.stimuli,
            self.trials.responses,
            self.report,
            self.strategy,
            self.trials.unity,
            self.grid,
        )
        return -torch.log(like).sum()

    def value_and_grad(self, zv: np.ndarray, spec: ParameterSpec) -> tuple[float, np.ndarray]:
        """NLL and its exact gradient at optimiser coordinates ``zv`` (for scipy)."""
        z = torch.tensor(zv, dtype=torch.float64, requires_grad=True)
        val = self(spec.params_at(z))
        if not torch.isfinite(val):
            return 1e300, np.zeros_like(zv)
        (g,) = torch.autograd.grad(val, z)
        self.n_calls += 1
        return float(val.detach()), g.numpy()


def _response_counts(
    trials: Trials, report: Report, cond_index: np.ndarray, n_conditions: int
) -> np.ndarray:
    """Counts (conditions, flattened response cells) of a discrete report."""
    shape = report.shape()
    parts = []
    if report.modalities:
        lv = np.asarray(sorted(report.levels))
        for j in range(len(report.modalities)):
            parts.append(np.abs(trials.responses[:, j, None] - lv).argmin(1))
    if report.unity:
        parts.append(trials.unity.astype(np.int64))
    flat = np.ravel_multi_index(tuple(parts), shape)
    counts = np.zeros((n_conditions, int(np.prod(shape))))
    np.add.at(counts, (cond_index, flat), 1.0)
    return counts


def _floats(params: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: float(v) for k, v in params.items()}


def _search(
    objective: _Objective, spec: ParameterSpec, z0: np.ndarray, nodes_per_sigma: float, fine: bool
) -> tuple[np.ndarray, float, bool]:
    """L-BFGS-B from ``z0`` on a grid sized for the current noise.

    The sensory sigmas may move by at most a factor 2 per grid (a trust region: the quadrature
    is accurate there); the grid is rebuilt and the search resumed while a sigma presses on
    that limit (and, when ``fine``, until the sigmas settle within 15 %).
    """
    zb = spec.z_bounds()
    sig = [i for i, k in enumerate(spec.free) if k in ("sigma_v", "sigma_a")]
    opts = {"maxiter": 400, "ftol": 1e-10, "gtol": 1e-5} if fine else {"ftol": 1e-5}
    z = z0.copy()
    for _ in range(8):
        objective.rebuild(_floats(spec.params_at(z)), nodes_per_sigma, fine)
        local = list(zb)
        for i in sig:
            local[i] = (max(zb[i][0], z[i] - math.log(2.0)), min(zb[i][1], z[i] + math.log(2.0)))
        res = minimize(
            objective.value_and_grad,
            z,
            args=(spec,),
            jac=True,
            method="L-BFGS-B",
            bounds=local,
            options=opts,
        )
        pressed = any(
            min(abs(res.x[i] - local[i][0]), abs(res.x[i] - local[i][1])) < 1e-6
            and not min(abs(res.x[i] - zb[i][0]), abs(res.x[i] - zb[i][1])) < 1e-6
            for i in sig
        )
        moved = max((abs(res.x[i] - z[i]) for i in sig), default=0.0)
        z = res.x
        if not pressed and (not fine or moved < math.log(1.15)):
            break
    return z, float(res.fun), bool(res.success)


def check_enough_trials(trials: Trials, spec: ParameterSpec) -> None:
    """A fit needs more trials than free parameters (else the estimates are not identified)."""
    if len(trials) <= spec.n_free:
        raise InputError(
            f"{trials.source}: {len(trials)} trial(s) cannot identify {spec.n_free} free "
            f"parameters ({', '.join(spec.free)}); the fit needs at least {spec.n_free + 1} "
            "trials (more trials than free parameters), or fix some parameters"
        )


def fit_causal_inference(
    trials: Trials,
    strategy: str = "averaging",
    *,
    levels: Sequence[float] | None = None,
    response: str = "auto",
    fixed: dict[str, float] | None = None,
    free: Sequence[str] | None = None,
    tied: dict[str, str] | None = None,
    start: dict[str, float] | None = None,
    bounds: dict[str, tuple[float, float]] | None = None,
    spec: ParameterSpec | None = None,
    n_starts: int = 3,
    seed: int = 0,
    nodes_per_sigma: float = 3.0,
    tol: float = FIT_TOLERANCE,
    compute_se: bool = True,
    progress: bool = False,
) -> FitResult:
    """Fit the causal-inference observer to a trial table by maximum likelihood.

    The parameters: a :class:`ParameterSpec`, given as ``spec`` or built from ``fixed``
    (held values), ``free`` (extra parameters to free, e.g. ``["lapse"]``), ``tied`` (a
    parameter -> the one whose value it shares, e.g. ``{"sigma_a": "sigma_v"}``), ``start`` and
    ``bounds`` (see :meth:`ParameterSpec.build` for the defaults). The search: every one of
    ``n_starts`` starts (the first from ``start``, the others jittered with ``seed``) on a
    coarse grid, then the best polished on a grid refined until successive grids agree within
    ``tol`` (starting at ``nodes_per_sigma``). Standard errors from the Hessian.
    """
    check_strategy(strategy)
    if n_starts < 1:
        raise InputError(f"n_starts: must be >= 1, got {n_starts}")
    report = report_for(trials, levels, response)
    if spec is None:
        continuous = report.kind == "continuous" and bool(report.modalities)
        spec = ParameterSpec.build(
            trials,
            fixed=fixed,
            free=free,
            tied=tied,
            start=start,
            bounds=bounds,
            continuous=continuous,
        )
    check_enough_trials(trials, spec)
    objective = _Objective(trials, report, strategy, tol)
    t0, c0 = time.perf_counter(), time.process_time()
    with single_thread():
        coarse = [
            _search(objective, spec, z0, min(2.0, nodes_per_sigma), fine=False)
            for z0 in _progress(spec.start_points(n_starts, seed), progress)
        ]
        n_stage1 = objective.n_calls
        z = min(coarse, key=lambda r: r[1])[0]
        # polish on a grid whose density is checked at the start and at the end (tol)
        nps = objective.density(_floats(spec.params_at(z)), nodes_per_sigma)
        z, _, ok = _search(objective, spec, z, nps, fine=True)
        if (finer := objective.density(_floats(spec.params_at(z)), nps)) > nps * 1.01:
            nps = finer
            z, _, ok = _search(objective, spec, z, nps, fine=True)
        objective.rebuild(_floats(spec.params_at(z)), nps, fine=True)
        params = _floats(spec.params_at(z))
        nll = float(objective(spec.params_at(z)))
        se = standard_errors(objective, spec, params) if compute_se else {}
    return FitResult(
        params=params,
        se=se,
        free=spec.free,
        fixed=dict(spec.fixed),
        tied=dict(spec.tied),
        nll=nll,
        n_trials=len(trials),
        strategy=strategy,
        report=report,
        converged=ok,
        start_nlls=[r[1] for r in coarse],
        seconds=time.perf_counter() - t0,
        cpu_seconds=time.process_time() - c0,
        at_bound=spec.at_bound(z),
        n_calls=(n_stage1, objective.n_calls - n_stage1),
        grid_change=objective.grid_change,
        nodes_per_sigma=nps,
    )


def _progress(items: list, enabled: bool):
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc="fit starts")


def standard_errors(objective, spec: ParameterSpec, params: dict[str, float]) -> dict[str, float]:
    """sqrt(diag(H^-1)) of the NLL Hessian in natural parameters (asymptotic ML theory).

    ``objective`` maps a full parameter dict to the NLL; the free parameters are differentiated
    in natural units through :meth:`ParameterSpec.complete` (tied ones follow their target).
    H is the central difference of the exact autograd gradient (2k gradient evaluations).
    """
    theta0 = np.array([params[k] for k in spec.free], dtype=np.float64)

    def grad(theta: np.ndarray) -> np.ndarray:
        t = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
        value = objective(spec.complete({k: t[i] for i, k in enumerate(spec.free)}))
        (g,) = torch.autograd.grad(value, t)
        return g.numpy()

    k = spec.n_free
    h = np.zeros((k, k))
    for j, name in enumerate(spec.free):
        eps = 1e-5 * max(abs(theta0[j]), 1e-2)
        if name in ("p_common", "lapse"):  # stay inside [0, 1]
            eps = min(eps, 0.5 * theta0[j], 0.5 * (1 - theta0[j])) or 1e-8
        e = np.zeros(k)
        e[j] = eps
        h[:, j] = (grad(theta0 + e) - grad(theta0 - e)) / (2 * eps)
    h = 0.5 * (h + h.T)
    try:
        d = np.diag(np.linalg.inv(h))
        se = np.where(d > 0, np.sqrt(np.abs(d)), np.nan)
    except np.linalg.LinAlgError:
        se = np.full(k, np.nan)
    return {name: float(s) for name, s in zip(spec.free, se)}


def compare_fits(fits: Sequence[FitResult], labels: Sequence[str] | None = None) -> list[dict]:
    """Rank fits of the same data by AIC: rows with label, k, log L, AIC, BIC, dAIC, dBIC and
    Akaike weights (Burnham & Anderson 2002, eq. 2.14)."""
    if not fits:
        raise InputError("fits: give at least one FitResult")
    n = {f.n_trials for f in fits}
    if len(n) != 1:
        raise InputError(f"fits: compare fits of the same data (trial counts differ: {sorted(n)})")
    labels = list(labels) if labels is not None else [f.strategy for f in fits]
    aic = np.array([f.aic for f in fits])
    bic = np.array([f.bic for f in fits])
    w = np.exp(-0.5 * (aic - aic.min()))
    w = w / w.sum()
    rows = [
        {
            "label": lab,
            "k": f.n_free,
            "log_likelihood": -f.nll,
            "aic": f.aic,
            "bic": f.bic,
            "delta_aic": float(f.aic - aic.min()),
            "delta_bic": float(f.bic - bic.min()),
            "akaike_weight": float(wi),
        }
        for lab, f, wi in zip(labels, fits, w)
    ]
    return sorted(rows, key=lambda r: r["aic"])


def format_comparison(rows: list[dict]) -> str:
    """The rows of :func:`compare_fits` as a text table."""
    out = [f"{'model':<14} {'k':>2} {'log L':>10} {'AIC':>10} {'dAIC':>7} {'dBIC':>7} {'w':>6}"]
    for r in rows:
        out.append(
            f"{r['label']:<14} {r['k']:>2} {r['log_likelihood']:>10.2f} {r['aic']:>10.2f} "
            f"{r['delta_aic']:>7.2f} {r['delta_bic']:>7.2f} {r['akaike_weight']:>6.3f}"
        )
    return "\n".join(out)


def compare_strategies(trials: Trials, **fit_kwargs) -> tuple[list[dict], dict[str, FitResult]]:
    """Fit averaging, selection and matching to the same data; rank them by AIC."""
    fits = {
        s: fit_causal_inference(trials, s, **fit_kwargs)
        for s in ("averaging", "selection", "matching")
    }
    return compare_fits(list(fits.values()), list(fits)), fits


# ----------------------------------------------------------------------------------------------
# recovery, posterior predictive checks
# ----------------------------------------------------------------------------------------------


@dataclass
class RecoveryResult:
    """Parameter recovery: true values, the estimates of each simulated subject, summaries."""

    true: dict[str, float]
    estimates: dict[str, np.ndarray]
    seconds: np.ndarray

    def bias(self) -> dict[str, float]:
        """Mean estimate minus the true value, per parameter."""
        return {k: float(np.mean(v) - self.true[k]) for k, v in self.estimates.items()}

    def spread(self) -> dict[str, float]:
        """Standard deviation of the estimates across subjects, per parameter."""
        return {k: float(np.std(v, ddof=1)) for k, v in self.estimates.items()}

    def median_abs_error(self) -> dict[str, float]:
        """Median absolute error across subjects, per parameter."""
        return {k: float(np.median(np.abs(v - self.true[k]))) for k, v in self.estimates.items()}

    def table(self) -> str:
        """A printable summary."""
        b, s, m = self.bias(), self.spread(), self.median_abs_error()
        out = [f"{'parameter':<10} {'true':>8} {'mean':>8} {'bias':>8} {'sd':>8} {'med|err|':>9}"]
        for k, v in self.estimates.items():
            out.append(
                f"{k:<10} {self.true[k]:>8.3f} {np.mean(v):>8.3f} {b[k]:>8.3f} {s[k]:>8.3f} "
                f"{m[k]:>9.3f}"
            )
        out.append(f"median fit time {np.median(self.seconds):.2f} s over {len(self.seconds)} fits")
        return "\n".join(out)


def parameter_recovery(
    model: CausalInference,
    conditions: np.ndarray,
    n_per_condition: int,
    n_subjects: int = 20,
    strategy: str = "averaging",
    levels: Sequence[float] | None = None,
    report: Sequence[int] = (0, 1),
    seed: int = 0,
    progress: bool = False,
    **fit_kwargs,
) -> RecoveryResult:
    """Simulate ``n_subjects`` data sets from ``model`` and fit each (see RecoveryResult)."""
    true = model.params()
    estimates: dict[str, list[float]] = {}
    secs = []
    subjects = range(n_subjects)
    if progress:
        from tqdm.auto import tqdm

        subjects = tqdm(subjects, desc="recovery")
    for i in subjects:
        trials = simulate_trials(
            model, conditions, n_per_condition, strategy, levels, report, seed=seed + i
        )
        fit = fit_causal_inference(
            trials, strategy, levels=levels, compute_se=False, seed=seed + i, **fit_kwargs
        )
        secs.append(fit.seconds)
        for k in fit.free:
            estimates.setdefault(k, []).append(fit.params[k])
    return RecoveryResult(true, {k: np.array(v) for k, v in estimates.items()}, np.array(secs))


@dataclass
class PosteriorPredictive:
    """Posterior predictive check of a discrete-response fit, per condition and modality.

    observed / predicted: mean reported value per condition (C, k); lower / upper: the central
    interval of that statistic over data sets simulated from the fitted model; coverage: the
    fraction of observed values inside their interval.
    """

    conditions: np.ndarray
    observed: np.ndarray
    predicted: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    probabilities: np.ndarray
    observed_proportions: np.ndarray

    @property
    def coverage(self) -> float:
        """Fraction of observed condition means inside the predictive interval."""
        inside = (self.observed >= self.lower) & (self.observed <= self.upper)
        return float(inside.mean())


def posterior_predictive(
    fit: FitResult, trials: Trials, n_sims: int = 500, level: float = 0.95, seed: int = 0
) -> PosteriorPredictive:
    """Simulate ``n_sims`` data sets of the same design from the fitted model (exact response
    probabilities by quadrature, multinomial draws) and compare the mean report per condition."""
    rep = fit.report
    if rep.kind != "discrete" or not rep.modalities:
        raise InputError("posterior_predictive: needs a fit to button (discrete) responses")
    cond, idx = trials.conditions()
    with single_thread(), torch.no_grad():
        p = discrete_probabilities(fit.model(), cond, rep, fit.strategy)
    p = p.numpy()
    if rep.unity:
        p = p.sum(-1)
    lv = np.asarray(sorted(rep.levels))
    k = len(rep.modalities)
    n_c = np.bincount(idx, minlength=len(cond))
    rng = np.random.default_rng(seed)
    flat = p.reshape(len(cond), -1)
    flat = flat / flat.sum(1, keepdims=True)
    sims = np.stack([rng.multinomial(n_c[c], flat[c], size=n_sims) for c in range(len(cond))], 1)
    sims = sims.reshape(n_sims, len(cond), *([lv.size] * k))
    predicted = np.zeros((len(cond), k))
    sim_means = np.zeros((n_sims, len(cond), k))
    obs = np.zeros((len(cond), k))
    obs_prop = np.zeros((len(cond), k, lv.size))
    for j in range(k):
        axes = tuple(a for a in range(k) if a != j)
        marg = p.sum(axis=tuple(a + 1 for a in axes)) if axes else p
        predicted[:, j] = marg @ lv
        ms = sims.sum(axis=tuple(a + 2 for a in axes)) if axes else sims
        sim_means[:, :, j] = (ms @ lv) / n_c[None, :]
        for c in range(len(cond)):
            r = trials.responses[idx == c, j]
            obs[c, j] = r.mean()
            obs_prop[c, j] = (
                np.abs(r[:, None] - lv).argmin(1)[:, None] == np.arange(lv.size)
            ).mean(0)
    alpha = (1.0 - level) / 2.0
    lower = np.quantile(sim_means, alpha, axis=0)
    upper = np.quantile(sim_means, 1.0 - alpha, axis=0)
    return PosteriorPredictive(cond, obs, predicted, lower, upper, p, obs_prop)
