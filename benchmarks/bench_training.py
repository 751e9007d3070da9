"""Trainer speed on this machine: bf16 autocast against fp32, and the trainer's overhead.

Two questions, measured side by side (A and B interleaved, medians, process CPU / wall):

1. How much faster is a training step of a small conv net (a U-Net-like encoder-decoder on
   28x28 images, GroupNorm + SiLU, ~0.6M parameters) under bf16 autocast than in fp32? This
   is what ``mixed_precision="auto"`` relies on.
2. How much does the trainer add (data loading, clipping, EMA, LR schedule, logging) over a
   bare ``forward / backward / AdamW.step`` loop with the same model and batch size?

    .venv/bin/python benchmarks/bench_training.py [--steps 6] [--rounds 3] [--batch 32]
                                                  [--threads N]

A CPU/wall ratio well below the number of threads means the machine was shared while the
numbers were taken; rerun then.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from torch import nn

from synesthesia.training import Trainer, TrainerConfig, resolve_mixed_precision


class Block(nn.Module):
    """Residual block: GroupNorm, SiLU, 3x3 conv, twice."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(8, cin),
            nn.SiLU(),
            nn.Conv2d(cin, cout, 3, padding=1),
            nn.GroupNorm(8, cout),
            nn.SiLU(),
            nn.Conv2d(cout, cout, 3, padding=1),
        )
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.skip(x) + self.body(x)


class SmallUNet(nn.Module):
    """28 -> 14 -> 7 -> 14 -> 28 with skip connections (no time embedding: speed only)."""

    def __init__(self, ch: int = 32) -> None:
        super().__init__()
        self.inp = nn.Conv2d(1, ch, 3, padding=1)
        self.d1, self.d2 = Block(ch, ch), Block(ch, 2 * ch)
        self.mid = Block(2 * ch, 2 * ch)
        self.u2, self.u1 = Block(4 * ch, ch), Block(2 * ch, ch)
        self.out = nn.Conv2d(ch, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h1 = self.d1(self.inp(x))
        h2 = self.d2(nn.functional.avg_pool2d(h1, 2))
        m = self.mid(nn.functional.avg_pool2d(h2, 2))
        u = self.u2(torch.cat([nn.functional.interpolate(m, scale_factor=2.0), h2], 1))
        u = self.u1(torch.cat([nn.functional.interpolate(u, scale_factor=2.0), h1], 1))
        return self.out(u)


def denoise_loss(model: nn.Module, batch, generator: torch.Generator) -> torch.Tensor:
    """Predict the noise added to an image (the shape of a diffusion training step)."""
    (x,) = batch
    noise = torch.randn(x.shape, generator=generator, device=generator.device)
    return ((model(x + noise) - noise).float() ** 2).mean()


def time_trainer(precision: str, data, steps: int, batch: int) -> tuple[float, float]:
    """Median wall and CPU seconds per trainer step (after 3 warm-up steps)."""
    marks: list[tuple[float, float]] = []

    def loss_fn(model, b, generator):
        marks.append((time.perf_counter(), time.process_time()))
        return denoise_loss(model, b, generator)

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as out:
        cfg = TrainerConfig(
            out_dir=out,
            batch_size=batch,
            max_steps=steps + 3,
            mixed_precision=precision,
            progress=False,
            checkpoint_every=10_000,
            log_every=10_000,
        )
        Trainer(SmallUNet(), loss_fn, data, cfg, {}).fit()
    walls = [b[0] - a[0] for a, b in zip(marks[3:], marks[4:])]
    cpus = [b[1] - a[1] for a, b in zip(marks[3:], marks[4:])]
    return statistics.median(walls), statistics.median(cpus)


def time_bare(precision: str, x: torch.Tensor, steps: int) -> tuple[float, float]:
    """Median wall and CPU seconds per step of a bare forward/backward/AdamW loop."""
    torch.manual_seed(0)
    model = SmallUNet()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-4)
    g = torch.Generator().manual_seed(0)
    walls, cpus = [], []
    for i in range(steps + 3):
        w0, c0 = time.perf_counter(), time.process_time()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = denoise_loss(model, (x,), g)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i >= 3:
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    g = torch.Generator().manual_seed(0)
    images = torch.rand(args.batch * 4, 1, 28, 28, generator=g) * 2 - 1
    data = torch.utils.data.TensorDataset(images)
    n_params = sum(p.numel() for p in SmallUNet().parameters())
    print(f"threads={torch.get_num_threads()} params={n_params:,} batch={args.batch}")
    print(f"mixed_precision='auto' resolves to {resolve_mixed_precision('auto', 'cpu')!r} here")

    results: dict[str, list[tuple[float, float]]] = {}
    for r in range(args.rounds):
        for name, fn in (
            ("trainer fp32", lambda: time_trainer("no", data, args.steps, args.batch)),
            ("trainer bf16", lambda: time_trainer("bf16", data, args.steps, args.batch)),
            ("bare fp32", lambda: time_bare("no", images[: args.batch], args.steps)),
            ("bare bf16", lambda: time_bare("bf16", images[: args.batch], args.steps)),
        ):
            results.setdefault(name, []).append(fn())
        print(f"round {r + 1}/{args.rounds} done")

    print(f"\n{'run':<14}{'ms/step':>9}{'cpu ms':>9}{'items/s':>9}{'cpu/wall':>10}")
    med: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for name, values in results.items():
        wall = statistics.median(v[0] for v in values)
        cpu[name] = statistics.median(v[1] for v in values)
        ratio = statistics.median(v[1] / v[0] for v in values)
        med[name] = wall
        print(
            f"{name:<14}{wall * 1e3:>9.1f}{cpu[name] * 1e3:>9.1f}{args.batch / wall:>9.0f}"
            f"{ratio:>10.2f}"
        )
    # With one thread, process CPU time per step is the work done, whatever the contention.
    for label, d in (("wall", med), ("cpu", cpu)):
        print(
            f"\n[{label}] bf16 speed-up: trainer {d['trainer fp32'] / d['trainer bf16']:.2f}x, "
            f"bare loop {d['bare fp32'] / d['bare bf16']:.2f}x"
        )
        print(
            f"[{label}] trainer / bare loop: fp32 {d['trainer fp32'] / d['bare fp32']:.3f}x, "
            f"bf16 {d['trainer bf16'] / d['bare bf16']:.3f}x"
        )


if __name__ == "__main__":
    main()
