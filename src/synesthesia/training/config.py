"""Configuration and result of a training run (:class:`TrainerConfig`, :class:`TrainResult`),
and what may change when a run is resumed (:func:`config_changes`, :class:`ConfigChangedError`)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synesthesia.errors import InputError, short

LR_SCHEDULES = ("cosine", "constant")
MIXED_PRECISIONS = ("auto", "no", "bf16", "fp32", "fp16")
STOP_REASONS = ("max_steps", "max_minutes", "interrupted")
#: Settings that may change between a run and its resumption: none of them changes the
#: trajectory (weights, optimizer state, losses). ``log_every`` changes which rows the log
#: has (each row averages the steps since the previous row), so a resumed log equals the
#: uninterrupted one only when it is kept.
FREE_TO_CHANGE = frozenset(
    {
        "out_dir",
        "max_minutes",
        "progress",
        "log_every",
        "checkpoint_every",
        "eval_every",
        "compile",
    }
)
#: What else a resumed run is compared with: the items in the dataset, and the precision
#: the saved run actually used ("auto" may resolve differently on another machine).
RUN_FACTS = ("dataset_len", "mixed_precision")
#: The exit status of a command whose training was interrupted (128 + SIGINT, as a shell).
INTERRUPTED_EXIT_CODE = 130


@dataclass
class TrainerConfig:
    """Everything the trainer needs besides the model, the loss and the data.

    ``batch_size`` is the global batch of one optimizer step, summed over processes and
    accumulated micro-batches: each of ``P`` processes computes ``batch_size / P`` items per
    step, in ``grad_accumulation`` micro-batches of ``batch_size / (P * grad_accumulation)``
    (the gradient is the same mean over the global batch either way; ``lr`` is stated per
    global batch). ``max_steps`` is both the end of training and the length of the
    learning-rate schedule. ``max_minutes`` bounds the wall time of one :meth:`fit` call.
    ``compile`` runs the training forward through ``torch.compile`` (measure before using it:
    the first steps compile).
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
    grad_accumulation: int = 1
    compile: bool = False
    #: ``(step, progress)``: from optimizer update ``step`` on, the cosine's progress runs
    #: linearly from ``progress`` to 1 at ``max_steps``. Set by a replan that changed
    #: ``max_steps`` after warm-up, so that the learning rate stays continuous there.
    schedule_knot: tuple[int, float] | None = None
    #: ``{parameter-name prefix: factor}``: the parameters whose name starts with a prefix
    #: train at ``factor`` times the scheduled learning rate (the longest matching prefix
    #: wins; the rest at 1). E.g. loaded weights slower than new layers when fine-tuning.
    lr_scales: dict[str, float] | None = None

    def __post_init__(self) -> None:
        self.out_dir = str(self.out_dir)
        if self.lr_scales is not None:
            if not isinstance(self.lr_scales, dict):
                raise InputError(
                    f"TrainerConfig.lr_scales must be a dict of name prefix -> factor, "
                    f"got {type(self.lr_scales).__name__}"
                )
            for prefix, factor in self.lr_scales.items():
                if not isinstance(prefix, str) or not (factor > 0 and math.isfinite(factor)):
                    raise InputError(
                        f"TrainerConfig.lr_scales: {prefix!r}: {factor!r}; expected a name "
                        "prefix and a positive factor"
                    )
            self.lr_scales = {str(k): float(v) for k, v in self.lr_scales.items()}
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        if self.schedule_knot is not None:
            self.schedule_knot = (int(self.schedule_knot[0]), float(self.schedule_knot[1]))
        positive_ints = (
            "batch_size",
            "max_steps",
            "log_every",
            "checkpoint_every",
            "grad_accumulation",
        )
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"TrainerConfig.{name} must be a positive integer, got {value!r}")
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise InputError(f"TrainerConfig.warmup_steps must be >= 0, got {self.warmup_steps!r}")
        if self.eval_every is not None and (
            not isinstance(self.eval_every, int) or self.eval_every < 1
        ):
            raise InputError(
                f"TrainerConfig.eval_every must be None or >= 1, got {self.eval_every!r}"
            )
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise InputError(f"TrainerConfig.lr must be a positive number, got {self.lr!r}")
        if self.weight_decay < 0:
            raise InputError(f"TrainerConfig.weight_decay must be >= 0, got {self.weight_decay!r}")
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise InputError(f"TrainerConfig.betas must lie in [0, 1), got {self.betas!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise InputError(
                f"TrainerConfig.lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}"
            )
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise InputError(
                f"TrainerConfig.min_lr_ratio must lie in [0, 1], got {self.min_lr_ratio}"
            )
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise InputError(f"TrainerConfig.grad_clip must be None or > 0, got {self.grad_clip!r}")
        if self.ema_decay is not None and not 0.0 <= self.ema_decay < 1.0:
            raise InputError(
                f"TrainerConfig.ema_decay must be None or in [0, 1), got {self.ema_decay}"
            )
        if self.mixed_precision not in MIXED_PRECISIONS:
            raise InputError(
                f"TrainerConfig.mixed_precision must be one of {MIXED_PRECISIONS}, "
                f"got {self.mixed_precision!r}"
            )
        if self.max_minutes is not None and not self.max_minutes >= 0:
            raise InputError(
                f"TrainerConfig.max_minutes must be None or >= 0, got {self.max_minutes}"
            )


