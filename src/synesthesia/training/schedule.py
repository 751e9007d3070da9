"""Learning-rate schedule and EMA decay as closed forms of the step number."""

from __future__ import annotations

import math

from synesthesia.training.config import TrainerConfig


def lr_factor(step: int, config: TrainerConfig) -> float:
    """Multiplier of ``config.lr`` for the optimizer update number ``step`` (0-based).

    Linear warm-up ``(step + 1) / warmup_steps`` for ``step < warmup_steps`` (no update is
    wasted at lr 0), then for ``"cosine"`` a half-cosine from 1 down to ``min_lr_ratio`` at
    ``max_steps`` (SGDR, Loshchilov & Hutter 2017, eq. 5, one cycle); ``"constant"`` stays at 1.
    With ``config.schedule_knot = (s0, p0)`` the cosine's progress at ``step >= s0`` is
    ``p0 + (1 - p0) (step - s0) / (max_steps - s0)``: a schedule whose length changed at
    ``s0`` continues from where it was instead of jumping.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    warmup = config.warmup_steps
    if step < warmup:
        return (step + 1) / warmup
    if config.lr_schedule == "constant":
        return 1.0
    progress = schedule_progress(step, config)
    floor = config.min_lr_ratio
    # cosine annealing: eta_min + (eta_max - eta_min) * (1 + cos(pi * T_cur / T)) / 2 (SGDR eq. 5)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def schedule_progress(step: int, config: TrainerConfig) -> float:
    """How far update ``step`` (after warm-up) is through the decay, 0 to 1."""
    knot = config.schedule_knot
    if knot is not None and step >= knot[0]:
        # after a replan: from the knot's progress to 1 over the steps the new plan has left
        start, at = knot
        return min(at + (1.0 - at) * (step - start) / max(config.max_steps - start, 1), 1.0)
    span = max(config.max_steps - config.warmup_steps, 1)
    return min(max(step - config.warmup_steps, 0) / span, 1.0)


def lr_at(step: int, config: TrainerConfig) -> float:
    """The learning rate used by optimizer update number ``step`` (0-based)."""
    return config.lr * lr_factor(step, config)


def ema_decay_at(n_updates: int, config: TrainerConfig) -> float:
    """EMA decay for the update that follows ``n_updates`` earlier updates.

    With warm-up, ``min(ema_decay, (1 + n) / (10 + n))`` (the schedule of TensorFlow's
    ExponentialMovingAverage ``num_updates``, also used by diffusers' EMAModel), so early
    averages are not dominated by the random initial weights; without it, ``ema_decay``.
    """
    if config.ema_decay is None:
        raise ValueError("EMA is disabled (ema_decay=None): there is no decay")
    if not config.ema_warmup:
        return config.ema_decay
    return min(config.ema_decay, (1 + n_updates) / (10 + n_updates))
