"""Learning-rate schedule and EMA decay as closed forms of the step number."""

from __future__ import annotations

import math

from synesthesia.training.config import TrainerConfig


def lr_factor(step: int, config: TrainerConfig) -> float:
    """Multiplier of ``config.lr`` for the optimizer update number ``step`` (0-based).

    Linear warm-up ``(step + 1) / warmup_steps`` for ``step < warmup_steps`` (no update is
    wasted at lr 0), then for ``"cosine"`` a half-cosine from 1 down to ``min_lr_ratio`` at
    ``max_steps`` (SGDR, Loshchilov & Hutter 2017, eq. 5, one cycle); ``"constant"`` stays at 1.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    warmup = config.warmup_steps
    if step < warmup:
        return (step + 1) / warmup
    if config.lr_schedule == "constant":
        return 1.0
    span = max(config.max_steps - warmup, 1)
    progress = min((step - warmup) / span, 1.0)
    floor = config.min_lr_ratio
    # cosine annealing: eta_min + (eta_max - eta_min) * (1 + cos(pi * T_cur / T)) / 2 (SGDR eq. 5)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


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
