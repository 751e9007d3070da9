"""Plots of the probes: each function takes ``ax=`` and returns it (never shows)."""

from __future__ import annotations

import numpy as np

from synesthesia.brain.plots import axes_or_new, plot_localisation_bias


def plot_network_bias(probe, human=None, ax=None):
    """Auditory bias toward vision against disparity: the network's reports (points), the
    causal-inference fit to them (line) and, with ``human`` (a VentriloquistResult such as
    :func:`synesthesia.probes.ventriloquist.human_reference`), the human fit (line)."""
    ax = axes_or_new(ax)
    if human is not None:
        plot_localisation_bias(human, ax=ax, label="human fit (Koerding et al. 2007)")
    plot_localisation_bias(
        probe.fitted,
        ax=ax,
        observed=probe.network_bias,
        label=f"causal-inference fit to the network (p_train={probe.p_train:g})",
    )
    for line in ax.get_lines():  # brain.plots labels the observed points "data"
        if line.get_label() == "data":
            line.set_label("network reports")
    ax.legend(frameon=False, fontsize=7)
    return ax


def plot_p_common_vs_p_train(sweep, ax=None):
    """Fitted p_common (+- 1.96 SE) against the p_train each network was trained on."""
    ax = axes_or_new(ax)
    rows = sweep.p_common_table()
    x = np.array([r["p_train"] for r in rows])
    y = np.array([r["p_common"] for r in rows])
    se = np.array([r["se"] if r["se"] is not None else np.nan for r in rows], dtype=float)
    ax.errorbar(x, y, yerr=1.96 * np.nan_to_num(se), fmt="o", capsize=3, label="fitted p_common")
    ax.plot([0, 1], [0, 1], color="0.6", lw=0.8, ls="--", label="p_common = p_train")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("p_train (probability of one source in training)")
    ax.set_ylabel("fitted p_common")
    ax.legend(frameon=False, fontsize=7)
    return ax


def plot_flash_trend(levels, ax=None):
    """Illusion rates against visual noise (a list of FlashLevel): the network's (points) and
    the causal-inference fit's (lines), fission (1 flash + 2 beeps seen as 2) and fusion
    (2 flashes + 1 beep seen as 1)."""
    ax = axes_or_new(ax)
    x = [lv.noise_v for lv in levels]
    ax.plot(x, [lv.fission for lv in levels], "o", color="C0", label="fission, network")
    ax.plot(x, [lv.fitted_fission for lv in levels], "-", color="C0", label="fission, CI fit")
    ax.plot(x, [lv.fusion for lv in levels], "s", color="C1", mfc="none", label="fusion, network")
    ax.plot(x, [lv.fitted_fusion for lv in levels], "--", color="C1", label="fusion, CI fit")
    ax.set_xlabel("visual noise (sd of the flash stream)")
    ax.set_ylabel("illusion rate")
    ax.set_ylim(0, 1)
    ax.legend(frameon=False, fontsize=7)
    return ax


def plot_flash_reports(level, ax=None):
    """Mean reported flashes against beeps, one line per number of flashes (one FlashLevel)."""
    ax = axes_or_new(ax)
    cond, idx = level.trials.conditions()
    means = np.bincount(idx, weights=level.trials.responses[:, 0]) / np.bincount(idx)
    for f in np.unique(cond[:, 0]):
        sel = cond[:, 0] == f
        ax.plot(cond[sel, 1], means[sel], "-o", label=f"{int(f)} flash(es)")
    ax.set_xlabel("number of beeps")
    ax.set_ylabel("mean reported flashes")
    ax.set_title(f"network, visual noise {level.noise_v:g}", fontsize=8)
    ax.legend(frameon=False, fontsize=7)
    return ax


def plot_enhancement(result, ax=None):
    """Enhancement (combined minus the better single accuracy) against the better single
    accuracy, every condition: the joint embedding's (points) and the ML prediction's."""
    ax = axes_or_new(ax)
    best = result.best_single().ravel()
    ax.plot(best, result.enhancement().ravel(), "o", label="joint embedding (image + speech)")
    ax.plot(best, (result.predicted - result.best_single()).ravel(), "x", label="ML prediction")
    ax.axhline(0, color="0.7", lw=0.8)
    ax.set_xlabel("better single-modality accuracy")
    ax.set_ylabel("enhancement (accuracy points)")
    ax.legend(frameon=False, fontsize=7)
    return ax


def plot_accuracy_grid(result, ax=None):
    """Combined accuracy against speech SNR, one line per image noise, with the single ones."""
    ax = axes_or_new(ax)
    x = np.array(result.snr_db)
    ax.plot(x, result.speech, "k--", label="speech alone")
    for i, s in enumerate(result.image_noise):
        line = ax.plot(x, result.combined[i], "-o", ms=3, label=f"image noise {s:g} + speech")
        ax.axhline(result.image[i], color=line[0].get_color(), lw=0.6, ls=":")
    ax.set_xlabel("speech SNR (dB)")
    ax.set_ylabel("zero-shot accuracy")
    ax.set_ylim(0, 1)
    ax.legend(frameon=False, fontsize=6)
    return ax
