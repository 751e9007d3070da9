"""Standard audiovisual paradigms run on the causal-inference observer.

- the ventriloquist effect: spatial localisation with unity reports (Koerding et al. 2007);
- the sound-induced flash illusion: numerosity of flashes and beeps (Shams et al. 2000, 2005),
  as causal inference over numerosity (Wozny, Beierholm & Shams 2008).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synesthesia.brain.causal_inference import CausalInference
from synesthesia.brain.simulation import simulate_trials
from synesthesia.brain.trials import Trials
from synesthesia.errors import InputError

# Fitted group parameters of Koerding et al. 2007 (PLoS ONE 2(9): e943), degrees of visual angle.
KOERDING_2007 = {"sigma_v": 2.14, "sigma_a": 9.2, "sigma_p": 12.3, "mu_p": 0.0, "p_common": 0.28}
# The five loudspeaker / LED positions of Koerding et al. 2007 (degrees).
KOERDING_POSITIONS = (-10.0, -5.0, 0.0, 5.0, 10.0)

# Illustrative numerosity observer (counts; not a published fit): audition is the more reliable
# sense for counting rapid events, the prior favours small numbers, and common causes are likely.
FLASH_DEFAULTS = {"sigma_v": 0.6, "sigma_a": 0.35, "sigma_p": 1.5, "mu_p": 1.5, "p_common": 0.7}


def koerding_observer(**overrides: float) -> CausalInference:
    """The Koerding et al. 2007 observer (override any parameter by name)."""
    return CausalInference(**{**KOERDING_2007, **overrides})


def full_design(positions_v: Sequence[float], positions_a: Sequence[float]) -> np.ndarray:
    """Every (visual, auditory) stimulus pair: shape (len(v) * len(a), 2)."""
    return np.array([(v, a) for v in positions_v for a in positions_a], dtype=float)


@dataclass
class VentriloquistResult:
    """Simulated trials plus the observer's exact predictions per condition."""

    conditions: np.ndarray  # (C, 2) visual, auditory position
    probabilities: np.ndarray  # (C, K, K, 2) p(visual button, auditory button, unity)
    levels: np.ndarray
    trials: Trials
    baseline: np.ndarray  # (C, 2) mean reports of the same observer with p_common = 0
    posterior_common: np.ndarray  # (C,) E[p(C=1 | x)] over the measurements

    @property
    def disparity(self) -> np.ndarray:
        """Visual minus auditory position per condition."""
        return self.conditions[:, 0] - self.conditions[:, 1]

    def mean_report(self) -> np.ndarray:
        """Predicted mean (visual, auditory) report per condition: (C, 2)."""
        pv = self.probabilities.sum((2, 3))
        pa = self.probabilities.sum((1, 3))
        return np.stack([pv @ self.levels, pa @ self.levels], axis=1)

    def auditory_bias(self) -> np.ndarray:
        """Predicted shift of the auditory report toward vision as a fraction of the disparity,
        (mean auditory report - its value without crossmodal influence) / (s_v - s_a); the
        reference is the same observer with p_common = 0, so prior shrinkage cancels. NaN at
        zero disparity."""
        d = self.disparity
        shift = self.mean_report()[:, 1] - self.baseline[:, 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(d != 0, shift / np.where(d != 0, d, 1.0), np.nan)

    def p_unity(self) -> np.ndarray:
        """Predicted probability of a "same cause" report per condition."""
        return self.probabilities.sum((1, 2))[:, 1]


def ventriloquist(
    model: CausalInference | None = None,
    positions: Sequence[float] = KOERDING_POSITIONS,
    n_per_condition: int = 40,
    strategy: str = "averaging",
    seed: int = 0,
    nodes_per_sigma: float = 4.0,
) -> VentriloquistResult:
    """Simulate the Koerding et al. 2007 ventriloquist experiment (joint visual and auditory
    button reports plus a unity judgement) and compute its exact predictions."""
    model = model or koerding_observer()
    cond = full_design(positions, positions)
    lv = np.asarray(sorted(positions), dtype=float)
    probs = model.response_probabilities(
        cond, lv, strategy, report="both", unity=True, nodes_per_sigma=nodes_per_sigma
    )
    trials = simulate_trials(model, cond, n_per_condition, strategy, lv, (0, 1), True, seed)
    alone = CausalInference(**{**model.params(), "p_common": 0.0})
    p0 = np.asarray(alone.response_probabilities(cond, lv, strategy, report="both"))
    baseline = np.stack([p0.sum(2) @ lv, p0.sum(1) @ lv], axis=1)
    # E[p(C=1|x)] is the unity-report rate of a probability-matching observer
    post = np.asarray(model.unity_probability(cond, "matching"))
    return VentriloquistResult(cond, np.asarray(probs), lv, trials, baseline, post)


# ----------------------------------------------------------------------------------------------
# sound-induced flash illusion
# ----------------------------------------------------------------------------------------------


def flash_observer(**overrides: float) -> CausalInference:
    """A numerosity observer for flashes (visual) and beeps (auditory); see FLASH_DEFAULTS."""
    return CausalInference(**{**FLASH_DEFAULTS, **overrides})


@dataclass
class FlashResult:
    """Predicted numerosity reports of flashes for each (flashes, beeps) condition."""

    conditions: np.ndarray  # (C, 2) number of flashes, number of beeps
    probabilities: np.ndarray  # (C, K) p(report k flashes)
    levels: np.ndarray
    trials: Trials | None = None

    def mean_reported_flashes(self) -> np.ndarray:
        """Predicted mean number of reported flashes per condition."""
        return self.probabilities @ self.levels

    def rate(self, flashes: int, beeps: int, reported: int) -> float:
        """p(report ``reported`` flashes | flashes, beeps)."""
        c = np.flatnonzero((self.conditions[:, 0] == flashes) & (self.conditions[:, 1] == beeps))
        if c.size == 0:
            raise InputError(f"no condition with {flashes} flash(es) and {beeps} beep(s)")
        k = np.flatnonzero(self.levels == reported)
        if k.size == 0:
            raise InputError(f"reported: {reported} is not a response level {self.levels}")
        return float(self.probabilities[c[0], k[0]])


def flash_illusion(
    model: CausalInference | None = None,
    flashes: Sequence[int] = (1, 2, 3),
    beeps: Sequence[int] = (1, 2, 3),
    levels: Sequence[int] = (1, 2, 3, 4),
    strategy: str = "averaging",
    n_per_condition: int = 0,
    seed: int = 0,
) -> FlashResult:
    """Numerosity reports of flashes with concurrent beeps (Shams et al. 2000, 2005).

    The fission illusion is ``rate(1, 2, 2)``: one flash with two beeps seen as two.
    With ``n_per_condition`` > 0 also simulates a trial table (stim_v = flashes,
    stim_a = beeps, resp_v = reported flashes).
    """
    model = model or flash_observer()
    cond = full_design(flashes, beeps)
    lv = np.asarray(sorted(levels), dtype=float)
    probs = model.response_probabilities(cond, lv, strategy, report="visual")
    trials = None
    if n_per_condition > 0:
        trials = simulate_trials(model, cond, n_per_condition, strategy, lv, (0,), False, seed)
    return FlashResult(cond, np.asarray(probs), lv, trials)


def fission_vs_visual_noise(
    sigmas_v: Sequence[float], model: CausalInference | None = None, strategy: str = "averaging"
) -> np.ndarray:
    """p(two flashes reported | one flash, two beeps) for each visual noise level (the trend of
    Shams et al. 2005 / Zhu et al. 2024: the illusion grows as vision gets less reliable)."""
    base = (model or flash_observer()).params()
    out = []
    for s in sigmas_v:
        m = CausalInference(**{**base, "sigma_v": float(s)})
        out.append(flash_illusion(m, (1,), (2,), strategy=strategy).rate(1, 2, 2))
    return np.array(out)
