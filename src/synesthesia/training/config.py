"""Configuration and result of a training run (:class:`TrainerConfig`, :class:`TrainResult`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

LR_SCHEDULES = ("cosine", "constant")
MIXED_PRECISIONS = ("auto", "no", "bf16", "fp32")
STOP_REASONS = ("max_steps", "max_minutes", "interrupted")


@dataclass
class TrainerConfig:
    """Everything the trainer needs besides the model, the loss and the data.

    ``batch_size`` is the global batch (summed over processes; each of ``P`` processes gets
    ``batch_size / P`` items). ``max_steps`` is both the end of training and the length of
    the learning-rate schedule. ``max_minutes`` bounds the wall time of one :meth:`fit` call.
    """

    out_dir: str
    batch_size: int = 128
    max_steps: int = 10_000
    max_minutes: float | None = None
    lr: float = 2e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 100
    lr_schedule: str = "cosine"
    min_lr_ratio: float = 0.0
    grad_clip: float | None = 1.0
    ema_decay: float | None = 0.999
    ema_warmup: bool = True
    mixed_precision: str = "auto"
    seed: int = 0
    log_every: int = 25
    checkpoint_every: int = 500
    eval_every: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        self.out_dir = str(self.out_dir)
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        positive_ints = ("batch_size", "max_steps", "log_every", "checkpoint_every")
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"TrainerConfig.{name} must be a positive integer, got {value!r}")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ValueError(f"TrainerConfig.warmup_steps must be >= 0, got {self.warmup_steps!r}")
        if self.eval_every is not None and (
            not isinstance(self.eval_every, int) or self.eval_every < 1
        ):
            raise ValueError(
                f"TrainerConfig.eval_every must be None or >= 1, got {self.eval_every!r}"
            )
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"TrainerConfig.lr must be a positive number, got {self.lr!r}")
        if self.weight_decay < 0:
            raise ValueError(f"TrainerConfig.weight_decay must be >= 0, got {self.weight_decay!r}")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"TrainerConfig.betas must lie in [0, 1), got {self.betas!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"TrainerConfig.lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}"
            )
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(
                f"TrainerConfig.min_lr_ratio must lie in [0, 1], got {self.min_lr_ratio}"
            )
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"TrainerConfig.grad_clip must be None or > 0, got {self.grad_clip!r}")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(
                f"TrainerConfig.ema_decay must be None or in [0, 1), got {self.ema_decay}"
            )
        if self.mixed_precision not in MIXED_PRECISIONS:
            raise ValueError(
                f"TrainerConfig.mixed_precision must be one of {MIXED_PRECISIONS}, "
                f"got {self.mixed_precision!r}"
            )
        if self.max_minutes is not None and not self.max_minutes >= 0:
            raise ValueError(
                f"TrainerConfig.max_minutes must be None or >= 0, got {self.max_minutes}"
            )


@dataclass
class TrainResult:
    """What one :meth:`Trainer.fit` call did.

    ``losses`` holds the loss of every optimizer step of this call (averaged over processes),
    ``stopped`` says why it ended: ``"max_steps"``, ``"max_minutes"`` or ``"interrupted"``.
    """

    step: int
    stopped: str
    losses: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    checkpoint: Path | None = None
    epoch: int = 0
    items_per_s: float = 0.0
    metrics_csv: Path | None = None
