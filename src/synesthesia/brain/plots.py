"""Plots of the brain models: every function takes ``ax=`` and returns it (never shows)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def axes_or_new(ax):
    if ax is None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(5, 3.6))
    return ax


def _by_disparity(disparity: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(values)
    d = np.unique(disparity[keep])
    return d, np.array([values[keep][disparity[keep] == x].mean() for x in d])


def plot_localisation_bias(result, ax=None, observed=None, label: str = "model"):
    """Auditory localisation bias toward vision against disparity (a VentriloquistResult).

    ``observed``: optional per-condition bias from data, drawn as points.
    """
    ax = axes_or_new(ax)
    d, b = _by_disparity(result.disparity, result.auditory_bias())
    ax.plot(d, b, "-o", label=label)
    if observed is not None:
        do, bo = _by_disparity(result.disparity, np.asarray(observed))
        ax.plot(do, bo, "s", mfc="none", label="data")
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set_xlabel("disparity, visual - auditory (deg)")
    ax.set_ylabel("auditory bias toward vision")
    ax.legend(frameon=False)
    return ax


def plot_p_common(result, ax=None, label: str = "E[p(C=1|x)]"):
    """Posterior probability of a common cause (and the unity-report rate) against disparity."""
    ax = axes_or_new(ax)
    d, p = _by_disparity(result.disparity, result.posterior_common)
    ax.plot(d, p, "-o", label=label)
    d2, u = _by_disparity(result.disparity, result.p_unity())
    ax.plot(d2, u, "--", label="p(unity report)")
    ax.set_xlabel("disparity, visual - auditory (deg)")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.legend(frameon=False)
    return ax


def plot_flash_illusion(result, ax=None):
    """Mean reported flashes against beeps, one line per number of flashes (a FlashResult)."""
    ax = axes_or_new(ax)
    mean = result.mean_reported_flashes()
    for f in np.unique(result.conditions[:, 0]):
        sel = result.conditions[:, 0] == f
        ax.plot(result.conditions[sel, 1], mean[sel], "-o", label=f"{int(f)} flash(es)")
    ax.set_xlabel("number of beeps")
    ax.set_ylabel("mean reported flashes")
    ax.legend(frameon=False)
    return ax


def plot_fission_trend(sigmas_v: Sequence[float], rates: Sequence[float], ax=None):
    """Illusory second flash (1 flash, 2 beeps) against visual noise."""
    ax = axes_or_new(ax)
    ax.plot(sigmas_v, rates, "-o")
    ax.set_xlabel("visual numerosity noise sigma_v")
    ax.set_ylabel("p(2 flashes | 1 flash, 2 beeps)")
    ax.set_ylim(0, 1)
    return ax


def plot_mcgurk(table: dict, syllables: Sequence[str] = ("ba", "da", "ga"), ax=None, title=""):
    """Stacked response proportions for every (auditory, visual) pair of syllables."""
    ax = axes_or_new(ax)
    keys = list(table)
    probs = np.array([table[k] for k in keys])
    bottom = np.zeros(len(keys))
    for j, s in enumerate(syllables):
        ax.bar(range(len(keys)), probs[:, j], bottom=bottom, label=f'"{s}"')
        bottom += probs[:, j]
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([f"A{a}\nV{v}" for a, v in keys], fontsize=7)
    ax.set_ylabel("response proportion")
    ax.set_ylim(0, 1.2)
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=7, ncol=3, loc="upper center")
    return ax


def plot_simultaneity(model, soas: Sequence[float], ax=None, observed=None):
    """p(simultaneous) against SOA (a SimultaneityModel), optionally with observed rates."""
    ax = axes_or_new(ax)
    s = np.linspace(min(soas), max(soas), 401)
    ax.plot(s, model.p_simultaneous(s), label="model")
    if observed is not None:
        ax.plot(soas, observed, "o", mfc="none", label="data")
    ax.set_xlabel("SOA (ms, vision leads > 0)")
    ax.set_ylabel("p(simultaneous)")
    ax.set_ylim(0, 1)
    ax.legend(frameon=False)
    return ax


def plot_fit(ppc, modality: int = 1, ax=None):
    """Fitted model over data: mean report per condition (a PosteriorPredictive), with the
    predictive interval, against the stimulus of the reported modality."""
    ax = axes_or_new(ax)
    order = np.lexsort((ppc.conditions[:, 1], ppc.conditions[:, 0]))
    x = np.arange(len(order))
    j = min(modality, ppc.observed.shape[1] - 1)
    ax.fill_between(x, ppc.lower[order, j], ppc.upper[order, j], alpha=0.3, label="95% predictive")
    ax.plot(x, ppc.predicted[order, j], "-", label="model")
    ax.plot(x, ppc.observed[order, j], "o", mfc="none", label="data")
    ax.set_xticks(x)
    ax.set_xticklabels([f"{v:g}/{a:g}" for v, a in ppc.conditions[order]], rotation=90, fontsize=6)
    ax.set_xlabel("condition (visual / auditory)")
    ax.set_ylabel("mean report")
    ax.legend(frameon=False, fontsize=7)
    return ax
