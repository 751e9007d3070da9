"""Trainer speed on this machine: float32 against bf16 autocast, and the trainer's overhead
over a bare training loop, measured side by side. Writes ``benchmarks/out/training.json``.

The model is the image room's small U-Net (``unet_preset("small")``, class-conditional,
28x28 real MNIST digits, batch 64), trained with its diffusion loss. Four contestants,
interleaved round by round (the order rotates every round):

- ``trainer_<precision>``: :meth:`Trainer.fit` (data loading and collation, AdamW, gradient
  clipping, EMA, learning-rate schedule, RNG snapshot, the per-step reduction, logging);
  each step is timed inside the trainer, split into data / forward-backward / update / rest;
- ``bare_<precision>``: :func:`synesthesia.training.timing.training_step` on one fixed
  batch: forward, backward, clipping, AdamW (the same step without the trainer).

Precision goes through :mod:`synesthesia.training.precision` only. bf16 rows run where bf16
is native (or with ``--precisions fp32,bf16`` forced); on an AVX2-only CPU it is emulated.
Every measurement records process CPU time / wall time: a ratio well below the thread count
means the cores were shared, and the run should be repeated.

    .venv/bin/python benchmarks/bench_training.py [--rounds 3] [--steps 6] [--warmup 2]
        [--batch 64] [--threads N] [--precisions fp32,bf16] [--out benchmarks/out]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from synesthesia.data.images import load_image_splits
from synesthesia.diffusion import NoiseSchedule
from synesthesia.nets.unet import UNet, unet_preset
from synesthesia.pipelines.image import ImageRecipe, image_loss_fn
from synesthesia.training import Trainer, TrainerConfig
from synesthesia.training.machine import CpuWallClock, machine_record
from synesthesia.training.precision import native_bf16, precision_report, resolve_precision
from synesthesia.training.timing import time_calls, training_step

PARTS = ("data", "forward_backward", "update", "rest")  # "ema" is part of "update"


class TimedTrainer(Trainer):
    """The trainer with each iteration timed and split into parts (wall seconds)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.iterations: list[dict[str, float]] = []
        self._parts: dict[str, float] = {}

    def _timed(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return fn(*args)
        finally:
            self._parts[name] = self._parts.get(name, 0.0) + time.perf_counter() - start

    def _batches(self):
        inner = super()._batches()
        while True:
            yield self._timed("data", next, inner)

    def _train_step(self, batch):
        return self._timed("forward_backward", super()._train_step, batch)

    def _commit_step(self) -> None:
        self._timed("update", super()._commit_step)

    def _update_ema(self) -> None:
        self._timed("ema", super()._update_ema)

    def _iteration(self, batches, run):
        self._parts = {}
        wall, cpu = time.perf_counter(), time.process_time()
        stopped = super()._iteration(batches, run)
        total = time.perf_counter() - wall
        parts = {name: self._parts.get(name, 0.0) for name in PARTS[:3]}
        parts["rest"] = total - sum(parts.values())  # RNG snapshot, log window, bookkeeping
        parts["ema"] = self._parts.get("ema", 0.0)
        # what the trainer does that the bare loop does not: data, EMA, the rest
        parts["trainer_only"] = parts["data"] + parts["ema"] + parts["rest"]
        self.iterations.append({"wall_s": total, "cpu_s": time.process_time() - cpu, **parts})
        return stopped


def time_trainer(build, data, loss_fn, precision: str, args) -> dict:
    """Median seconds per trainer step (after ``warmup`` steps; the last, saving, left out)."""
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as out, CpuWallClock() as clock:
        cfg = TrainerConfig(
            out_dir=out,
            batch_size=args.batch,
            max_steps=args.warmup + args.steps + 1,
            mixed_precision=precision,
            progress=False,
            checkpoint_every=10_000,
            log_every=25,
        )
        trainer = TimedTrainer(build(), loss_fn, data, cfg, {})
        trainer.fit()
    timed = trainer.iterations[args.warmup : args.warmup + args.steps]
    result = {key: statistics.median(it[key] for it in timed) for key in timed[0]}
    return {
        **result,
        "cpu_per_wall": clock.ratio,
        "step_s": [it["wall_s"] for it in timed],
        "step_cpu_s": [it["cpu_s"] for it in timed],
    }


def time_bare(build, batch, loss_fn, precision: str, args) -> dict:
    """Median seconds per step of forward / backward / clipping / AdamW on one batch."""
    torch.manual_seed(0)
    step = training_step(build(), loss_fn, batch, precision, grad_clip=1.0)
    cpu_times: list[float] = []

    def timed_step() -> None:
        cpu = time.process_time()
        step()
        cpu_times.append(time.process_time() - cpu)

    with CpuWallClock() as clock:
        walls = time_calls(timed_step, args.steps, warmup=args.warmup)
    return {
        "wall_s": statistics.median(walls),
        "cpu_s": statistics.median(cpu_times[args.warmup :]),
        "cpu_per_wall": clock.ratio,
        "step_s": walls,
        "step_cpu_s": cpu_times[args.warmup :],
    }


def summarise(rounds: list[dict], batch: int) -> dict:
    """Medians over rounds of each contestant's median step, and the fastest step of all
    (contention only ever adds time, so on shared cores the minimum is the steadier figure)."""
    keys = [k for k in rounds[0] if not k.startswith("step_")]
    out = {k: statistics.median(r[k] for r in rounds) for k in keys}
    out["items_per_s"] = batch / out["wall_s"]
    out["min_wall_s"] = min(t for r in rounds for t in r["step_s"])
    out["min_cpu_s"] = min(t for r in rounds for t in r["step_cpu_s"])
    out["rounds"] = rounds
    return out


def ratios(a: dict, b: dict) -> dict[str, float]:
    """``a`` over ``b`` by median wall, median CPU and fastest-step time."""
    return {
        "wall": a["wall_s"] / b["wall_s"],
        "cpu": a["cpu_s"] / b["cpu_s"],
        "min_wall": a["min_wall_s"] / b["min_wall_s"],
        "min_cpu": a["min_cpu_s"] / b["min_cpu_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before them")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument(
        "--precisions",
        default=None,
        help="comma-separated fp32,bf16 (default: fp32, and bf16 where it is native)",
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "out"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    default = "fp32,bf16" if native_bf16("cpu") else "fp32"
    precisions = [resolve_precision(p, "cpu") for p in (args.precisions or default).split(",")]
    tags = {"no": "fp32", "bf16": "bf16"}  # resolved precision -> the name in the JSON

    train, _ = load_image_splits("mnist5k")
    batch = (train.images[: args.batch], train.labels[: args.batch])
    loss_fn = image_loss_fn(ImageRecipe(), NoiseSchedule("cosine", 1000), null_class=10)

    def build() -> UNet:
        return UNet(unet_preset("small"))

    contestants = [(kind, p) for p in precisions for kind in ("trainer", "bare")]
    runs: dict[str, list[dict]] = {f"{k}_{tags[p]}": [] for k, p in contestants}
    with CpuWallClock() as whole:
        for r in range(args.rounds):
            shift = r % len(contestants)
            for kind, precision in contestants[shift:] + contestants[:shift]:
                if kind == "trainer":
                    numbers = time_trainer(build, train, loss_fn, precision, args)
                else:
                    numbers = time_bare(build, batch, loss_fn, precision, args)
                runs[f"{kind}_{tags[precision]}"].append(numbers)
                print(
                    f"round {r + 1}/{args.rounds} {kind:<7} {tags[precision]:<4} "
                    f"{numbers['wall_s'] * 1e3:7.1f} ms/step  cpu/wall "
                    f"{numbers['cpu_per_wall']:.2f}",
                    flush=True,
                )

    result: dict[str, Any] = {
        "command": " ".join(["benchmarks/bench_training.py", *sys.argv[1:]]),
        "model": {
            "name": "UNet small preset (class-conditional, 28x28)",
            "parameters": sum(p.numel() for p in build().parameters()),
            "data": train.name,
            "batch_size": args.batch,
        },
        "settings": {"rounds": args.rounds, "steps": args.steps, "warmup": args.warmup},
        "precision_auto": precision_report("cpu"),
        "runs": {name: summarise(rounds, args.batch) for name, rounds in runs.items()},
    }
    med = result["runs"]
    result["trainer_over_bare"] = {
        tags[p]: ratios(med[f"trainer_{tags[p]}"], med[f"bare_{tags[p]}"]) for p in precisions
    }
    # The trainer's own work (timed inside it, so contention inflates it no more than the
    # step itself) as a fraction of the bare loop's step.
    result["trainer_only_fraction"] = {
        tags[p]: med[f"trainer_{tags[p]}"]["trainer_only"] / med[f"bare_{tags[p]}"]["wall_s"]
        for p in precisions
    }
    if {"no", "bf16"} <= set(precisions):
        result["bf16_speedup"] = {
            kind: ratios(med[f"{kind}_fp32"], med[f"{kind}_bf16"]) for kind in ("trainer", "bare")
        }
    result["machine"] = machine_record(
        precision=",".join(precisions),
        cpu_s=whole.cpu_s,
        wall_s=whole.wall_s,
        cpu_wall=whole.ratio,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "training.json"
    path.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\n{'run':<14}{'ms/step':>9}{'cpu ms':>9}{'items/s':>9}{'cpu/wall':>10}")
    for name, row in med.items():
        print(
            f"{name:<14}{row['wall_s'] * 1e3:>9.1f}{row['cpu_s'] * 1e3:>9.1f}"
            f"{row['items_per_s']:>9.0f}{row['cpu_per_wall']:>10.2f}"
        )
    for label, table in (
        ("trainer / bare", result["trainer_over_bare"]),
        ("bf16 speed-up", result.get("bf16_speedup", {})),
    ):
        for key, r in table.items():
            text = ", ".join(f"{name} {value:.3f}x" for name, value in r.items())
            print(f"{label} ({key}): {text}")
    for key, fraction in result["trainer_only_fraction"].items():
        print(f"trainer's own work ({key}): {100 * fraction:.2f} % of a bare step")
    threads = torch.get_num_threads()
    print(f"wrote {path} (whole run: cpu/wall {whole.ratio:.2f} on {threads} threads)")


if __name__ == "__main__":
    main()
