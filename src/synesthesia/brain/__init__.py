"""Multisensory integration in the brain: cue combination, Bayesian causal inference, the
ventriloquist, flash and McGurk illusions, the temporal binding window, fitted to trial data.

Depends on numpy, scipy and torch only (of synesthesia, only on synesthesia.errors). Inside the
room the arrows point one way: closed_forms <- quadrature <- causal_inference <- simulation
<- paradigms, fitting (with parameters); trials is below all of them; speech and timing stand
alone.
"""

from synesthesia.brain.causal_inference import STRATEGIES, CausalInference
from synesthesia.brain.cue_combination import (
    FusedEstimate,
    discrimination_threshold,
    fuse,
    fused_sigma,
    mle_weights,
    predicted_bimodal_threshold,
)
from synesthesia.brain.fitting import (
    FitResult,
    PosteriorPredictive,
    RecoveryResult,
    compare_fits,
    compare_strategies,
    fit_causal_inference,
    format_comparison,
    parameter_recovery,
    posterior_predictive,
)
from synesthesia.brain.paradigms import (
    FLASH_DEFAULTS,
    KOERDING_2007,
    KOERDING_POSITIONS,
    FlashResult,
    VentriloquistResult,
    fission_vs_visual_noise,
    flash_illusion,
    flash_observer,
    koerding_observer,
    ventriloquist,
)
from synesthesia.brain.parameters import ParameterSpec
from synesthesia.brain.quadrature import Report, continuous_density, discrete_probabilities
from synesthesia.brain.simulation import simulate_trials
from synesthesia.brain.speech import (
    FLMPFit,
    McGurkModel,
    fit_flmp,
    flmp_probabilities,
    mcgurk_flmp_defaults,
    mcgurk_rates,
)
from synesthesia.brain.timing import STANDARD_SOAS, SimultaneityModel
from synesthesia.brain.trials import Trials, read_trials, validate_trials, write_trials

__all__ = [
    "STRATEGIES",
    "CausalInference",
    "FusedEstimate",
    "discrimination_threshold",
    "fuse",
    "fused_sigma",
    "mle_weights",
    "predicted_bimodal_threshold",
    "FitResult",
    "ParameterSpec",
    "PosteriorPredictive",
    "RecoveryResult",
    "compare_fits",
    "compare_strategies",
    "fit_causal_inference",
    "format_comparison",
    "parameter_recovery",
    "posterior_predictive",
    "simulate_trials",
    "FLASH_DEFAULTS",
    "KOERDING_2007",
    "KOERDING_POSITIONS",
    "FlashResult",
    "VentriloquistResult",
    "fission_vs_visual_noise",
    "flash_illusion",
    "flash_observer",
    "koerding_observer",
    "ventriloquist",
    "Report",
    "continuous_density",
    "discrete_probabilities",
    "FLMPFit",
    "McGurkModel",
    "fit_flmp",
    "flmp_probabilities",
    "mcgurk_flmp_defaults",
    "mcgurk_rates",
    "STANDARD_SOAS",
    "SimultaneityModel",
    "Trials",
    "read_trials",
    "validate_trials",
    "write_trials",
]
