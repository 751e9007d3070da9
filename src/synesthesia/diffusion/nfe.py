"""Counting denoiser evaluations (NFE): by calling, never by a formula.

How many times a sampler calls its denoiser depends on the grid, not only on ``steps``: Heun
takes Euler steps into sigma = 0 and from any sigma above ``HEUN_SIGMA_MAX`` (every built-in
schedule starts above it), so ``2 * steps - 1`` is wrong. These helpers count real calls:

>>> from synesthesia.diffusion import NoiseSchedule, count_nfe, steps_for_nfe
>>> schedule = NoiseSchedule("linear", 1000)
>>> count_nfe(schedule, "heun", 10)        # Euler steps from sigma 157 and into sigma 0
18
>>> steps_for_nfe(schedule, "heun", 20)    # the most steps that spend at most 20 calls
11

Classifier-free guidance (:func:`cfg_denoiser`) evaluates cond and uncond in one batched call,
so one call is one evaluation of a doubled batch.
"""

from __future__ import annotations

import torch

from synesthesia.diffusion.objectives import Denoiser
from synesthesia.diffusion.samplers import sample
from synesthesia.diffusion.schedules import NoiseSchedule
from synesthesia.errors import InputError


class CountingDenoiser:
    """Wraps any denoiser ``denoiser(x_t, t, **cond)`` and counts its calls in ``calls``."""

    def __init__(self, denoiser: Denoiser) -> None:
        self.denoiser = denoiser
        self.calls = 0

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, **cond) -> torch.Tensor:
        self.calls += 1
        return self.denoiser(x_t, t, **cond)

    def reset(self) -> int:
        """Set the count back to 0; returns the count it had."""
        calls, self.calls = self.calls, 0
        return calls


def _zero_x0(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(x_t)


def count_nfe(
    schedule: NoiseSchedule,
    method: str,
    steps: int,
    *,
    spacing: str = "trailing",
    karras: bool = False,
    rho: float = 7.0,
) -> int:
    """Denoiser calls that :func:`sample` makes with these settings, counted by running it.

    The sampler runs on a one-number stand-in denoiser (it predicts x0 = 0); the number of
    calls depends on the grid only, so it is the count for any denoiser.
    """
    counter = CountingDenoiser(_zero_x0)
    sample(counter, (1, 1), schedule, method=method, steps=steps, prediction="x0",
           spacing=spacing, karras=karras, rho=rho, x_T=torch.zeros(1, 1, dtype=torch.float64),
           progress=False, dtype=torch.float64)  # fmt: skip
    return counter.calls


def steps_for_nfe(
    schedule: NoiseSchedule,
    method: str,
    nfe: int,
    *,
    spacing: str = "trailing",
    karras: bool = False,
    rho: float = 7.0,
) -> int:
    """The most sampler steps whose counted evaluations (:func:`count_nfe`) are at most ``nfe``.

    Capped at ``schedule.num_timesteps``. Every step costs one or two calls, so the count grows
    with the steps and a bisection over them finds the answer.
    """
    if not isinstance(nfe, int) or nfe < 1:
        raise InputError(f"nfe must be a positive integer, got {nfe!r}")
    grid = dict(spacing=spacing, karras=karras, rho=rho)
    lo, hi = 1, min(nfe, schedule.num_timesteps)  # count(steps) >= steps
    if count_nfe(schedule, method, lo, **grid) > nfe:  # cannot happen: one step is one call
        raise RuntimeError(f"{method} spends more than {nfe} calls on one step")
    while lo < hi:  # invariant: count(lo) <= nfe
        mid = (lo + hi + 1) // 2
        if count_nfe(schedule, method, mid, **grid) <= nfe:
            lo = mid
        else:
            hi = mid - 1
    return lo
