"""Samplers: stateless functions with one signature, in the manner of k-diffusion.

Every sampler is ``sampler(model, x, grid, *, eta, generator, progress, callback) -> x0``, where
``model(x, i) -> (x0_hat, eps_hat)`` is the denoiser seen through :class:`PredictionModel` (any
prediction type, guidance and thresholding already applied) and ``grid`` is the
:class:`SamplingGrid` of noise levels ``abar[0] < ... < abar[N] = 1``.
All steps, the last one included, use one update rule: there are no final-step special cases
beyond the limits of the formulas themselves (``abar = 1`` means "clean").

Notation: ``a = sqrt(abar)``, ``s = sqrt(1 - abar)``, ``sigma = s / a`` (sigma space,
Karras et al. 2022), ``lambda = log(a / s)`` (half log-SNR, Lu et al. 2022).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

from synesthesia.diffusion.objectives import Denoiser, check_prediction, to_x0_eps
from synesthesia.diffusion.schedules import NoiseSchedule, SamplingGrid

METHODS = ("ddpm", "ddim", "dpmpp_2m", "euler", "heun")


def dynamic_threshold(x0: torch.Tensor, percentile: float) -> torch.Tensor:
    """Clamp each sample at its ``percentile`` of |x0| (at least 1) and rescale into [-1, 1]."""
    # Saharia et al. 2022 (Imagen), sec. 2.3
    if not 0.0 < percentile < 1.0:
        raise ValueError(f"dynamic_threshold must be a percentile in (0, 1), got {percentile}")
    flat = x0.abs().flatten(1).float()
    s = torch.quantile(flat, percentile, dim=1).clamp(min=1.0).to(x0.dtype)
    s = s.reshape(-1, *([1] * (x0.ndim - 1)))
    return torch.maximum(torch.minimum(x0, s), -s) / s


class PredictionModel:
    """A denoiser seen by samplers: ``model(x, i) -> (x0_hat, eps_hat)`` at grid point ``i``.

    Converts the denoiser's native prediction, checks its output, and applies x0 clipping or
    dynamic thresholding (then recomputes eps from the modified x0 so the pair stays consistent).
    Counts evaluations in ``nfe``.
    """

    def __init__(
        self,
        denoiser: Denoiser,
        grid: SamplingGrid,
        prediction: str = "eps",
        cond: dict | None = None,
        clip_x0: float | None = None,
        dynamic_threshold: float | None = None,
    ) -> None:
        check_prediction(prediction)
        if clip_x0 is not None and clip_x0 <= 0:
            raise ValueError(f"clip_x0 must be positive or None, got {clip_x0}")
        self.denoiser, self.grid, self.prediction = denoiser, grid, prediction
        self.cond = cond or {}
        self.clip_x0, self.dynamic_threshold = clip_x0, dynamic_threshold
        self.nfe = 0

    def at(self, x: torch.Tensor, t: float, abar: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(x0_hat, eps_hat) for ``x`` at model time ``t`` and noise level ``abar``."""
        t_batch = torch.full((x.shape[0],), float(t), dtype=x.dtype, device=x.device)
        out = self.denoiser(x, t_batch, **self.cond)
        self.nfe += 1
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"denoiser returned {got} for input shape {tuple(x.shape)}")
        x0, eps = to_x0_eps(out.to(x.dtype), self.prediction, x, abar)
        if self.clip_x0 is not None or self.dynamic_threshold is not None:
            if self.dynamic_threshold is not None:
                x0 = dynamic_threshold(x0, self.dynamic_threshold)
            else:
                x0 = x0.clamp(-self.clip_x0, self.clip_x0)
            eps = (x - math.sqrt(abar) * x0) / math.sqrt(1.0 - abar)
        return x0, eps

    def __call__(self, x: torch.Tensor, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.at(x, float(self.grid.t[i]), float(self.grid.abar[i]))


Callback = Callable[[dict], None]


Generators = torch.Generator | Sequence[torch.Generator] | None


def randn(shape: Sequence[int], generator: Generators, dtype: torch.dtype = torch.float32):
    """Standard normal noise of ``shape``, drawn on the CPU (the same on every device).

    ``generator`` may be one generator or a list of them, one per item along the first axis
    (as diffusers accepts): item i then depends on generator i only, so a batched call equals
    one call per item with the same generators.
    """
    if isinstance(generator, (list, tuple)):
        if len(generator) != shape[0]:
            raise ValueError(f"got {len(generator)} generators for a batch of {shape[0]} items")
        return torch.stack(
            [torch.randn(tuple(shape[1:]), generator=g, dtype=dtype) for g in generator]
        )
    return torch.randn(tuple(shape), generator=generator, dtype=dtype)


def _randn_like(x: torch.Tensor, generator: Generators) -> torch.Tensor:
    return randn(x.shape, generator, x.dtype).to(x.device)


def _steps(grid: SamplingGrid, progress: bool, desc: str):
    return tqdm(range(len(grid)), desc=desc, disable=not progress, leave=False)


def _report(callback: Callback | None, i: int, grid: SamplingGrid, x, x0) -> None:
    if callback is not None:
        callback({"i": i, "t": float(grid.t[i]), "abar": float(grid.abar[i]), "x": x, "x0": x0})


def _ab(abar: float) -> tuple[float, float]:
    return math.sqrt(abar), math.sqrt(max(1.0 - abar, 0.0))


def ddim_step(
    x0: torch.Tensor,
    eps: torch.Tensor,
    abar_t: float,
    abar_s: float,
    eta: float,
    noise: torch.Tensor | None,
) -> torch.Tensor:
    """One DDIM update from noise level ``abar_t`` to the less noisy ``abar_s``.

    ``sigma^2 = eta^2 (1 - abar_s)/(1 - abar_t) (1 - abar_t/abar_s)``; ``eta = 1`` is the
    ancestral (DDPM posterior) variance, ``eta = 0`` the deterministic ODE step.
    """
    # Song et al. 2021 (DDIM) eq. 12 and eq. 16
    var = eta**2 * (1 - abar_s) / (1 - abar_t) * (1 - abar_t / abar_s) if eta else 0.0
    x = math.sqrt(abar_s) * x0 + math.sqrt(max(1 - abar_s - var, 0.0)) * eps
    if var > 0:
        x = x + math.sqrt(var) * noise
    return x


def sample_ddpm(
    model: PredictionModel,
    x: torch.Tensor,
    grid: SamplingGrid,
    *,
    eta: float = 1.0,
    generator: Generators = None,
    progress: bool = True,
    callback: Callback | None = None,
) -> torch.Tensor:
    """DDPM ancestral sampling, correct at any stride: it samples q(x_s | x_t, x0_hat).

    Skipping from t to s uses ``alpha_{t|s} = abar_t / abar_s`` and
    ``beta_{t|s} = 1 - alpha_{t|s}``, never the one-step ``beta_t``. ``eta`` is unused:
    the variance is the posterior one.
    """
    for i in _steps(grid, progress, "ddpm"):
        abar_t, abar_s = float(grid.abar[i]), float(grid.abar[i + 1])
        x0, _ = model(x, i)
        _report(callback, i, grid, x, x0)
        # Ho et al. 2020 eq. 7 generalised to a stride (Kingma et al. 2021, eq. 26-28)
        alpha_ts = abar_t / abar_s
        beta_ts = 1.0 - alpha_ts
        mean = (
            math.sqrt(abar_s) * beta_ts / (1 - abar_t) * x0
            + math.sqrt(alpha_ts) * (1 - abar_s) / (1 - abar_t) * x
        )
        var = beta_ts * (1 - abar_s) / (1 - abar_t)
        x = mean + math.sqrt(var) * _randn_like(x, generator) if var > 0 else mean
    return x


def sample_ddim(
    model: PredictionModel,
    x: torch.Tensor,
    grid: SamplingGrid,
    *,
    eta: float = 0.0,
    generator: Generators = None,
    progress: bool = True,
    callback: Callback | None = None,
) -> torch.Tensor:
    """DDIM with stochasticity ``eta`` (0: deterministic; 1: ancestral)."""
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    for i in _steps(grid, progress, "ddim"):
        abar_t, abar_s = float(grid.abar[i]), float(grid.abar[i + 1])
        x0, eps = model(x, i)
        _report(callback, i, grid, x, x0)
        noisy = eta > 0 and abar_s < 1.0
        x = ddim_step(x0, eps, abar_t, abar_s, eta, _randn_like(x, generator) if noisy else None)
    return x


def sample_dpmpp_2m(
    model: PredictionModel,
    x: torch.Tensor,
    grid: SamplingGrid,
    *,
    eta: float = 0.0,
    generator: Generators = None,
    progress: bool = True,
    callback: Callback | None = None,
) -> torch.Tensor:
    """DPM-Solver++(2M): second-order multistep solver of the probability-flow ODE in x0 form.

    The first step, and the step into clean data (lambda = +inf), are first order (= DDIM).
    """
    # Lu et al. 2022 (DPM-Solver++), Algorithm 2
    prev_x0, prev_h = None, None
    for i in _steps(grid, progress, "dpmpp_2m"):
        abar_t, abar_s = float(grid.abar[i]), float(grid.abar[i + 1])
        x0, _ = model(x, i)
        _report(callback, i, grid, x, x0)
        a_t, s_t = _ab(abar_t)
        a_s, s_s = _ab(abar_s)
        if abar_s >= 1.0:  # lambda_s = inf: the solution is the data prediction itself
            x = x0
            break
        h = _half_log_snr(abar_s) - _half_log_snr(abar_t)  # inf from a zero terminal SNR
        d = x0
        if prev_x0 is not None:
            r = prev_h / h
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * prev_x0
        x = (s_s / s_t) * x - a_s * math.expm1(-h) * d
        prev_x0, prev_h = x0, h
    return x


def _half_log_snr(abar: float) -> float:
    """``lambda = log(a / s)``, with -inf at abar = 0 and +inf at abar = 1."""
    if abar <= 0.0:
        return -math.inf
    if abar >= 1.0:
        return math.inf
    return 0.5 * (math.log(abar) - math.log1p(-abar))


def _sigma(abar: float) -> float:
    return math.sqrt((1.0 - abar) / abar)


def sample_euler(
    model: PredictionModel,
    x: torch.Tensor,
    grid: SamplingGrid,
    *,
    eta: float = 0.0,
    generator: Generators = None,
    progress: bool = True,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Euler's method on the probability-flow ODE ``d x~ / d sigma = eps`` with ``x~ = x / a``."""
    # Karras et al. 2022 eq. 4 with s(t) = 1 after the change of variable x~ = x_t / sqrt(abar)
    xs = x / math.sqrt(float(grid.abar[0]))
    for i in _steps(grid, progress, "euler"):
        abar_t, abar_s = float(grid.abar[i]), float(grid.abar[i + 1])
        x0, eps = model(xs * math.sqrt(abar_t), i)
        _report(callback, i, grid, xs * math.sqrt(abar_t), x0)
        xs = xs + (_sigma(abar_s) - _sigma(abar_t)) * eps
    return xs * math.sqrt(float(grid.abar[-1]))


#: Largest sigma from which Heun applies its correction (Karras et al. 2022, sec. 5: 80).
HEUN_SIGMA_MAX = 80.0


def sample_heun(
    model: PredictionModel,
    x: torch.Tensor,
    grid: SamplingGrid,
    *,
    eta: float = 0.0,
    generator: Generators = None,
    progress: bool = True,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Heun's second-order method on the probability-flow ODE in sigma space.

    Costs two evaluations per step except Euler steps: the one into sigma = 0 and any step
    starting above ``HEUN_SIGMA_MAX``. Every built-in schedule starts above it, so ``steps``
    steps cost at most ``2 * steps - 2`` calls (fewer with Karras spacing); count them with
    :func:`~synesthesia.diffusion.nfe.count_nfe`.
    """
    # Karras et al. 2022 Algorithm 1 (deterministic, S_churn = 0)
    xs = x / math.sqrt(float(grid.abar[0]))
    for i in _steps(grid, progress, "heun"):
        abar_t, abar_s = float(grid.abar[i]), float(grid.abar[i + 1])
        sig_t, sig_s = _sigma(abar_t), _sigma(abar_s)
        x0, d = model(xs * math.sqrt(abar_t), i)
        _report(callback, i, grid, xs * math.sqrt(abar_t), x0)
        x_next = xs + (sig_s - sig_t) * d
        # the trapezoid correction only where Karras et al. use it (sigma <= 80, their sigma_max):
        # from a larger sigma (cosine: ~2e4) averaging the two slopes overshoots by O(sigma_t)
        if 0 < sig_s and sig_t <= HEUN_SIGMA_MAX:
            _, d2 = model.at(x_next * math.sqrt(abar_s), float(grid.t[i + 1]), abar_s)
            x_next = xs + (sig_s - sig_t) * 0.5 * (d + d2)
        xs = x_next
    return xs * math.sqrt(float(grid.abar[-1]))


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "ddpm": sample_ddpm,
    "ddim": sample_ddim,
    "dpmpp_2m": sample_dpmpp_2m,
    "euler": sample_euler,
    "heun": sample_heun,
}


def _check_cond(cond: dict | None, batch: int) -> None:
    for key, value in (cond or {}).items():
        if isinstance(value, torch.Tensor) and value.ndim > 0 and value.shape[0] != batch:
            raise ValueError(
                f"cond[{key!r}] has batch size {value.shape[0]}, the samples have {batch}"
            )


def sample(
    denoiser: Denoiser,
    shape: tuple[int, ...],
    schedule: NoiseSchedule,
    method: str = "dpmpp_2m",
    steps: int = 20,
    eta: float = 0.0,
    prediction: str = "eps",
    generator: Generators = None,
    cond: dict | None = None,
    clip_x0: float | None = None,
    dynamic_threshold: float | None = None,
    spacing: str = "trailing",
    karras: bool = False,
    rho: float = 7.0,
    x_T: torch.Tensor | None = None,
    progress: bool = True,
    callback: Callback | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Draw samples of ``shape`` by integrating the reverse process with ``method``.

    Args:
        denoiser: ``denoiser(x_t, t, **cond) -> prediction``; ``t`` is a float tensor (B,) of
            (possibly fractional) timesteps in [0, T-1].
        shape: shape of the samples, batch first.
        schedule: the noise schedule the denoiser was trained with.
        method: "ddpm", "ddim", "dpmpp_2m", "euler" or "heun". Each costs one denoiser call a
            step except heun, which costs two except on Euler steps (see :func:`sample_heun`);
            :func:`~synesthesia.diffusion.nfe.count_nfe` counts the calls.
        steps: number of sampler steps (<= ``schedule.num_timesteps``).
        eta: DDIM stochasticity (0 deterministic, 1 ancestral).
        prediction: what the denoiser returns: "eps", "x0" or "v".
        generator: source of all randomness (initial noise and ancestral noise): one
            generator, or a list of one per item (see :func:`randn`).
        cond: keyword arguments passed to every denoiser call (e.g. ``{"labels": y}``).
        clip_x0: clamp the predicted x0 to [-clip_x0, clip_x0] (pixel space; off by default).
        dynamic_threshold: percentile for Imagen's dynamic thresholding (off by default).
        spacing: "trailing", "linspace" or "leading" timestep spacing.
        karras: use Karras et al. 2022's sigma spacing (rho) instead of ``spacing``.
        x_T: starting noise (default: standard normal from ``generator``).
        progress: show a progress bar.
        callback: called with ``{"i", "t", "abar", "x", "x0"}`` before each step's update.
    """
    if method not in SAMPLERS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    check_prediction(prediction)
    if prediction == "eps" and schedule.zero_terminal_snr:
        raise ValueError(
            "a zero-terminal-SNR schedule cannot be sampled with prediction='eps' "
            "(x0 is undefined at the first step): use prediction='v'"
        )
    if method in ("euler", "heun") and schedule.zero_terminal_snr:
        raise ValueError(
            f"method={method!r} works in sigma space, which is infinite at zero terminal SNR; "
            "use 'ddim', 'ddpm' or 'dpmpp_2m'"
        )
    shape = tuple(int(n) for n in shape)
    if len(shape) < 1 or any(n < 1 for n in shape):
        raise ValueError(f"shape must be a non-empty tuple of positive sizes, got {shape}")
    grid = schedule.sampling_grid(steps, spacing=spacing, karras=karras, rho=rho)
    if x_T is None:
        x = randn(shape, generator, dtype)
        x = x.to(device) if device is not None else x
    else:
        if tuple(x_T.shape) != shape:
            raise ValueError(f"x_T has shape {tuple(x_T.shape)}, expected shape {shape}")
        x = x_T.to(dtype=dtype, device=device if device is not None else x_T.device)
    _check_cond(cond, shape[0])
    model = PredictionModel(denoiser, grid, prediction, cond, clip_x0, dynamic_threshold)
    with torch.no_grad():
        return SAMPLERS[method](
            model, x, grid, eta=eta, generator=generator, progress=progress, callback=callback
        )


def ddim_invert(
    denoiser: Denoiser,
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    steps: int = 50,
    prediction: str = "eps",
    cond: dict | None = None,
    spacing: str = "trailing",
    progress: bool = True,
) -> torch.Tensor:
    """Run deterministic DDIM backwards: data ``x0`` to the noise that DDIM (eta = 0) maps onto it.

    Uses the same grid as :func:`sample` with the same ``steps`` and ``spacing``; each step
    evaluates the denoiser at the current (less noisy) point, so the round trip is exact as the
    step size goes to zero (Song et al. 2021, sec. 4.3; Mokady et al. 2023).
    """
    check_prediction(prediction)
    grid = schedule.sampling_grid(steps, spacing=spacing)
    model = PredictionModel(denoiser, grid, prediction, cond)
    _check_cond(cond, x0.shape[0])
    x = x0
    n = len(grid)
    with torch.no_grad():
        for j in tqdm(range(n, 0, -1), desc="ddim-invert", disable=not progress, leave=False):
            # from grid point j (abar[j], clean at j = n) to grid point j - 1 (noisier)
            abar_from, abar_to = float(grid.abar[j]), float(grid.abar[j - 1])
            t_from = float(grid.t[j]) if j < n else float(grid.t[n - 1])
            if abar_from >= 1.0:  # clean start: eps of data, read at the least noisy grid point
                _, eps = model.at(x, t_from, float(grid.abar[n - 1]))
                x0_hat = x
            else:
                x0_hat, eps = model.at(x, t_from, abar_from)
            x = ddim_step(x0_hat, eps, abar_from, abar_to, 0.0, None)
    return x
