"""Noise schedules of the variance-preserving diffusion process, built in float64.

Notation (Ho et al. 2020): ``beta_t`` is the one-step noise variance, ``alpha_t = 1 - beta_t``,
``abar_t = prod_{s<=t} alpha_s`` (``alphas_cumprod``). The marginal of the forward process is
``q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)``: the cumulative product, never ``alpha_t``
alone. Timesteps are integers ``0 .. T-1``; ``t = 0`` is the least noisy.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

SCHEDULES = ("linear", "cosine", "sigmoid")
SPACINGS = ("leading", "linspace", "trailing")


def _linear_betas(T: int) -> np.ndarray:
    # Ho et al. 2020 sec. 4 (1e-4 .. 0.02 at T = 1000), scaled by 1000/T (Nichol & Dhariwal 2021)
    scale = 1000.0 / T
    betas = np.linspace(scale * 1e-4, scale * 0.02, T, dtype=np.float64)
    if betas[-1] >= 1.0:
        raise ValueError(
            f"num_timesteps={T} is too small for the linear schedule (its last beta would be "
            f"{betas[-1]:.3g} >= 1); use num_timesteps >= 21 or the cosine schedule"
        )
    return betas


def _betas_from_abar(abar_fn, T: int, max_beta: float = 0.999) -> np.ndarray:
    # Nichol & Dhariwal 2021 eq. 17 footnote: beta_t = 1 - abar(t+1)/abar(t), clipped at max_beta
    t = np.arange(T + 1, dtype=np.float64) / T
    abar = abar_fn(t)
    return np.minimum(1.0 - abar[1:] / abar[:-1], max_beta)


def _cosine_betas(T: int, s: float = 0.008) -> np.ndarray:
    # Nichol & Dhariwal 2021 eq. 17: abar(t) = f(t)/f(0), f(t) = cos^2(((t/T + s)/(1 + s)) pi/2)
    def f(u: np.ndarray) -> np.ndarray:
        return np.cos((u + s) / (1.0 + s) * math.pi / 2.0) ** 2

    return _betas_from_abar(lambda u: f(u) / f(np.zeros(1)), T)


def _sigmoid_betas(T: int, start: float = -3.0, end: float = 3.0, tau: float = 1.0) -> np.ndarray:
    # Chen 2023 ("On the importance of noise scheduling"), Algorithm 1, sigmoid schedule of abar
    def sig(z: np.ndarray | float) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))

    v_start, v_end = sig(start / tau), sig(end / tau)

    def abar(u: np.ndarray) -> np.ndarray:
        return (v_end - sig((u * (end - start) + start) / tau)) / (v_end - v_start)

    return _betas_from_abar(abar, T)


def rescale_zero_terminal_snr(betas: np.ndarray) -> np.ndarray:
    """Shift and scale sqrt(abar) so that abar_{T-1} = 0 and abar_0 is unchanged."""
    # Lin et al. 2024 ("Common diffusion noise schedules and sample steps are flawed"), Algorithm 1
    sqrt_abar = np.sqrt(np.cumprod(1.0 - betas))
    first, last = sqrt_abar[0], sqrt_abar[-1]
    sqrt_abar = (sqrt_abar - last) * first / (first - last)
    abar = sqrt_abar**2
    alphas = np.concatenate([abar[:1], abar[1:] / abar[:-1]])
    return 1.0 - alphas


@dataclass(frozen=True)
class SamplingGrid:
    """The points a sampler visits: model times ``t`` (N) and ``abar`` (N + 1, last one 1 = clean).

    Step ``i`` goes from noise level ``abar[i]`` (model time ``t[i]``) to ``abar[i + 1]``.
    """

    t: torch.Tensor
    abar: torch.Tensor

    def __len__(self) -> int:
        return self.t.numel()


@dataclass
class NoiseSchedule:
    """A discrete variance-preserving noise schedule (all tables in float64).

    Args:
        name: ``"linear"``, ``"cosine"`` or ``"sigmoid"``.
        num_timesteps: number of training timesteps T (any T >= 2; linear needs T >= 21).
        zero_terminal_snr: rescale so that abar at t = T-1 is exactly 0 (needs v or x0 prediction).
    """

    name: str = "cosine"
    num_timesteps: int = 1000
    zero_terminal_snr: bool = False
    betas: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.name not in SCHEDULES:
            raise ValueError(f"name must be one of {SCHEDULES}, got {self.name!r}")
        if not isinstance(self.num_timesteps, int) or self.num_timesteps < 2:
            raise ValueError(f"num_timesteps must be an integer >= 2, got {self.num_timesteps!r}")
        T = self.num_timesteps
        betas = {"linear": _linear_betas, "cosine": _cosine_betas, "sigmoid": _sigmoid_betas}[
            self.name
        ](T)
        if self.zero_terminal_snr:
            betas = rescale_zero_terminal_snr(betas)
        self.betas = torch.from_numpy(betas)

    # ---- tables -------------------------------------------------------------------------
    @property
    def alphas(self) -> torch.Tensor:
        """``alpha_t = 1 - beta_t`` (float64, T)."""
        return 1.0 - self.betas

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        """``abar_t = prod_{s<=t} alpha_s`` (float64, T)."""
        return torch.cumprod(self.alphas, dim=0)

    @property
    def alphas_cumprod_prev(self) -> torch.Tensor:
        """``abar_{t-1}`` with ``abar_{-1} = 1`` (float64, T)."""
        return torch.cat([torch.ones(1, dtype=torch.float64), self.alphas_cumprod[:-1]])

    @property
    def sigmas(self) -> torch.Tensor:
        """``sigma_t = sqrt((1 - abar_t) / abar_t)``, noise level in sigma space (float64, T)."""
        abar = self.alphas_cumprod
        return torch.sqrt((1.0 - abar) / abar)

    @property
    def log_snr(self) -> torch.Tensor:
        """``log(abar_t / (1 - abar_t))`` (float64, T); -inf at a zero terminal SNR."""
        abar = self.alphas_cumprod
        return torch.log(abar) - torch.log1p(-abar)

    def snr(self, t: torch.Tensor) -> torch.Tensor:
        """Signal-to-noise ratio ``abar_t / (1 - abar_t)`` at integer timesteps ``t`` (float64)."""
        abar = self.alphas_cumprod[self._check_t(t, "t")]
        return abar / (1.0 - abar)

    # ---- configs ------------------------------------------------------------------------
    def to_config(self) -> dict:
        """A JSON-serialisable description; :meth:`from_config` rebuilds the schedule."""
        d = asdict(self)
        d.pop("betas")
        return d

    @classmethod
    def from_config(cls, config: dict) -> NoiseSchedule:
        """Rebuild a schedule from :meth:`to_config` output."""
        unknown = set(config) - {"name", "num_timesteps", "zero_terminal_snr"}
        if unknown:
            raise ValueError(f"unknown NoiseSchedule config keys: {sorted(unknown)}")
        return cls(**config)

    # ---- forward process ----------------------------------------------------------------
    def _check_t(self, t: torch.Tensor, argname: str) -> torch.Tensor:
        t = torch.as_tensor(t)
        if t.dtype.is_floating_point or t.dtype == torch.bool:
            raise ValueError(f"{argname} must hold integer timesteps, got dtype {t.dtype}")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= self.num_timesteps):
            raise ValueError(
                f"{argname} must lie in [0, {self.num_timesteps - 1}], "
                f"got values in [{int(t.min())}, {int(t.max())}]"
            )
        return t.long().cpu()

    def _coef(self, table: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``table[t]`` cast to ``like``'s dtype/device, shaped to broadcast over its dims."""
        values = table[t].to(device=like.device, dtype=like.dtype)
        return values.reshape(-1, *([1] * (like.ndim - 1)))

    def _check_batch(self, x: torch.Tensor, t: torch.Tensor, xname: str) -> torch.Tensor:
        t = self._check_t(t, "t")
        if t.ndim != 1 or t.shape[0] != x.shape[0]:
            raise ValueError(
                f"t must have shape ({x.shape[0]},) to match {xname} of shape "
                f"{tuple(x.shape)}, got {tuple(t.shape)}"
            )
        return t

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Draw ``x_t ~ q(x_t | x_0)``: ``sqrt(abar_t) x0 + sqrt(1 - abar_t) noise``."""
        # Ho et al. 2020 eq. 4
        if noise.shape != x0.shape:
            raise ValueError(
                f"noise must have the shape of x0 {tuple(x0.shape)}, got {tuple(noise.shape)}"
            )
        t = self._check_batch(x0, t, "x0")
        abar = self.alphas_cumprod
        return self._coef(abar.sqrt(), t, x0) * x0 + self._coef((1 - abar).sqrt(), t, x0) * noise

    def q_step(self, x_prev: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """One forward step ``x_t ~ q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t I)``."""
        # Ho et al. 2020 eq. 2
        if noise.shape != x_prev.shape:
            raise ValueError(
                f"noise must have the shape of x_prev {tuple(x_prev.shape)}, "
                f"got {tuple(noise.shape)}"
            )
        t = self._check_batch(x_prev, t, "x_prev")
        return (
            self._coef(self.alphas.sqrt(), t, x_prev) * x_prev
            + self._coef(self.betas.sqrt(), t, x_prev) * noise
        )

    def posterior(
        self, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``q(x_{t-1} | x_t, x_0)``: (mean, variance, log-variance clamped away from zero).

        The log-variance at ``t = 0`` (where the variance is 0) is replaced by the one at ``t = 1``,
        as in Ho et al. 2020's implementation; the variance itself is returned unclamped.
        """
        if x0.shape != x_t.shape:
            raise ValueError(
                f"x0 and x_t must have the same shape, got {tuple(x0.shape)} and {tuple(x_t.shape)}"
            )
        t = self._check_batch(x_t, t, "x_t")
        abar, abar_prev, alphas, betas = (
            self.alphas_cumprod,
            self.alphas_cumprod_prev,
            self.alphas,
            self.betas,
        )
        # Ho et al. 2020 eq. 6-7
        coef_x0 = betas * abar_prev.sqrt() / (1 - abar)
        coef_xt = (1 - abar_prev) * alphas.sqrt() / (1 - abar)
        var = betas * (1 - abar_prev) / (1 - abar)
        log_var = torch.log(torch.cat([var[1:2], var[1:]]))
        mean = self._coef(coef_x0, t, x_t) * x0 + self._coef(coef_xt, t, x_t) * x_t
        return (
            mean,
            self._coef(var, t, x_t).expand_as(x_t),
            self._coef(log_var, t, x_t).expand_as(x_t),
        )

    # ---- sampling grids -----------------------------------------------------------------
    def timesteps(self, steps: int, spacing: str = "trailing") -> torch.Tensor:
        """``steps`` distinct integer timesteps, descending, for a sampler.

        ``"leading"``: multiples of ``T // steps`` from 0; ``"linspace"``: evenly from T-1 to 0,
        rounded; ``"trailing"``: evenly back from T-1 (starts at T-1; Lin et al. 2024, table 2).
        """
        T = self.num_timesteps
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        if steps > T:
            raise ValueError(f"steps={steps} exceeds the schedule's num_timesteps={T}")
        if spacing == "leading":
            ts = np.arange(steps) * (T // steps)
        elif spacing == "linspace":
            ts = np.round(np.linspace(0, T - 1, steps))
        elif spacing == "trailing":
            ts = np.round(np.arange(T, 0, -T / steps))[:steps] - 1
        else:
            raise ValueError(f"spacing must be one of {SPACINGS}, got {spacing!r}")
        ts = np.sort(ts.astype(np.int64))[::-1].copy()
        if len(np.unique(ts)) != steps:  # cannot happen for steps <= T; guard the invariant
            raise RuntimeError(f"spacing {spacing!r} gave repeated timesteps for steps={steps}")
        return torch.from_numpy(ts)

    def sigma_to_t(self, sigma: torch.Tensor) -> torch.Tensor:
        """Fractional model time for a noise level in sigma space (log-sigma interpolation)."""
        log_sigmas = self.sigmas.log().numpy()
        finite = np.isfinite(log_sigmas)
        ls = log_sigmas[finite]
        idx = np.arange(self.num_timesteps, dtype=np.float64)[finite]
        s = torch.as_tensor(sigma, dtype=torch.float64).numpy()
        return torch.from_numpy(np.interp(np.log(s), ls, idx))

    def abar_at(self, t: torch.Tensor) -> torch.Tensor:
        """abar at float model times ``t``: the table at integers, log-sigma interpolation between.

        The inverse of :meth:`sigma_to_t`, so a denoiser called at a fractional time by a
        sigma-space sampler can recover the noise level it is meant to be at.
        """
        t = torch.as_tensor(t, dtype=torch.float64)
        if t.numel() and (float(t.min()) < 0 or float(t.max()) > self.num_timesteps - 1):
            raise ValueError(f"t must lie in [0, {self.num_timesteps - 1}]")
        table = self.alphas_cumprod
        lo = t.floor().long()
        hi = t.ceil().long()
        frac = t - lo
        log_sig = self.sigmas.log()
        mixed = torch.exp(2 * ((1 - frac) * log_sig[lo] + frac * log_sig[hi]))
        interp = 1.0 / (1.0 + mixed)
        return torch.where(frac == 0, table[lo], interp)

    def karras_sigmas(self, steps: int, rho: float = 7.0) -> torch.Tensor:
        """Karras et al. 2022 eq. 5 spacing between the schedule's smallest and largest sigma."""
        sig = self.sigmas
        s_min, s_max = float(sig[0]), float(sig[-1])
        if not math.isfinite(s_max):
            raise ValueError(
                "karras=True needs a finite largest sigma; a zero-terminal-SNR schedule has none"
            )
        ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
        inv_rho = 1.0 / rho
        return (s_max**inv_rho + ramp * (s_min**inv_rho - s_max**inv_rho)) ** rho

    def sampling_grid(
        self, steps: int, spacing: str = "trailing", karras: bool = False, rho: float = 7.0
    ) -> SamplingGrid:
        """The model times and noise levels a sampler with ``steps`` steps visits."""
        if karras:
            self.timesteps(steps, spacing)  # validates steps
            sig = self.karras_sigmas(steps, rho)
            t = self.sigma_to_t(sig)
            abar = 1.0 / (1.0 + sig**2)
        else:
            t = self.timesteps(steps, spacing)
            abar = self.alphas_cumprod[t]
            t = t.double()
        return SamplingGrid(t=t, abar=torch.cat([abar, torch.ones(1, dtype=torch.float64)]))
