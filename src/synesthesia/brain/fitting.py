"""Maximum-likelihood fitting of the causal-inference observer to trial tables.

The likelihood is the deterministic quadrature of :mod:`synesthesia.brain.quadrature`, so the
objective is smooth and torch autograd gives its exact gradient; scipy's L-BFGS-B minimises it
within bounds from several starts. Parameters can be free, fixed or tied to another. Standard
errors come from the Hessian of the negative log likelihood at the optimum (autograd);
AIC/BIC, strategy/model comparison, parameter recovery and posterior predictive checks build on
the same likelihood.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.optimize import minimize

from synesthesia.brain.causal_inference import CausalInference, check_strategy
from synesthesia.brain.quadrature import (
    Report,
    continuous_density,
    discrete_probabilities,
    make_grid,
)
from synesthesia.brain.trials import Trials

PARAMETERS = ("sigma_v", "sigma_a", "sigma_p", "mu_p", "p_common", "lapse", "sigma_motor")
_POSITIVE = ("sigma_v", "sigma_a", "sigma_p")
_LOG = ("sigma_v", "sigma_a", "sigma_p", "sigma_motor")  # optimised on a log scale


@contextmanager
def _single_thread():
    """Small tensors: thread start-up dominates, and on shared cores it is pathological."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def default_bounds(trials: Trials) -> dict[str, tuple[float, float]]:
    """Bounds scaled to the stimulus range of a trial table."""
    lo, hi = float(trials.stimuli.min()), float(trials.stimuli.max())
    scale = max(hi - lo, 1e-6)
    mid = 0.5 * (lo + hi)
    return {
        "sigma_v": (0.01 * scale, 5.0 * scale),
        "sigma_a": (0.01 * scale, 5.0 * scale),
        "sigma_p": (0.05 * scale, 50.0 * scale),
        "mu_p": (mid - scale, mid + scale),
        "p_common": (1e-4, 1.0 - 1e-4),
        "lapse": (0.0, 0.5),
        "sigma_motor": (0.005 * scale, 2.0 * scale),
    }


def _default_start(trials: Trials) -> dict[str, float]:
    scale = max(float(np.ptp(trials.stimuli)), 1e-6)
    return {
        "sigma_v": 0.1 * scale,
        "sigma_a": 0.3 * scale,
        "sigma_p": 0.6 * scale,
        "mu_p": float(trials.stimuli.mean()),
        "p_common": 0.5,
        "lapse": 0.02,
        "sigma_motor": 0.05 * scale,
    }


# transforms between natural parameters and the optimiser's coordinates
def _to_z(name: str, v: float) -> float:
    if name in _POSITIVE or name == "sigma_motor":
        return math.log(v)
    if name == "p_common":
        return math.log(v / (1.0 - v))
    return v


