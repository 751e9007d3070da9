"""Deterministic response distributions of a causal-inference observer, by quadrature.

The observer's estimates are deterministic functions of the internal measurements x, so
p(response | stimuli) = integral over x of p(x | stimuli) p(response | x). We evaluate it on
one regular grid over x shared by every condition: the expensive part (estimates, posterior,
response kernels at each node) is computed once; each condition only changes the Gaussian
weights of the nodes, which factorise over modalities and are contracted axis by axis.

A Riemann sum on a regular grid is spectrally accurate for smooth integrands, so step
discontinuities (a response button's edge, the selection rule's switch, a unity threshold) are
smoothed at the grid's own resolution: each reported estimate gets a shared Gaussian jitter
whose sd is the estimate's change between neighbouring nodes (so the reports of a fused
estimate stay equal), a threshold on the posterior log odds L a logistic of the same local
scale. That bias is second order in the grid step; Richardson extrapolation over the smoothing
variance (scales h and sqrt(2) h) removes it. Monte Carlo in the tests checks the result.

One feature is not smooth at any fixed density: a threshold on p(C=1|x) close to the largest
posterior the measurements reach leaves a small region (a few grid cells or less) above it. So
by default the grid is refined until successive grids agree within a stated tolerance
(:func:`converged_grid`).

This module needs only the observer's parameters (:class:`closed_forms.Observer`); it imports
nothing of :mod:`causal_inference`, which builds on it.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from synesthesia.brain.closed_forms import (
    Observer,
    check_criterion,
    check_strategy,
    estimate_common_t,
    estimate_separate_t,
    log_odds_gradient_t,
    observer_log_odds,
)
from synesthesia.errors import InputError

TOLERANCE = 1e-3  # default: refine the grid until successive grids agree this well
MAX_NODES = 250_000  # default cap of one grid (time and memory)


@contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one thread inside the block (restored after). The tensors here are small:
    thread start-up dominates, and on shared cores torch's pool made a quadrature up to 40x
    slower than one thread (5.5 s against 0.13 s for 4,482 nodes, measured by hand)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@dataclass(frozen=True)
class Report:
    """What a trial's response reports.

    modalities: indices of the modalities whose estimates are reported (joint report when
    several); kind: "discrete" (buttons at ``levels``; a response goes to the nearest level)
    or "continuous"; unity: whether a same-cause / different-cause judgement is reported;
    response_range: (low, high) of continuous responses, for the lapse density;
    criterion: p(C=1|x) threshold of the unity judgement under model averaging.
    """

    modalities: tuple[int, ...] = (0, 1)
    kind: str = "discrete"
    levels: tuple[float, ...] | None = None
    unity: bool = False
    response_range: tuple[float, float] | None = None
    criterion: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in ("discrete", "continuous"):
            raise InputError(f"kind: must be 'discrete' or 'continuous', got {self.kind!r}")
        if self.kind == "discrete" and self.modalities:
            if self.levels is None or len(self.levels) < 2:
                raise InputError("levels: discrete responses need at least two response levels")
            if not all(math.isfinite(v) for v in self.levels):
                raise InputError(f"levels: must be finite numbers, got {list(self.levels)}")
            if len(set(self.levels)) != len(self.levels):
                raise InputError(f"levels: must be distinct, got {list(self.levels)}")
        if not self.modalities and not self.unity:
            raise InputError("report: nothing is reported (no modalities and unity=False)")
        check_criterion(self.criterion)

    @property
    def n_levels(self) -> int:
        """Number of discrete levels per reported modality."""
        return len(self.levels) if self.levels is not None else 0

    def shape(self) -> tuple[int, ...]:
        """Shape of the discrete joint-response table: levels per modality, then 2 for unity."""
        dims = [self.n_levels] * len(self.modalities) if self.kind == "discrete" else []
        return tuple(dims + ([2] if self.unity else []))


class Grid:
    """A regular grid over the measurements, shared by all stimulus conditions.

    stimuli: (C, N) stimulus values; sigmas: sensory noise used to size the grid (axis m has
    step sigma_m / nodes_per_sigma and covers the stimulus range +- span sigma_m; steps grow
    evenly when that would exceed ``max_nodes``). With
    ``common_step`` every axis takes the smallest step: needed when a threshold on p(C=1|x)
    (selection, unity reports under averaging) makes features as narrow as the finest cue.
    """

    def __init__(
        self,
        stimuli: np.ndarray,
        sigmas: np.ndarray,
        nodes_per_sigma: float = 4.0,
        span: float = 5.5,
        max_nodes: int = MAX_NODES,
        common_step: bool = False,
    ) -> None:
        st = np.asarray(stimuli, dtype=np.float64)
        sg = np.asarray(sigmas, dtype=np.float64).reshape(-1)
        if st.ndim != 2 or st.shape[1] != sg.size:
            raise InputError(f"stimuli: need shape (conditions, {sg.size}), got {st.shape}")
        if not (nodes_per_sigma > 0 and span > 0):
            raise InputError("nodes_per_sigma and span: must be > 0")
        steps = (np.full_like(sg, sg.min()) if common_step else sg) / nodes_per_sigma
        extent = np.ptp(st, axis=0) + 2 * span * sg
        count = np.prod(np.ceil(extent / steps) + 1)
        if not (np.all(np.isfinite(extent)) and np.isfinite(count) and np.all(steps > 0)):
            raise InputError(
                f"the quadrature grid over stimuli within [{st.min():.3g}, {st.max():.3g}] with "
                f"noise {sg.tolist()} cannot be built in float64: a value is too large or small"
            )
        if count > max_nodes:  # coarsen evenly rather than run out of time or memory
            steps = steps * (count / max_nodes) ** (1.0 / sg.size)
        self.steps = torch.as_tensor(steps)
        self.uniques: list[torch.Tensor] = []
        self.index: list[torch.Tensor] = []
        self.axes: list[torch.Tensor] = []
        for m in range(sg.size):
            u, inv = np.unique(st[:, m], return_inverse=True)
            self.uniques.append(torch.as_tensor(u))
            self.index.append(torch.as_tensor(inv.reshape(-1)))
            lo, hi = u.min() - span * sg[m], u.max() + span * sg[m]
            step = float(self.steps[m])
            n = int(math.ceil((hi - lo) / step)) + 1
            centre, half = 0.5 * (lo + hi), 0.5 * (n - 1) * step
            self.axes.append(torch.linspace(centre - half, centre + half, n, dtype=torch.float64))
        self.sizes = tuple(int(a.numel()) for a in self.axes)
        mesh = torch.meshgrid(*self.axes, indexing="ij")
        self.points = torch.stack([g.reshape(-1) for g in mesh], dim=-1)  # (G, N)

    def weights(self, sigmas: torch.Tensor) -> list[torch.Tensor]:
        """Per-axis node weights (U_m, G_m): normalised Gaussian densities around each stimulus."""
        out = []
        for m, (u, ax) in enumerate(zip(self.uniques, self.axes)):
            z = (ax[None, :] - u[:, None]) / sigmas[m]
            out.append(torch.softmax(-0.5 * z * z, dim=-1))  # normalised, underflow-safe
        return out


def needs_common_step(strategy: str, report: Report) -> bool:
    """Whether the response distribution has threshold features (see :class:`Grid`)."""
    return strategy == "selection" or (report.unity and strategy == "averaging")


def make_grid(
    stimuli: np.ndarray,
    model: Observer,
    strategy: str,
    report: Report,
    nodes_per_sigma: float,
    max_nodes: int = MAX_NODES,
) -> Grid:
    """The quadrature grid suited to a model, strategy and report."""
    return Grid(
        stimuli,
        model.sigmas.detach().numpy(),
        nodes_per_sigma,
        max_nodes=max_nodes,
        common_step=needs_common_step(strategy, report),
    )


def _components(
    model: Observer, points: torch.Tensor, strategy: str, report: Report, steps
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """Per decision branch at every node: (weight, estimates (G, N), smoothing scales (G, N),
    p(unity=1)). A smoothing scale is the estimate's change across one grid cell."""
    sig, sp, mp = model.sigmas, model.sigma_p, model.mu_p
    n = points.shape[-1]
    a = 1.0 / sig**2
    ap = 1.0 / sp**2
    s1 = estimate_common_t(points, sig, sp, mp).unsqueeze(-1).expand(-1, n)
    s2 = estimate_separate_t(points, sig, sp, mp)
    logodds = observer_log_odds(model, points)
    # smoothing scales stay in the autograd graph: the gradient is the objective's own
    grad_l = log_odds_gradient_t(points, sig, sp, mp) * steps  # (G, N) per-cell change of L
    w1 = (a / (a.sum() + ap)) * steps  # d s_common / dx_j per cell (Koerding 2007, eq. 9)
    h1 = torch.linalg.vector_norm(w1).expand(points.shape[0], n)
    h2 = ((a / (a + ap)) * steps).expand(points.shape[0], n)  # eq. 10, own cue only
    tau = torch.sqrt((grad_l**2).sum(-1) + 1e-24)

    def soft_threshold(criterion: float) -> torch.Tensor:
        return torch.sigmoid((logodds - math.log(criterion / (1.0 - criterion))) / tau)

    one = torch.ones((), dtype=torch.float64)
    zero = torch.zeros((), dtype=torch.float64)
    if strategy == "averaging":
        p = torch.sigmoid(logodds).unsqueeze(-1)
        est = p * s1 + (1.0 - p) * s2
        # d est_m / dx_j = p w1_j + (1-p) delta_mj w2_m + (s1 - s2_m) p (1-p) dL/dx_j
        jac = p[..., None] * w1 + ((s1 - s2) * p * (1 - p))[..., None] * grad_l[:, None, :]
        jac = jac + torch.diag_embed((1 - p) * (a / (a + ap)) * steps)
        h = torch.sqrt((jac**2).sum(-1) + 1e-24)
        unity = soft_threshold(report.criterion) if report.unity else None
        return [(torch.ones_like(logodds), est, h, unity)]
    # selection takes the common-cause estimate when p(C=1|x) > criterion (Wozny et al. 2010)
    q = soft_threshold(report.criterion) if strategy == "selection" else torch.sigmoid(logodds)
    return [(q, s1, h1, one), (1.0 - q, s2, h2, zero)]


