"""The probes' training loop: a small network on fresh synthetic scenes, a fixed step count.

Every step draws a new batch from the task's scene generator (there is no data set to cycle
through), so the run is deterministic per seed and needs no checkpoints: a probe network trains
in seconds to a minute. The learning-rate schedule and the precision are the trainer's
(:func:`synesthesia.training.schedule.lr_at`, :func:`synesthesia.training.precision.autocast`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from synesthesia.training.config import TrainerConfig
from synesthesia.training.precision import autocast, resolve_precision
from synesthesia.training.schedule import lr_at


@dataclass
class TrainLog:
    """Per-step losses and the wall / process CPU seconds of a training run."""

    losses: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_s: float = 0.0


def build(factory: Callable[[], torch.nn.Module], seed: int) -> torch.nn.Module:
    """``factory()`` with its initial weights drawn from ``seed`` (the global RNG untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return factory()


def train_steps(
    net: torch.nn.Module,
    batch: Callable[[torch.Generator], Any],
    loss: Callable[[torch.nn.Module, Any], torch.Tensor],
    *,
    steps: int,
    lr: float,
    warmup_steps: int = 100,
    precision: str = "fp32",
    seed: int = 0,
    grad_clip: float = 1.0,
    progress: bool = False,
    desc: str = "train",
) -> TrainLog:
    """``steps`` AdamW updates of ``net`` on ``loss(net, batch(generator))``.

    Warm-up then cosine decay of ``lr`` (the trainer's schedule); gradient norm clipped at
    ``grad_clip``; the batches come from ``torch.Generator().manual_seed(seed)``. ``net`` is
    left in eval mode.
    """
    g = torch.Generator().manual_seed(int(seed))
    schedule = TrainerConfig(out_dir="", max_steps=steps, lr=lr, warmup_steps=warmup_steps)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    mode = resolve_precision(precision, "cpu")
    log = TrainLog()
    it = range(steps)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=desc)
    t0, c0 = time.perf_counter(), time.process_time()
    net.train()
    for step in it:
        for group in opt.param_groups:
            group["lr"] = lr_at(step, schedule)
        data = batch(g)
        with autocast(mode, "cpu"):
            value = loss(net, data)
        opt.zero_grad(set_to_none=True)
        value.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
        opt.step()
        log.losses.append(float(value.detach()))
    net.eval()
    log.wall_s, log.cpu_s = time.perf_counter() - t0, time.process_time() - c0
    return log
