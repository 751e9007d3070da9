"""The probes' training loop: a small network on fresh synthetic scenes, a fixed step count.

Every step draws a new batch from the task's scene generator (there is no data set to cycle
through), so the run is deterministic per seed and needs no checkpoints: a probe network trains
in seconds to a minute. The learning-rate schedule and the precision are the trainer's
(:func:`synesthesia.training.schedule.lr_at`, :func:`synesthesia.training.precision.autocast`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from synesthesia.errors import InputError
from synesthesia.training.config import TrainerConfig
from synesthesia.training.precision import autocast, resolve_precision
from synesthesia.training.schedule import lr_at


@dataclass
class NetSettings:
    """The network and training fields every probe config shares: MLP width and depth, AdamW
    steps on batches of fresh scenes, peak learning rate, warm-up steps, precision."""

    hidden: int = 128
    depth: int = 2
    steps: int = 3000
    batch: int = 512
    lr: float = 3e-3
    warmup_steps: int = 100
    precision: str = "fp32"

    def check_training(self) -> None:
        """Every field valid (InputError naming the field otherwise)."""
        check_positive(self, ("lr",))
        check_counts(self, ("hidden", "depth", "steps", "batch"))
        if not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise InputError(f"warmup_steps: must be an integer >= 0, got {self.warmup_steps!r}")


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


def train_with(
    config: Any,
    net: torch.nn.Module,
    batch: Callable[[torch.Generator], Any],
    loss: Callable[[torch.nn.Module, Any], torch.Tensor],
    seed: int,
    progress: bool = False,
    desc: str = "train",
) -> TrainLog:
    """:func:`train_steps` with a probe config's ``steps``, ``lr``, ``warmup_steps`` and
    ``precision``."""
    return train_steps(
        net,
        batch,
        loss,
        steps=config.steps,
        lr=config.lr,
        warmup_steps=config.warmup_steps,
        precision=config.precision,
        seed=seed,
        progress=progress,
        desc=desc,
    )


def check_positive(config: Any, names: tuple[str, ...], allow_zero: bool = False) -> None:
    """Each named field of ``config`` a finite number > 0 (>= 0 with ``allow_zero``)."""
    for name in names:
        v = getattr(config, name)
        ok = isinstance(v, int | float) and math.isfinite(v) and (v >= 0 if allow_zero else v > 0)
        if not ok:
            need = ">= 0" if allow_zero else "> 0"
            raise InputError(f"{name}: must be a finite number {need}, got {v!r}")


def check_counts(config: Any, names: tuple[str, ...]) -> None:
    """Each named field of ``config`` an integer >= 1."""
    for name in names:
        v = getattr(config, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise InputError(f"{name}: must be an integer >= 1, got {v!r}")