_GH_T, _GH_W = np.polynomial.hermite_e.hermegauss(24)  # nodes/weights for E over N(0, 1)
_GH_W = _GH_W / _GH_W.sum()


def _button_table(est: torch.Tensor, h: torch.Tensor, edges: tuple, sigma_motor: torch.Tensor):
    """p(joint buttons | estimates) for the reported estimates est (G, k): (G, K**k).

    Each report is r_m = est_m + h_m eta + eps_m: eta ~ N(0, 1) is the grid smoothing, shared
    by the reports of one trial so that a fused estimate still gives equal reports; eps_m ~
    N(0, sigma_motor^2) is independent motor noise. Without motor noise this is closed form
    (eta must fall in the intersection of the shifted bins); with it, eta is integrated by
    24-node Gauss-Hermite quadrature.
    """
    lo_e, hi_e = edges
    g, k = est.shape
    n_lv = lo_e.numel()
    motor_zero = not sigma_motor.requires_grad and float(sigma_motor) == 0.0
    if motor_zero:
        lo = torch.full((g,) + (1,) * k, -1e300, dtype=torch.float64)
        hi = torch.full((g,) + (1,) * k, 1e300, dtype=torch.float64)
        for j in range(k):
            shape = [g] + [1] * k
            shape[j + 1] = n_lv
            hj = h[:, j : j + 1]
            lo = torch.maximum(lo, ((lo_e[None, :] - est[:, j : j + 1]) / hj).reshape(shape))
            hi = torch.minimum(hi, ((hi_e[None, :] - est[:, j : j + 1]) / hj).reshape(shape))
        p = torch.special.ndtr(hi) - torch.special.ndtr(lo)
        return p.clamp_min(0.0).reshape(g, -1)
    total = 0.0
    for t, w in zip(_GH_T, _GH_W):
        e = est + h * float(t)
        table = torch.ones((g, 1), dtype=torch.float64)
        for j in range(k):
            ej = e[:, j : j + 1]
            pm = torch.special.ndtr((hi_e - ej) / sigma_motor) - torch.special.ndtr(
                (lo_e - ej) / sigma_motor
            )
            table = (table.unsqueeze(-1) * pm.unsqueeze(1)).reshape(g, -1)
        total = total + float(w) * table
    return total