def _from_z(name: str, z: torch.Tensor) -> torch.Tensor:
    if name in _POSITIVE or name == "sigma_motor":
        return torch.exp(z)
    if name == "p_common":
        return torch.sigmoid(z)
    return z


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
            "se": self.se,
            "free": list(self.free),
            "fixed": self.fixed,
            "tied": self.tied,
            "nll": self.nll,
            "aic": self.aic,
            "bic": self.bic,
            "n_trials": self.n_trials,
            "strategy": self.strategy,
            "converged": self.converged,
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
        raise ValueError(f"response: use auto, discrete or continuous, got {response!r}")
    kind = response
    lv = None
    if trials.reported:
        found = trials.response_levels()
        if kind == "auto":
            kind = "discrete" if (levels is not None or found.size <= 12) else "continuous"
        if kind == "discrete":
            lv = tuple(float(v) for v in (levels if levels is not None else found))
            if len(lv) < 2:
                raise ValueError("levels: discrete responses need at least 2 distinct levels")
            ok = np.isclose(trials.responses[..., None], np.asarray(lv)).any(-1)
            if not ok.all():
                i, j = (int(v[0]) for v in np.nonzero(~ok))
                col = ("resp_v", "resp_a")[trials.reported[j]]
                raise ValueError(
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

    def __init__(self, trials: Trials, report: Report, strategy: str) -> None:
        self.trials, self.report, self.strategy = trials, report, strategy
        self.cond, self.cond_index = trials.conditions()
        if report.kind == "discrete":
            shape = report.shape()
            flat = np.zeros(len(trials), dtype=np.int64)
            stride = 1
            parts = []
            if report.modalities:
                lv = np.asarray(sorted(report.levels))
                for j in range(len(report.modalities)):
                    parts.append(np.abs(trials.responses[:, j, None] - lv).argmin(1))
            if report.unity:
                parts.append(trials.unity.astype(np.int64))
            for idx, size in zip(reversed(parts), reversed(shape)):
                flat += idx * stride
                stride *= size
            n_resp = int(np.prod(shape))
            counts = np.zeros((len(self.cond), n_resp))
            np.add.at(counts, (self.cond_index, flat), 1.0)
            self.counts = torch.as_tensor(counts)
        self.grid = None
        self.richardson = True
        self.max_nodes = 30_000  # bounds the cost of one likelihood evaluation

    def rebuild(
        self, params: dict[str, float], nodes_per_sigma: float, richardson: bool = True
    ) -> None:
        self.richardson = richardson
        model = CausalInference(**params)
        stim = self.cond if self.report.kind == "discrete" else self.trials.stimuli
        self.grid = make_grid(
            stim, model, self.strategy, self.report, nodes_per_sigma, self.max_nodes
        )

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


def _check_names(d: dict, what: str) -> None:
    for k in d:
        if k not in PARAMETERS:
            raise ValueError(
                f"{what}: unknown parameter {k!r}; parameters are {', '.join(PARAMETERS)}"
            )


def _check_value(name: str, v: float) -> float:
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"{name}: must be finite, got {v}")
    if name in _POSITIVE and v <= 0:
        raise ValueError(f"{name}: a noise parameter must be > 0, got {v}")
    if name == "sigma_motor" and v < 0:
        raise ValueError(f"sigma_motor: must be >= 0, got {v}")
    if name in ("p_common", "lapse") and not 0.0 <= v <= 1.0:
        raise ValueError(f"{name}: a probability must be in [0, 1], got {v}")
    return v


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
    n_starts: int = 3,
    seed: int = 0,
    nodes_per_sigma: float = 3.0,
    compute_se: bool = True,
    progress: bool = False,
) -> FitResult:
    """Fit the causal-inference observer to a trial table by maximum likelihood.

    By default sigma_v, sigma_a, sigma_p, mu_p and p_common are free, lapse is fixed at 0 and
    sigma_motor is fixed at 0 for button responses (free for continuous ones). ``fixed`` sets
    values (those parameters are held); ``free`` lists extra parameters to free (e.g.
    ``["lapse"]``); ``tied`` maps a parameter to another whose value it shares (e.g.
    ``{"sigma_a": "sigma_v"}``). Starts: the first from ``start`` (or a data-scaled default),
    the others drawn uniformly within the (transformed) bounds with ``seed``.
    """
    check_strategy(strategy)
    if n_starts < 1:
        raise ValueError(f"n_starts: must be >= 1, got {n_starts}")
    report = report_for(trials, levels, response)
    fixed = dict(fixed or {})
    tied = dict(tied or {})
    _check_names(fixed, "fixed")
    _check_names(tied, "tied")
    for k, v in fixed.items():
        fixed[k] = _check_value(k, v)
    for k, target in tied.items():
        if target not in PARAMETERS:
            raise ValueError(f"tied: {k} is tied to unknown parameter {target!r}")
        if target in tied:
            raise ValueError(f"tied: {k} is tied to {target}, which is itself tied")
    free_set = {"sigma_v", "sigma_a", "sigma_p", "mu_p", "p_common"}
    if report.kind == "continuous" and report.modalities:
        free_set.add("sigma_motor")
    else:
        fixed.setdefault("sigma_motor", 0.0)
    fixed.setdefault("lapse", 0.0)
    for k in free or ():
        if k not in PARAMETERS:
            raise ValueError(f"free: unknown parameter {k!r}")
        free_set.add(k)
        fixed.pop(k, None)
    free_names = tuple(p for p in PARAMETERS if p in free_set and p not in fixed and p not in tied)
    if not free_names:
        raise ValueError("no free parameters: free at least one (fixed and tied cover all)")
    for k, target in tied.items():
        if target not in free_names and target not in fixed:
            raise ValueError(f"tied: {k} is tied to {target}, which is neither free nor fixed")
    bnd = default_bounds(trials)
    for k, b in (bounds or {}).items():
        _check_names({k: 0}, "bounds")
        if not b[0] < b[1]:
            raise ValueError(f"bounds: {k} needs low < high, got {b}")
        bnd[k] = (float(b[0]), float(b[1]))
    init = _default_start(trials)
    init.update({k: _check_value(k, v) for k, v in (start or {}).items()})
    for k in free_names:
        lo, hi = bnd[k]
        init[k] = min(max(init[k], lo + 1e-9 * (hi - lo)), hi - 1e-9 * (hi - lo))
    zb = [
        (_to_z(k, max(bnd[k][0], 1e-12) if k in _LOG else bnd[k][0]), _to_z(k, bnd[k][1]))
        for k in free_names
    ]

    objective = _Objective(trials, report, strategy)

    def assemble(z: torch.Tensor) -> dict[str, torch.Tensor]:
        params: dict[str, torch.Tensor] = {}
        for i, k in enumerate(free_names):
            params[k] = _from_z(k, z[i])
        for k, v in fixed.items():
            params[k] = torch.tensor(v, dtype=torch.float64)
        for k, target in tied.items():
            params[k] = params[target]
        for k in PARAMETERS:
            if k not in params:
                params[k] = torch.tensor(init[k], dtype=torch.float64)
        return params

    def as_floats(params: dict[str, torch.Tensor]) -> dict[str, float]:
        return {k: float(v) for k, v in params.items()}

    def f_and_g(zv: np.ndarray) -> tuple[float, np.ndarray]:
        z = torch.tensor(zv, dtype=torch.float64, requires_grad=True)
        val = objective(assemble(z))
        (g,) = torch.autograd.grad(val, z)
        if not torch.isfinite(val):
            return 1e300, np.zeros_like(zv)
        calls.append(1)
        return float(val.detach()), g.numpy()

    sig_index = [i for i, k in enumerate(free_names) if k in ("sigma_v", "sigma_a")]

    def run(z0: np.ndarray, nps: float, fine: bool) -> tuple[np.ndarray, float, bool]:
        """L-BFGS-B on a grid sized for the current noise; the sensory sigmas may move by at
        most a factor 2 per grid (a trust region: the quadrature is accurate there), and the
        grid is rebuilt and the search resumed while a sigma presses on that limit."""
        z = z0.copy()
        opts = {"maxiter": 400, "ftol": 1e-10, "gtol": 1e-5} if fine else {"ftol": 1e-5}
        for _ in range(8):
            objective.rebuild(as_floats(assemble(torch.as_tensor(z))), nps, richardson=fine)
            local = list(zb)
            for i in sig_index:
                local[i] = (
                    max(zb[i][0], z[i] - math.log(2.0)),
                    min(zb[i][1], z[i] + math.log(2.0)),
                )
            res = minimize(f_and_g, z, jac=True, method="L-BFGS-B", bounds=local, options=opts)
            pressed = any(
                min(abs(res.x[i] - local[i][0]), abs(res.x[i] - local[i][1])) < 1e-6
                and not min(abs(res.x[i] - zb[i][0]), abs(res.x[i] - zb[i][1])) < 1e-6
                for i in sig_index
            )
            moved = max((abs(res.x[i] - z[i]) for i in sig_index), default=0.0)
            z = res.x
            if not pressed and (not fine or moved < math.log(1.15)):
                break
        return z, float(res.fun), bool(res.success)

    calls: list[int] = []
    rng = np.random.default_rng(seed)
    starts = [np.array([_to_z(k, init[k]) for k in free_names])]
    # further starts: jitter the first within a factor 3 (sigmas), +-1.5 logits (p_common),
    # +-20% of the bound range (others), clipped to the bounds
    lo = np.array([b[0] for b in zb])
    hi = np.array([b[1] for b in zb])
    width = np.array(
        [
            math.log(3.0) if k in _LOG else (1.5 if k == "p_common" else 0.2 * (hi[i] - lo[i]))
            for i, k in enumerate(free_names)
        ]
    )
    for _ in range(n_starts - 1):
        jitter = width * rng.uniform(-1.0, 1.0, len(zb))
        starts.append(np.clip(starts[0] + jitter, lo + 1e-9, hi - 1e-9))
    t0, c0 = time.perf_counter(), time.process_time()
    with _single_thread():
        results = []
        bar = _progress(starts, progress)
        for z0 in bar:
            # stage 1: every start on a coarse grid
            results.append(run(z0, min(2.0, nodes_per_sigma), fine=False))
        start_nlls = [r[1] for r in results]
        n_stage1 = len(calls)
        best = min(results, key=lambda r: r[1])
        # stage 2: polish the best on a grid rebuilt at its parameters, until it settles
        z, fun, ok = run(best[0], nodes_per_sigma, fine=True)
        objective.rebuild(as_floats(assemble(torch.as_tensor(z))), nodes_per_sigma)
        zt = torch.as_tensor(z)
        nll = float(objective(assemble(zt)))
        params = as_floats(assemble(zt))
        n_calls = (n_stage1, len(calls) - n_stage1)
        se: dict[str, float] = {}
        if compute_se:
            se = _standard_errors(objective, assemble, free_names, params)
    at_bound = tuple(
        k
        for i, k in enumerate(free_names)
        if min(abs(z[i] - zb[i][0]), abs(z[i] - zb[i][1])) < 1e-6 * (1 + abs(z[i]))
    )
    return FitResult(
        params={k: params[k] for k in PARAMETERS},
        se=se,
        free=free_names,
        fixed={k: v for k, v in fixed.items()},
        tied=tied,
        nll=nll,
        n_trials=len(trials),
        strategy=strategy,
        report=report,
        converged=ok,
        start_nlls=start_nlls,
        seconds=time.perf_counter() - t0,
        cpu_seconds=time.process_time() - c0,
        at_bound=at_bound,
        n_calls=n_calls,
    )


