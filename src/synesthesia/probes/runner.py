"""The paradigm runner: the brain module's paradigms on any responder, fitted like people.

A *responder* is anything that answers trials: given stimulus conditions (C, N), a number of
trials per condition and a generator, it returns its reports (:class:`Responses`). A trained
network is one (:mod:`synesthesia.probes.ventriloquist`); the brain's own causal-inference
observer is another (:class:`ObserverResponder`, a wrapper of
:meth:`synesthesia.brain.CausalInference.simulate`). :func:`run_paradigm` turns the reports into
the :class:`synesthesia.brain.Trials` table that the brain's fitting code takes, and
:func:`fit_models` fits causal inference (each decision strategy), forced fusion and full
segregation to it by maximum likelihood and ranks them (AIC, BIC). Nothing here re-implements a
model: the likelihoods, simulations and comparisons are :mod:`synesthesia.brain`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch

from synesthesia.brain.causal_inference import STRATEGIES, CausalInference
from synesthesia.brain.fitting import FitResult, compare_fits, fit_causal_inference
from synesthesia.brain.trials import Trials
from synesthesia.errors import InputError

#: Every model :func:`fit_models` knows: the three causal-inference strategies, forced fusion
#: (p_common fixed at 1) and full segregation (p_common fixed at 0).
MODELS = (*STRATEGIES, "fusion", "segregation")


@dataclass
class Responses:
    """A responder's reports: ``estimates`` (C, n, K) per condition, trial and modality
    (continuous values or buttons); ``unity`` (C, n) of 0/1 "one cause" reports, or None."""

    estimates: np.ndarray
    unity: np.ndarray | None = None


class Responder(Protocol):
    """Anything that answers trials of an audiovisual paradigm."""

    def respond(
        self,
        conditions: np.ndarray,
        n: int,
        generator: torch.Generator,
        levels: np.ndarray | None = None,
    ) -> Responses:
        """Reports for ``n`` trials of each stimulus row of ``conditions`` (C, N), fresh noise
        from ``generator``; with ``levels``, a responder may answer with buttons itself."""
        ...


class ObserverResponder:
    """The causal-inference observer of :mod:`synesthesia.brain` as a responder.

    Its reports are exactly :meth:`CausalInference.simulate`'s, so a paradigm run on it gives
    the trial table of :func:`synesthesia.brain.simulate_trials` with the same seed.
    """

    def __init__(self, model: CausalInference, strategy: str = "averaging") -> None:
        if strategy not in STRATEGIES:
            raise InputError(f"strategy: use one of {', '.join(STRATEGIES)}, got {strategy!r}")
        self.model = model
        self.strategy = strategy

    def respond(
        self,
        conditions: np.ndarray,
        n: int,
        generator: torch.Generator,
        levels: np.ndarray | None = None,
    ) -> Responses:
        """Simulated reports of the observer (buttons when ``levels`` is given)."""
        sim = self.model.simulate(conditions, n, self.strategy, generator, levels=levels)
        return Responses(sim["responses"], sim["unity"])


def nearest_level(values: np.ndarray, levels: Sequence[float]) -> np.ndarray:
    """Each value replaced by the nearest of ``levels`` (a button press; ties to the lower)."""
    lv = np.sort(np.asarray(levels, dtype=float))
    v = np.asarray(values, dtype=float)
    return lv[np.abs(v[..., None] - lv).argmin(-1)]


def run_paradigm(
    responder: Responder,
    conditions: np.ndarray,
    n_per_condition: int,
    *,
    levels: Sequence[float] | None = None,
    report: Sequence[int] = (0, 1),
    unity: bool = False,
    seed: int = 0,
    source: str = "responder",
) -> Trials:
    """Run ``n_per_condition`` trials of every condition on ``responder``; a trial table.

    ``levels``: the response buttons (each report goes to the nearest); ``report``: the
    modalities whose reports the table keeps; ``unity``: also keep the one-cause reports.
    The generator is ``torch.Generator().manual_seed(seed)``: the same seed, the same table.
    """
    cond = np.asarray(conditions, dtype=float)
    if cond.ndim != 2 or cond.shape[0] < 1:
        raise InputError(f"conditions: need a 2-D (conditions, modalities) array, got {cond.shape}")
    if not isinstance(n_per_condition, int) or n_per_condition < 1:
        raise InputError(f"n_per_condition: need an integer >= 1, got {n_per_condition!r}")
    lv = None if levels is None else np.sort(np.asarray(levels, dtype=float))
    g = torch.Generator().manual_seed(int(seed))
    out = responder.respond(cond, n_per_condition, g, lv)
    est = np.asarray(out.estimates, dtype=float)
    rep = tuple(int(m) for m in report)
    if est.shape[:2] != (cond.shape[0], n_per_condition) or est.ndim != 3:
        raise InputError(
            f"responder: returned estimates of shape {est.shape}; expected "
            f"({cond.shape[0]}, {n_per_condition}, modalities)"
        )
    if any(m < 0 or m >= est.shape[2] for m in rep):
        raise InputError(f"report: modalities {rep} not in the responder's {est.shape[2]}")
    if not np.all(np.isfinite(est)):
        raise InputError("responder: returned non-finite estimates (NaN or infinite)")
    if lv is not None:
        est = nearest_level(est, lv)
    stimuli = np.repeat(cond, n_per_condition, axis=0)
    responses = est.reshape(-1, est.shape[2])[:, list(rep)] if rep else None
    u = None
    if unity:
        if out.unity is None:
            raise InputError("unity: this responder gives no one-cause reports")
        u = np.asarray(out.unity, dtype=float).reshape(-1)
    return Trials(stimuli, responses, rep, u, source=source)


@dataclass
class ModelComparison:
    """Maximum-likelihood fits of several models to one trial table, ranked.

    ``fits``: model name -> :class:`FitResult`; ``rows``: :func:`compare_fits`'s ranking (AIC,
    BIC, their differences, Akaike weights).
    """

    fits: dict[str, FitResult]
    rows: list[dict]
    notes: list[str] = field(default_factory=list)  # failed searches, named

    @property
    def best(self) -> str:
        """The model with the lowest BIC."""
        return min(self.fits, key=lambda m: self.fits[m].bic)

    def delta_bic(self, model: str, against: str) -> float:
        """BIC(against) - BIC(model): positive when ``model`` is preferred; above 10 is "very
        strong" evidence (Kass & Raftery 1995, sec. 3.2)."""
        for name in (model, against):
            if name not in self.fits:
                raise InputError(f"model: {name!r} was not fitted (fitted: {', '.join(self.fits)})")
        return self.fits[against].bic - self.fits[model].bic

    def table(self) -> str:
        """The ranking as text (BIC order)."""
        head = f"{'model':<12} {'k':>2} {'log L':>11} {'BIC':>10} {'dBIC':>8} {'dAIC':>8}"
        lines = [head]
        for r in sorted(self.rows, key=lambda r: r["bic"]):
            lines.append(
                f"{r['label']:<12} {r['k']:>2} {r['log_likelihood']:>11.2f} {r['bic']:>10.2f} "
                f"{r['delta_bic']:>8.2f} {r['delta_aic']:>8.2f}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-able: each fit's summary and the ranking."""
        return {
            "fits": {m: f.to_dict() for m, f in self.fits.items()},
            "ranking": self.rows,
            "best_by_bic": self.best,
            "notes": self.notes,
        }


def fit_models(
    trials: Trials,
    levels: Sequence[float] | None = None,
    models: Sequence[str] = MODELS,
    *,
    fixed: dict[str, float] | None = None,
    n_starts: int = 2,
    seed: int = 0,
    compute_se: bool = True,
) -> ModelComparison:
    """Fit each of ``models`` (names in :data:`MODELS`) to ``trials`` and rank them.

    A strategy name fits causal inference with that decision strategy (p_common free);
    "fusion" is the same observer with p_common fixed at 1 (every trial fused), "segregation"
    with p_common fixed at 0 (no crossmodal influence); ``fixed`` holds further parameters for
    all. The likelihood and the search are :func:`synesthesia.brain.fit_causal_inference`'s.
    """
    if not models:
        raise InputError(f"models: give at least one of {', '.join(MODELS)}")
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise InputError(f"models: unknown {unknown}; use any of {', '.join(MODELS)}")
    fixed = dict(fixed or {})
    fits: dict[str, FitResult] = {}
    notes: list[str] = []
    # the nested models first: their optimum is a feasible start of the full model
    order = sorted(models, key=lambda m: m not in ("fusion", "segregation"))
    for m in order:
        strategy, held = m, dict(fixed)
        if m in ("fusion", "segregation"):
            strategy = "averaging"
            held["p_common"] = 1.0 if m == "fusion" else 0.0
        kw = {"levels": levels, "fixed": held, "seed": seed, "compute_se": compute_se}
        fit = fit_causal_inference(trials, strategy, n_starts=n_starts, **kw)
        if strategy == m:
            # a local optimum worse than a nested model's (which the full model contains, up to
            # p_common at 1e-4 of its bounds) is a failed search: restart from the nested fit
            for nested, pc in (("segregation", 1e-3), ("fusion", 1.0 - 1e-3)):
                if nested in fits and fit.nll > fits[nested].nll + 1e-6:
                    start = {k: fits[nested].params[k] for k in fit.free if k != "p_common"}
                    retry = fit_causal_inference(
                        trials, strategy, n_starts=1, start={**start, "p_common": pc}, **kw
                    )
                    fit = retry if retry.nll < fit.nll else fit
                if nested in fits and fit.nll > fits[nested].nll + 1e-6:
                    notes.append(
                        f"{m}: the search ended at log L {-fit.nll:.2f}, below the nested "
                        f"{nested} fit's {-fits[nested].nll:.2f} (which it contains): a failed "
                        "search, not evidence against the model"
                    )
        fits[m] = fit
    fits = {m: fits[m] for m in models}
    rows = compare_fits(list(fits.values()), list(fits))
    return ModelComparison(fits, rows, notes)


def condition_means(trials: Trials) -> tuple[np.ndarray, np.ndarray]:
    """The conditions (C, N) of a table and the mean report per condition and reported
    modality (C, k)."""
    cond, idx = trials.conditions()
    if trials.responses is None:
        raise InputError(f"{trials.source}: the table has no reports (resp_v / resp_a)")
    counts = np.bincount(idx, minlength=len(cond)).astype(float)
    sums = np.zeros((len(cond), trials.responses.shape[1]))
    np.add.at(sums, idx, trials.responses)
    return cond, sums / counts[:, None]