def _discrete_table(
    model: Observer, points: torch.Tensor, strategy: str, report: Report, steps, scale
) -> torch.Tensor:
    """p(joint discrete response | x) at every node, (G, R), before lapses."""
    edges = None
    if report.modalities:
        levels = torch.as_tensor(sorted(report.levels), dtype=torch.float64)
        mid = 0.5 * (levels[1:] + levels[:-1])
        far = torch.tensor([1e30], dtype=torch.float64)  # finite: keeps gradients NaN-free
        edges = (torch.cat([-far, mid]), torch.cat([mid, far]))
    total = None
    mods = list(report.modalities)
    for weight, est, h, unity in _components(model, points, strategy, report, steps * scale):
        table = weight.unsqueeze(-1)  # (G, 1)
        if mods:
            table = table * _button_table(est[:, mods], h[:, mods], edges, model.sigma_motor)
        if report.unity:
            u = unity.expand(points.shape[0]) if unity.ndim == 0 else unity
            pu = torch.stack([1.0 - u, u], dim=-1)
            table = (table.unsqueeze(-1) * pu.unsqueeze(1)).reshape(table.shape[0], -1)
        total = table if total is None else total + table
    return total


def probabilities_on_grid(
    model: Observer,
    stimuli: np.ndarray,
    report: Report,
    strategy: str,
    grid: Grid,
    richardson: bool = True,
) -> torch.Tensor:
    """p(response | stimulus) on one given grid: tensor (C, *report.shape())."""
    weights = grid.weights(model.sigmas)
    results = []
    for scale in (1.0, math.sqrt(2.0)) if richardson else (1.0,):
        t = _discrete_table(model, grid.points, strategy, report, grid.steps, scale)
        t = t.reshape(*grid.sizes, -1)
        for w in weights:
            t = torch.tensordot(t, w, dims=([0], [1]))  # contract the next measurement axis
        # t: (R, U_1, ..., U_N) -> pick each condition's stimulus combination
        results.append(t[(slice(None), *grid.index)].transpose(0, 1))
    # Richardson extrapolation over the smoothing variance (h^2, 2 h^2): removes the O(h^2) bias
    probs = (2.0 * results[0] - results[1]).clamp_min(0.0) if richardson else results[0]
    probs = probs / probs.sum(-1, keepdim=True)
    probs = (1.0 - model.lapse) * probs + model.lapse / probs.shape[-1]
    return probs.reshape(probs.shape[0], *report.shape())