def _progress(items: list, enabled: bool):
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc="fit starts")


def _standard_errors(objective, assemble, free_names, params) -> dict[str, float]:
    """sqrt(diag(H^-1)) of the NLL Hessian in natural parameters (asymptotic ML theory).

    H is the central difference of the exact autograd gradient (2k gradient evaluations).
    """
    theta0 = np.array([params[k] for k in free_names], dtype=np.float64)

    def grad(theta: np.ndarray) -> np.ndarray:
        t = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
        z = torch.stack(
            [
                torch.log(t[i])
                if k in _LOG
                else (torch.log(t[i]) - torch.log1p(-t[i]) if k == "p_common" else t[i])
                for i, k in enumerate(free_names)
            ]
        )
        (g,) = torch.autograd.grad(objective(assemble(z)), t)
        return g.numpy()

    k = len(free_names)
    h = np.zeros((k, k))
    for j in range(k):
        eps = 1e-5 * max(abs(theta0[j]), 1e-2)
        if free_names[j] in ("p_common", "lapse"):
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
    return {name: float(s) for name, s in zip(free_names, se)}


def compare_fits(fits: Sequence[FitResult], labels: Sequence[str] | None = None) -> list[dict]:
    """Rank fits of the same data by AIC: rows with label, k, log L, AIC, BIC, dAIC, dBIC and
    Akaike weights (Burnham & Anderson 2002, eq. 2.14)."""
    if not fits:
        raise ValueError("fits: give at least one FitResult")
    n = {f.n_trials for f in fits}
    if len(n) != 1:
        raise ValueError(f"fits: compare fits of the same data (trial counts differ: {sorted(n)})")
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
# simulation, recovery, posterior predictive checks
# ----------------------------------------------------------------------------------------------


def simulate_trials(
    model: CausalInference,
    conditions: np.ndarray,
    n_per_condition: int,
    strategy: str = "averaging",
    levels: Sequence[float] | None = None,
    report: Sequence[int] = (0, 1),
    unity: bool = False,
    seed: int = 0,
) -> Trials:
    """Simulate a trial table by Monte Carlo (independent of the quadrature likelihood)."""
    cond = np.asarray(conditions, dtype=float)
    g = torch.Generator().manual_seed(int(seed))
    sim = model.simulate(cond, n_per_condition, strategy, g, levels=levels)
    stimuli = np.repeat(cond, n_per_condition, axis=0)
    rep = tuple(report)
    responses = sim["responses"].reshape(-1, cond.shape[1])[:, list(rep)] if rep else None
    u = sim["unity"].reshape(-1) if unity else None
    return Trials(stimuli, responses, rep, u, source="simulated")


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
        raise ValueError("posterior_predictive: needs a fit to button (discrete) responses")
    cond, idx = trials.conditions()
    with _single_thread(), torch.no_grad():
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