@dataclass
class TrainResult:
    """What one :meth:`Trainer.fit` call did.

    ``losses`` holds the loss of every optimizer step of this call (averaged over processes),
    ``stopped`` says why it ended: ``"max_steps"`` (the run is complete), ``"max_minutes"``
    (time budget spent; resume to go on) or ``"interrupted"`` (Ctrl-C / SIGTERM; the state
    after the last completed step is saved, resume to go on). A command that trained
    returns :attr:`exit_code` (130 when interrupted).
    """

    step: int
    stopped: str
    losses: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    checkpoint: Path | None = None
    epoch: int = 0
    items_per_s: float = 0.0
    metrics_csv: Path | None = None
    max_steps: int = 0
    checkpoint_step: int | None = None

    @property
    def interrupted(self) -> bool:
        """True when Ctrl-C or SIGTERM stopped the run before ``max_steps``."""
        return self.stopped == "interrupted"

    @property
    def complete(self) -> bool:
        """True when the run reached ``max_steps`` (nothing is left to resume)."""
        return self.stopped == "max_steps"

    @property
    def exit_code(self) -> int:
        """The exit status a command should end with: 130 when interrupted, else 0."""
        return INTERRUPTED_EXIT_CODE if self.interrupted else 0

    def summary(self) -> str:
        """One line: where the run stopped and why, and where its checkpoint is."""
        why = {"max_steps": "done", "max_minutes": "time budget spent"}.get(
            self.stopped, self.stopped
        )
        line = f"{why} at step {self.step} of {self.max_steps}"
        if self.checkpoint is not None:
            line += f"; checkpoint of step {self.checkpoint_step} in {self.checkpoint}"
        return line


class ConfigChangedError(InputError):
    """Resuming would silently change the run: ``changes`` maps each setting to
    ``(saved, now)``. Commands may catch it to name their own options."""

    def __init__(self, path: Path | str, changes: dict[str, tuple[Any, Any]]) -> None:
        self.path = Path(path)
        self.changes = dict(changes)
        detail = "; ".join(
            f"{name}: saved {short(old, 40)}, now {short(new, 40)}"
            for name, (old, new) in sorted(self.changes.items())
        )
        super().__init__(
            f"{self.path}: resuming with settings that differ from the saved run ({detail}); "
            "resume with the saved settings, or allow the change explicitly"
        )


def _plain(value: Any) -> Any:
    """What a value looks like after a JSON round trip (tuples become lists)."""
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def config_changes(saved: dict, config: TrainerConfig) -> dict[str, tuple[Any, Any]]:
    """The settings of ``config`` that differ from ``saved`` (a checkpoint's ``config``),
    as ``{name: (saved, now)}``, leaving out :data:`FREE_TO_CHANGE` and ``mixed_precision``
    (compared as resolved by the trainer) and names the saved run did not have."""
    changes = {}
    for name, value in dataclasses.asdict(config).items():
        if name in FREE_TO_CHANGE or name == "mixed_precision" or name not in saved:
            continue
        if _plain(saved[name]) != _plain(value):
            changes[name] = (saved[name], value)
    return changes


def check_allowed_changes(names: Any) -> frozenset[str]:
    """``names`` as a set of overridable settings; ValueError for a name that is none."""
    if isinstance(names, str):
        names = (names,)
    allowed = frozenset(names or ())
    known = {f.name for f in dataclasses.fields(TrainerConfig)} | set(RUN_FACTS)
    unknown = sorted(allowed - known)
    if unknown:
        raise ValueError(
            f"allow_changes: unknown setting(s) {unknown}; expected TrainerConfig fields or "
            f"{', '.join(RUN_FACTS)}"
        )
    return allowed