@dataclass
class Converged:
    """The outcome of :func:`converged_grid`."""

    grid: Grid
    probabilities: torch.Tensor  # on ``grid``
    change: float  # largest change of any probability at the last refinement
    nodes_per_sigma: float  # the density of ``grid``
    tol: float

    @property
    def coarse_nodes_per_sigma(self) -> float:
        """The density one refinement below ``grid``: its error is about ``change``, so it is
        the cheapest density known to meet ``tol`` when ``ok``."""
        return self.nodes_per_sigma / math.sqrt(2.0)

    @property
    def ok(self) -> bool:
        """Whether the last refinement changed no probability by more than ``tol``."""
        return self.change <= self.tol


def converged_grid(
    model: Observer,
    stimuli: np.ndarray,
    report: Report,
    strategy: str,
    nodes_per_sigma: float = 4.0,
    tol: float = TOLERANCE,
    max_nodes: int = MAX_NODES,
    max_refinements: int = 8,
) -> Converged:
    """The grid on which the response probabilities have converged to ``tol``.

    Starting at ``nodes_per_sigma``, the density grows by sqrt(2) until the largest change of any
    probability between successive grids is at most ``tol``; the finer grid is kept. (The error
    of the finer grid is then a fraction of ``tol``: the error falls about 3-fold per step; see
    the tests against Monte Carlo.) A threshold on p(C=1|x) near the largest posterior the
    measurements reach makes a small region that a coarse grid misses; this finds the density
    that resolves it. ``max_nodes`` or ``max_refinements`` may stop it first (``ok`` False).
    """
    if not tol > 0:
        raise InputError(f"tol: must be > 0, got {tol!r}")
    nps = density = float(nodes_per_sigma)
    grid = make_grid(stimuli, model, strategy, report, nps, max_nodes)
    probs = probabilities_on_grid(model, stimuli, report, strategy, grid)
    change = math.inf
    for _ in range(max_refinements):
        nps *= math.sqrt(2.0)
        finer = make_grid(stimuli, model, strategy, report, nps, max_nodes)
        if finer.points.shape[0] <= grid.points.shape[0]:
            break  # capped by max_nodes: no finer grid
        finer_probs = probabilities_on_grid(model, stimuli, report, strategy, finer)
        change = float((finer_probs - probs).abs().max())
        grid, probs, density = finer, finer_probs, nps
        if change <= tol:
            break
    return Converged(grid, probs, change, density, tol)


