"""Where the time of one float32 (or bf16) training step of the demo's U-Net goes.

Times a bare step (forward, backward, clipping, AdamW) at batch 64 on the built-in digits and
profiles it with torch.profiler, grouping operators; writes benchmarks/out/profile_step.json
with the machine record. To see a CPU without AVX-512 / native bf16 on one that has them:

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 \\
        python benchmarks/profile_step.py --precision fp32 --tag avx2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from synesthesia.data.images import load_image_splits
from synesthesia.diffusion import NoiseSchedule
from synesthesia.nets.unet import UNet
from synesthesia.pipelines.image import ImageRecipe, default_unet_config, image_loss_fn
from synesthesia.training.machine import CpuWallClock, machine_record
from synesthesia.training.precision import autocast, resolve_precision

OUT = Path(__file__).parent / "out"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--tag", default="native")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--sample-batch", type=int, default=250)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    precision = resolve_precision(args.precision, "cpu")
    train, _ = load_image_splits("mnist5k")
    torch.manual_seed(0)
    unet = UNet(default_unet_config(args.preset, train.images, 10)).train()
    schedule = NoiseSchedule("cosine", 1000)
    loss_fn = image_loss_fn(ImageRecipe(), schedule, unet.null_class)
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    batch = (train.images[: args.batch], train.labels[: args.batch])

    def step():
        with autocast(precision, "cpu"):
            loss = loss_fn(unet, batch, gen)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(5):
        step()
    with CpuWallClock() as clock:
        times = []
        for _ in range(args.steps):
            t = time.perf_counter()
            step()
            times.append(time.perf_counter() - t)
    step_s = statistics.median(times)

    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(5):
            step()
    rows = []
    for e in prof.key_averages():
        rows.append((e.key, e.self_cpu_time_total / 5 / 1e3, e.count // 5))
    rows.sort(key=lambda r: -r[1])
    total = sum(r[1] for r in rows)

    # sampling: one forward at the sampling batch size (CFG doubles it)
    unet.eval()
    x = torch.randn(2 * args.sample_batch, 1, 28, 28)
    t = torch.randint(0, 1000, (2 * args.sample_batch,))
    y = torch.randint(0, 11, (2 * args.sample_batch,))
    with torch.no_grad(), autocast(precision, "cpu"):
        unet(x, t, labels=y)
        fwd = []
        for _ in range(3):
            s = time.perf_counter()
            unet(x, t, labels=y)
            fwd.append(time.perf_counter() - s)
    out = {
        "machine": machine_record(precision, cpu_wall=clock.ratio),
        "tag": args.tag,
        "preset": args.preset,
        "batch": args.batch,
        "step_s_median": step_s,
        "images_per_s": args.batch / step_s,
        "step_times": times,
        "sample_forward_batch": 2 * args.sample_batch,
        "sample_forward_s": statistics.median(fwd),
        "profile_ms_per_step": [
            {"op": k, "self_ms": round(ms, 3), "calls": c, "share": round(ms / total, 4)}
            for k, ms, c in rows[:25]
        ],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"profile_step_{args.tag}_{args.precision}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(
        f"{args.tag} {precision}: {step_s * 1e3:.1f} ms/step = {args.batch / step_s:.0f} img/s "
        f"(cpu/wall {clock.ratio:.2f}); forward {2 * args.sample_batch}: "
        f"{statistics.median(fwd):.3f} s"
    )
    for k, ms, c in rows[:14]:
        print(f"  {ms:8.2f} ms  {ms / total:6.1%}  x{c:<4d} {k}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
