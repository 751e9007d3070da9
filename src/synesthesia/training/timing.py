"""Step timing and the planning of time-bounded runs: the one home every model uses.

A time-bounded run still completes its learning-rate schedule: :func:`measure_train_step`
times a few real training steps (forward, backward, clipping, AdamW) on a throwaway copy of
the model until the step time is stable, within a probe budget that scales with the run's
budget (:func:`probe_budget_s`); :func:`plan_steps` then sets ``max_steps`` so that the
schedule ends inside what is left. The trainer's ``max_minutes`` stays as the hard stop.
"""

from __future__ import annotations

import copy
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from synesthesia.training.precision import autocast


def time_calls(fn: Callable[[], Any], steps: int, warmup: int = 0) -> list[float]:
    """Wall seconds of each of ``steps`` calls of ``fn`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def time_until_stable(
    fn: Callable[[], Any],
    min_calls: int = 4,
    max_calls: int = 40,
    max_seconds: float = 30.0,
    window: int = 3,
    tolerance: float = 0.25,
) -> tuple[float, list[float]]:
    """Call ``fn`` until the last ``window`` times agree within ``tolerance`` (relative).

    The first calls of a process are slow (kernel creation, allocator warm-up: under bf16
    on a CPU the first ~6 steps are many times slower), so a fixed warm-up count either wastes
    a short budget or misjudges the step. Stops after ``max_calls`` calls or ``max_seconds``
    (after at least one call). Returns (the median of the last ``window`` times when they
    agree, else the fastest of them; all times).
    """
    times: list[float] = []
    begin = time.perf_counter()
    while True:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
        last = times[-window:]
        stable = len(times) >= max(min_calls, window) and max(last) <= (1 + tolerance) * min(last)
        if stable:
            return float(statistics.median(last)), times
        if len(times) >= max_calls or time.perf_counter() - begin >= max_seconds:
            # Out of budget before the times settled: the slow ones are warm-up (or another
            # process's turn), so the fastest recent call is the best guess of a settled step.
            return float(min(last)), times


def probe_budget_s(minutes: float | None, fraction: float = 0.04, cap_s: float = 30.0) -> float:
    """Seconds a throughput probe may take in a run of ``minutes``: 4 % of it, 0.5 to 30 s."""
    if minutes is None:
        return cap_s
    return float(min(cap_s, max(0.5, fraction * minutes * 60.0)))


def training_step(
    model: torch.nn.Module,
    loss_fn: Callable[..., Any],
    batch: Any,
    precision: str,
    grad_clip: float | None = 1.0,
    lr: float = 1e-4,
) -> Callable[[], None]:
    """A closure doing one real training step on a throwaway copy of ``model``.

    ``loss_fn(model, batch, generator)`` may return a loss or ``(loss, extras)``. The copy,
    its AdamW and the generator are private: the caller's model and RNG streams are untouched.
    """
    probe = copy.deepcopy(model).train()
    params = [p for p in probe.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr)
    device = params[0].device if params else torch.device("cpu")
    gen = torch.Generator(device=device).manual_seed(0)

    def step() -> None:
        with autocast(precision, device):
            out = loss_fn(probe, batch, gen)
        loss = out[0] if isinstance(out, tuple) else out
        loss.float().backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


@dataclass
class StepTiming:
    """A measured training step: seconds, threads used, the probe's own cost."""

    seconds: float
    threads: int
    probe_s: float
    times: list[float]


def measure_train_step(
    model: torch.nn.Module,
    loss_fn: Callable[..., Any],
    batch: Any,
    precision: str,
    budget_s: float = 30.0,
    pick_threads: bool = False,
    grad_clip: float | None = 1.0,
) -> StepTiming:
    """Seconds of one training step of ``model`` at ``precision``, within ``budget_s``.

    With ``pick_threads`` on a multi-threaded CPU, one thread is timed too and the faster
    setting is kept (``torch.set_num_threads``): on shared cores, OpenMP threads that spin at
    barriers while another process holds a core can make 2 threads slower than 1.
    """
    begin = time.perf_counter()
    step = training_step(model, loss_fn, batch, precision, grad_clip)
    threads = torch.get_num_threads()
    share = budget_s * (0.6 if pick_threads and threads > 1 else 1.0)
    seconds, times = time_until_stable(step, max_seconds=share)
    device = next(model.parameters()).device
    if pick_threads and threads > 1 and device.type == "cpu":
        left = budget_s - (time.perf_counter() - begin)
        if left > 2 * seconds:
            torch.set_num_threads(1)
            single, _ = time_until_stable(step, min_calls=3, max_calls=10, max_seconds=left)
            if single < seconds:
                seconds = single
            else:
                torch.set_num_threads(threads)
    return StepTiming(seconds, torch.get_num_threads(), time.perf_counter() - begin, times)


@dataclass
class TrainPlan:
    """Steps and bounds of a time-bounded run."""

    max_steps: int
    max_minutes: float | None
    seconds_per_step: float | None


def plan_steps(
    minutes: float | None,
    seconds_per_step: float | None,
    max_steps: int | None = None,
    spent_s: float = 0.0,
    safety: float = 0.9,
    min_steps: int = 1,
) -> TrainPlan:
    """Fit the LR schedule into a time budget: ``max_steps = safety * remaining / step time``.

    ``spent_s`` (the probe, data loading) counts against ``minutes``. An explicit
    ``max_steps`` wins (then ``minutes`` is only a hard stop).
    """
    if max_steps is not None:
        return TrainPlan(int(max_steps), minutes, seconds_per_step)
    if minutes is None or seconds_per_step is None or not seconds_per_step > 0:
        raise ValueError("give max_steps, or minutes together with a measured step time")
    remaining = max(minutes * 60.0 - spent_s, 1.0)
    steps = max(min_steps, math.floor(safety * remaining / seconds_per_step))
    return TrainPlan(steps, remaining / 60.0, seconds_per_step)