def discrete_probabilities(
    model: Observer,
    stimuli: np.ndarray,
    report: Report,
    strategy: str = "averaging",
    grid: Grid | None = None,
    nodes_per_sigma: float = 4.0,
    richardson: bool = True,
    tol: float | None = TOLERANCE,
) -> torch.Tensor:
    """p(response | stimulus) for every condition: tensor (C, *report.shape()).

    Without ``grid``, the grid starts at ``nodes_per_sigma`` and is refined until successive
    grids agree within ``tol`` (:func:`converged_grid`; ``tol=None``: one grid, no check). With
    ``grid``, that grid is used as it is. Differentiable with respect to the model's tensor
    parameters. ``richardson=False`` skips the extrapolation (half the cost, O(h^2) smoothing
    bias; for coarse searches).
    """
    check_strategy(strategy)
    if report.kind != "discrete" and report.modalities:
        raise InputError("discrete_probabilities needs a discrete report; use continuous_density")
    if grid is None and tol is not None and richardson:
        result = converged_grid(model, stimuli, report, strategy, nodes_per_sigma, tol)
        if not result.ok:
            warnings.warn(
                f"quadrature: the response probabilities changed by {result.change:.2g} on the "
                f"last grid refinement ({result.grid.points.shape[0]} nodes), more than "
                f"tol={tol:g}",
                RuntimeWarning,
                stacklevel=2,
            )
        return result.probabilities
    if grid is None:
        grid = make_grid(stimuli, model, strategy, report, nodes_per_sigma)
    return probabilities_on_grid(model, stimuli, report, strategy, grid, richardson)


def continuous_density(
    model: Observer,
    stimuli: np.ndarray,
    responses: np.ndarray,
    report: Report,
    strategy: str = "averaging",
    unity: np.ndarray | None = None,
    grid: Grid | None = None,
    nodes_per_sigma: float = 4.0,
    chunk: int = 256,
) -> torch.Tensor:
    """Per-trial likelihood of continuous responses (a density; times p(unity) if reported).

    stimuli: (T, N) per-trial stimuli; responses: (T, len(report.modalities)); unity: (T,) of
    0/1 when ``report.unity``. With motor noise the response density given x is a Gaussian
    mixture over the decision branches; summed over the quadrature nodes.
    """
    check_strategy(strategy)
    if report.kind != "continuous":
        raise InputError("continuous_density needs report.kind='continuous'")
    if grid is None:
        grid = make_grid(stimuli, model, strategy, report, nodes_per_sigma)
    if not model.sigma_motor.requires_grad and float(model.sigma_motor) <= 0.0:
        raise InputError("sigma_motor: continuous responses need motor noise > 0 (a density)")
    r = torch.as_tensor(np.asarray(responses, dtype=np.float64)).reshape(len(stimuli), -1)
    k = len(report.modalities)
    if r.shape[1] != k:
        raise InputError(f"responses: need {k} column(s), one per reported modality")
    uu = None
    if report.unity:
        if unity is None:
            raise InputError("unity: the report includes unity judgements; pass them")
        uu = torch.as_tensor(np.asarray(unity, dtype=np.float64)).reshape(-1)
    if report.response_range is not None:
        lo, hi = report.response_range
    else:
        lo, hi = float(r.min()) - 1.0, float(r.max()) + 1.0
    lapse_density = (1.0 / (hi - lo)) ** k * (0.5 if report.unity else 1.0)
    weights = grid.weights(model.sigmas)
    s2 = model.sigma_motor**2
    mods = list(report.modalities)
    results = []
    for scale in (1.0, math.sqrt(2.0)):
        comps = _components(model, grid.points, strategy, report, grid.steps * scale)
        out = []
        for start in range(0, r.shape[0], chunk):
            sl = slice(start, start + chunk)
            rc = r[sl]
            dens = None
            for weight, est, h, un in comps:
                # reports ~ N(est, s2 I + h h^T): Sherman-Morrison / determinant lemma
                d = rc[:, None, :] - est[None, :, mods]  # (t, G, k)
                hv = h[None, :, mods]
                hh = (h[:, mods] ** 2).sum(-1)  # (G,)
                hd = (hv * d).sum(-1)
                quad = (d * d).sum(-1) / s2 - hd**2 / (s2 * (s2 + hh))
                logdet = k * torch.log(s2) + torch.log1p(hh / s2)
                kern = weight[None, :] * torch.exp(
                    -0.5 * (quad + logdet + k * math.log(2.0 * math.pi))
                )
                if report.unity:
                    u = un if un.ndim > 0 else un.expand(grid.points.shape[0])
                    uc = uu[sl, None]
                    kern = kern * (uc * u[None, :] + (1.0 - uc) * (1.0 - u[None, :]))
                dens = kern if dens is None else dens + kern
            t = dens.reshape(rc.shape[0], *grid.sizes)
            for m, w in enumerate(weights):
                wt = w[grid.index[m][sl]]  # (t, G_m)
                t = (t * wt.reshape(rc.shape[0], wt.shape[1], *([1] * (t.ndim - 2)))).sum(1)
            out.append(t)
        results.append(torch.cat(out))
    # Richardson extrapolation over the smoothing variance removes its O(h^2) bias
    like = (2.0 * results[0] - results[1]).clamp_min(1e-300)
    return (1.0 - model.lapse) * like + model.lapse * lapse_density
