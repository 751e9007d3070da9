"""A time-bounded (or resumed) training run: probe, plan, replan, fit. One home for every model.

Every model that trains "for N minutes" (class-to-image, text-to-image, the autoencoder, video,
audio) does the same thing around the trainer: time a few real steps
(:func:`~synesthesia.training.timing.measure_train_step`, within
:func:`~synesthesia.training.timing.probe_budget_s`), fit the learning-rate schedule into
what is left (:func:`~synesthesia.training.timing.plan_steps`), correct the plan once at the
end of warm-up from the steps really taken (the trainer's ``replan``), and on ``--resume``
rebuild the saved run's :class:`TrainerConfig`, with a larger ``max_steps`` the one stated
override. :func:`fit_budgeted` does it; a caller supplies the model, its loss, its data and the
``config.json`` its checkpoints carry.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from synesthesia.errors import InputError
from synesthesia.training.config import TrainerConfig, TrainResult

#: Share of the time left after warm-up that the replanned schedule fills (the rest is kept
#: for checkpoints and the last log row).
REPLAN_SHARE = 0.93


@dataclass
class BudgetOptions:
    """The trainer knobs a time-bounded run sets (the rest keep :class:`TrainerConfig`'s)."""

    out_dir: str
    minutes: float | None = None  # budget of the whole call, probe included
    max_steps: int | None = None  # explicit schedule length; wins over the planned one
    batch_size: int = 64
    lr: float = 2e-3
    warmup_steps: int = 50
    ema_decay: float | None = 0.999
    precision: str = "auto"  # resolved here, once ("auto": bf16 only where native and faster)
    seed: int = 0
    log_every: int = 25
    checkpoint_every: int = 500
    eval_every: int | None = None
    progress: bool = True
    pick_threads: bool = True  # probe one CPU thread too and keep the faster setting
    weight_decay: float = 0.0
    grad_clip: float | None = 1.0
    grad_accumulation: int = 1  # micro-batches per step (batch_size stays the global batch)
    compile: bool = False  # torch.compile the training forward
    lr_scales: dict[str, float] | None = None  # TrainerConfig.lr_scales

    @classmethod
    def from_options(cls, options: Any, **overrides: Any) -> BudgetOptions:
        """The fields of a model's options dataclass that share a name with these, by name
        (the rest keep their defaults), then ``overrides``."""
        shared = {f.name for f in dataclasses.fields(cls)} & {
            f.name for f in dataclasses.fields(options)
        }
        return cls(**{**{k: getattr(options, k) for k in shared}, **overrides})


def resumed_schedule(state: dict, max_steps: int | None, out_dir: str | Path) -> int:
    """The schedule length of a resumed run: the saved one, or a larger ``max_steps``.

    ``state`` is :func:`~synesthesia.training.read_run_state`'s dict. A ``max_steps`` below the
    step already reached is an error naming both.
    """
    saved = int(state["config"]["max_steps"])
    if max_steps is None or max_steps == saved:
        return saved
    if max_steps < int(state["step"]):
        raise InputError(
            f"--max-steps {max_steps}: the run in {out_dir} is already at step "
            f"{state['step']} (planned {saved})"
        )
    return int(max_steps)


def fit_budgeted(
    model: torch.nn.Module,
    loss_fn: Callable[..., Any],
    dataset: Any,
    options: BudgetOptions,
    model_config: dict,
    probe_batch: Callable[[], Any] | Any = None,
    resume: bool = False,
    eval_fn: Callable[..., dict] | None = None,
    collate_fn: Callable[[list], Any] | None = None,
    started: float | None = None,
) -> tuple[Any, TrainResult, dict]:
    """Train ``model`` within ``options.minutes`` (or for ``options.max_steps``); resume.

    ``model_config`` is the ``config.json`` of every checkpoint; its ``"max_steps"`` entry is
    kept equal to the schedule (planned, replanned or extended). ``probe_batch`` (a batch, or
    a function returning one) feeds the throughput probe of a fresh time-bounded run.
    ``started`` (a ``time.perf_counter()`` value) is when the caller's budget began, so data
    preparation counts against it. Returns ``(trainer, result, plan)``: the trainer holds the
    EMA model, ``plan`` says what was measured and decided (JSON-ready).

    The CPU thread count the probe picks holds for this run only: it is restored on return,
    so the next run in the same process (a benchmark's next contestant) probes afresh.
    """
    threads = torch.get_num_threads()
    try:
        return _fit_budgeted(
            model, loss_fn, dataset, options, model_config, probe_batch, resume, eval_fn,
            collate_fn, started,
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)


def _fit_budgeted(
    model: torch.nn.Module,
    loss_fn: Callable[..., Any],
    dataset: Any,
    options: BudgetOptions,
    model_config: dict,
    probe_batch: Callable[[], Any] | Any,
    resume: bool,
    eval_fn: Callable[..., dict] | None,
    collate_fn: Callable[[list], Any] | None,
    started: float | None,
) -> tuple[Any, TrainResult, dict]:
    from accelerate.utils import send_to_device

    from synesthesia.training import Trainer, read_run_state, resolve_precision
    from synesthesia.training.distributed import agree, process_state, reduce_max
    from synesthesia.training.timing import measure_train_step, plan_steps, probe_budget_s

    start = time.perf_counter() if started is None else started
    device = process_state().device  # joins the process group under torchrun / accelerate
    # one precision and one plan for every rank: rank 0's precision, the slowest rank's step
    precision = agree(resolve_precision(options.precision, device))
    minutes = options.minutes
    changes: set[str] = set()
    replan = None
    if resume:
        state = read_run_state(options.out_dir)
        saved = state["config"]
        max_steps = resumed_schedule(state, options.max_steps, options.out_dir)
        if int(saved["max_steps"]) != max_steps:
            changes.add("max_steps")
        known = {f.name for f in dataclasses.fields(TrainerConfig)}
        kept = {k: v for k, v in saved.items() if k in known}
        config = TrainerConfig(
            **{
                **kept,
                "out_dir": str(options.out_dir),
                "max_steps": max_steps,
                "max_minutes": minutes,
                "progress": options.progress,
                "compile": options.compile,
                "betas": tuple(kept.get("betas", (0.9, 0.999))),
            }
        )
        plan: dict = {"max_steps": max_steps, "seconds_per_step": None, "resumed": True}
    else:
        timing = None
        max_steps = options.max_steps
        if max_steps is None:
            if minutes is None:
                raise ValueError("give minutes (a time budget) or max_steps")
            batch = probe_batch() if callable(probe_batch) else probe_batch
            if batch is None:
                raise ValueError("a time-bounded run needs probe_batch for its throughput probe")
            timing = measure_train_step(
                model.to(device),
                loss_fn,
                send_to_device(batch, device),
                precision,
                budget_s=probe_budget_s(minutes),
                pick_threads=options.pick_threads,
                grad_clip=options.grad_clip,
            )
        spent = reduce_max(time.perf_counter() - start)
        seconds = reduce_max(timing.seconds) if timing else None
        p = plan_steps(minutes, seconds, max_steps, spent_s=spent)
        max_steps, minutes = p.max_steps, p.max_minutes
        plan = {
            "max_steps": max_steps,
            "seconds_per_step": seconds,
            "probe_s": spent,
            "threads": torch.get_num_threads(),
            "precision": precision,
        }
        config = TrainerConfig(
            out_dir=str(options.out_dir),
            batch_size=options.batch_size,
            max_steps=max_steps,
            max_minutes=minutes,
            lr=options.lr,
            weight_decay=options.weight_decay,
            warmup_steps=min(options.warmup_steps, max(1, max_steps // 10)),
            grad_clip=options.grad_clip,
            ema_decay=options.ema_decay,
            mixed_precision=precision,
            seed=options.seed,
            log_every=options.log_every,
            checkpoint_every=options.checkpoint_every,
            eval_every=options.eval_every,
            progress=options.progress,
            grad_accumulation=options.grad_accumulation,
            compile=options.compile,
            lr_scales=options.lr_scales,
        )
        if options.max_steps is None and minutes is not None:
            fit_budget_s = minutes * 60.0

            def replan(step: int, elapsed_s: float, seconds_per_step: float) -> int:
                # the probe's plan, corrected by the steps really taken (after warm-up, and
                # again at half time)
                left = max(fit_budget_s - elapsed_s, 0.0)
                new = step + max(1, math.floor(REPLAN_SHARE * left / max(seconds_per_step, 1e-9)))
                model_config["max_steps"] = new
                plan["replanned_steps"] = new  # the last replan's
                plan.setdefault("replans", []).append(
                    {"step": step, "elapsed_s": elapsed_s, "seconds_per_step": seconds_per_step,
                     "max_steps": new}
                )  # fmt: skip
                return new

    model_config["max_steps"] = max_steps
    trainer = Trainer(
        model,
        loss_fn,
        dataset,
        config,
        model_config=model_config,
        eval_fn=eval_fn,
        collate_fn=collate_fn,
        replan=replan,
    )
    result = trainer.fit(resume=resume, allow_changes=changes)
    plan["total_s"] = time.perf_counter() - start
    return trainer, result, plan
