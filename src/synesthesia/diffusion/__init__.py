"""Diffusion mathematics, model-agnostic (depends on torch only).

- :class:`NoiseSchedule`: linear / cosine / sigmoid schedules in float64, zero terminal SNR,
  the forward process and its posterior, timestep spacings.
- :func:`diffusion_loss`, :func:`convert_prediction`: eps / x0 / v objectives, Min-SNR weights.
- :func:`sample`: one entry to the samplers ``ddpm``, ``ddim``, ``dpmpp_2m``, ``euler``, ``heun``.
- :func:`cfg_denoiser`: classifier-free guidance around any denoiser.
- :class:`CountingDenoiser`, :func:`count_nfe`, :func:`steps_for_nfe`: denoiser evaluations
  counted by calling, and the steps that spend a target number of them.
- :class:`GaussianMixtureOracle`: exact denoisers, the references used by tests and benchmarks.
- :func:`mix_frames`, :class:`FrameCorrelatedDenoiser`: noise correlated across a video's
  frames (Ge et al. 2023) as a change of variables that every sampler runs unchanged.
"""

from synesthesia.diffusion.frame_noise import FrameCorrelatedDenoiser, correlated_noise, mix_frames
from synesthesia.diffusion.guidance import cfg_denoiser
from synesthesia.diffusion.nfe import CountingDenoiser, count_nfe, steps_for_nfe
from synesthesia.diffusion.objectives import (
    PREDICTIONS,
    convert_prediction,
    diffusion_loss,
    loss_weight,
    make_noise,
    to_x0_eps,
)
from synesthesia.diffusion.oracles import GaussianMixtureOracle, gaussian_oracle
from synesthesia.diffusion.samplers import (
    HEUN_SIGMA_MAX,
    METHODS,
    SAMPLERS,
    PredictionModel,
    ddim_invert,
    ddim_step,
    dynamic_threshold,
    sample,
    sample_ddim,
    sample_ddpm,
    sample_dpmpp_2m,
    sample_euler,
    sample_heun,
)
from synesthesia.diffusion.schedules import (
    SCHEDULES,
    SPACINGS,
    NoiseSchedule,
    SamplingGrid,
    rescale_zero_terminal_snr,
)

__all__ = [
    "HEUN_SIGMA_MAX",
    "METHODS",
    "PREDICTIONS",
    "SAMPLERS",
    "SCHEDULES",
    "SPACINGS",
    "CountingDenoiser",
    "FrameCorrelatedDenoiser",
    "GaussianMixtureOracle",
    "NoiseSchedule",
    "PredictionModel",
    "SamplingGrid",
    "cfg_denoiser",
    "convert_prediction",
    "correlated_noise",
    "count_nfe",
    "ddim_invert",
    "ddim_step",
    "diffusion_loss",
    "dynamic_threshold",
    "gaussian_oracle",
    "loss_weight",
    "make_noise",
    "mix_frames",
    "rescale_zero_terminal_snr",
    "sample",
    "sample_ddim",
    "sample_ddpm",
    "sample_dpmpp_2m",
    "sample_euler",
    "sample_heun",
    "steps_for_nfe",
    "to_x0_eps",
]
