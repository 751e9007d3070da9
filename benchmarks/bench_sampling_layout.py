"""Sampling throughput of the small U-Net by memory layout, batch size and precision.

What ``DiffusionPipeline.channels_last`` decides: one guided sampler step (the network on a
doubled batch, as classifier-free guidance runs it) timed in the default (NCHW) layout and in
channels-last, interleaved round by round, at several batch sizes, in float32 and (where the
CPU has native bf16) under bf16 autocast. Images per second count sampled images (half the
network batch). Writes ``benchmarks/out/image/sampling_layout.json`` with the machine record.

    python benchmarks/bench_sampling_layout.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from synesthesia.nets.unet import UNet, unet_preset
from synesthesia.training.machine import CpuWallClock, machine_record
from synesthesia.training.precision import autocast, native_bf16
from synesthesia.training.timing import time_calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 64, 128, 250])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=3, help="timed calls per round")
    parser.add_argument("--out", default="benchmarks/out/image/sampling_layout.json")
    args = parser.parse_args()

    clock = CpuWallClock().__enter__()
    torch.manual_seed(0)
    unet = UNet(unet_preset("small")).eval()
    precisions = ["no"] + (["bf16"] if native_bf16("cpu") else [])
    result: dict = {"rows": [], "rounds": args.rounds, "calls": args.calls}
    for precision in precisions:
        for batch in args.batches:
            x = torch.randn(2 * batch, 1, 28, 28)
            t = torch.full((2 * batch,), 500.0)
            labels = torch.randint(0, 11, (2 * batch,))
            inputs = {
                "default": x.contiguous(),
                "channels_last": x.contiguous(memory_format=torch.channels_last),
            }
            times: dict[str, list[float]] = {k: [] for k in inputs}
            ratios: dict[str, list[float]] = {k: [] for k in inputs}
            for _ in range(args.rounds):
                for layout, xin in inputs.items():
                    last = layout == "channels_last"
                    unet.to(memory_format=torch.channels_last if last else torch.contiguous_format)

                    def call(xin=xin, t=t, labels=labels, precision=precision) -> None:
                        with torch.no_grad(), autocast(precision, "cpu"):
                            unet(xin, t, labels=labels)

                    with CpuWallClock() as c:
                        times[layout] += time_calls(call, args.calls, warmup=1)
                    ratios[layout].append(c.ratio)
            for layout in inputs:
                med = statistics.median(times[layout])
                row = {
                    "precision": precision,
                    "batch": batch,
                    "layout": layout,
                    "median_call_s": med,
                    "images_per_s": batch / med,
                    "cpu_per_wall": statistics.median(ratios[layout]),
                }
                result["rows"].append(row)
                print(
                    f"{precision:4s} batch {batch:4d} {layout:13s} {row['images_per_s']:7.1f} "
                    f"images/s (cpu/wall {row['cpu_per_wall']:.2f})",
                    flush=True,
                )
    clock.__exit__()
    result["clock"] = {"wall_s": clock.wall_s, "cpu_s": clock.cpu_s, "cpu_per_wall": clock.ratio}
    result["machine"] = machine_record()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
