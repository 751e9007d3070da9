"""Image diffusion on a CPU: the 10-minute target run, quality per NFE, speed against diffusers.

Stages (run all, or pick with --stage; each writes its numbers to --out-dir/<stage>.json):

- ``speed``: training throughput (images/s) of our default U-Net against diffusers'
  ``UNet2DModel`` of (nearly) equal parameter count, measured interleaved in the same process
  (rounds A, B, A, B, ...), with bf16 autocast; ours also in fp32 (the bf16 gain). Also the
  machine share: FLOPs per training step (``torch.utils.flop_counter``) times steps/s, divided
  by the same run's large-matmul FLOP/s.
- ``target``: ``synesthesia demo``'s training (preset small, --minutes, default 10), then
  class-conditional sample accuracy and classifier-FID at guidance 1, 2, 3 with dpmpp_2m and
  20 steps (100 samples per class), and the demo grid.
- ``diffusers``: the ``target`` stage with diffusers' ``UNet2DModel`` (32/64/64) trained in
  place of ours (same recipe, trainer, budget and scoring): quality at equal wall time.
- ``nfe``: the target checkpoint's accuracy and classifier-FID at 10, 20, 50 and 250 network
  evaluations for ddpm, ddim, dpmpp_2m and heun (guidance 2). The steps for each budget come
  from ``diffusion.steps_for_nfe`` and every cell reports the denoiser calls it really made
  (counted by ``diffusion.CountingDenoiser``), never a formula.
- ``demo``: ``synesthesia demo`` as a new user runs it (a subprocess with an empty cache, so
  the evaluator's first training counts), optionally on an emulated AVX2-only CPU
  (``--emulate-avx2``: ATEN_CPU_CAPABILITY=avx2, ONEDNN_MAX_CPU_ISA=AVX2,
  MKL_ENABLE_INSTRUCTIONS=AVX2; oneDNN then reports no native bf16, so "auto" is float32).

Every stage records the machine (``training.machine.machine_record``: CPU model, torch CPU
capability, native bf16, threads, precision) and process CPU time / wall time: on 2 cores a
ratio well below 2 means the machine was shared (contended) while measuring.

    python benchmarks/bench_image.py --stage speed
    python benchmarks/bench_image.py --stage target --minutes 10
    python benchmarks/bench_image.py --stage nfe --n-per-class 30
    python benchmarks/bench_image.py --stage demo --emulate-avx2 --tag avx2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from synesthesia.data.images import load_image_splits
from synesthesia.diffusion import CountingDenoiser, NoiseSchedule, steps_for_nfe
from synesthesia.metrics import get_evaluator, score_class_conditional
from synesthesia.nets.unet import UNet, UNetConfig, unet_preset
from synesthesia.pipelines.image import (
    ClassToImagePipeline,
    ImageRecipe,
    image_loss_fn,
    save_image_grid,
)
from synesthesia.pipelines.image_train import ImageTrainOptions, train_class_to_image
from synesthesia.training.machine import machine_record
from synesthesia.training.precision import resolve_precision
from synesthesia.training.timing import time_calls, training_step

AVX2_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
}


class Clock:
    """Wall time and process CPU time since creation."""

    def __init__(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), time.process_time()

    def read(self) -> dict[str, float]:
        wall = time.perf_counter() - self.wall0
        cpu = time.process_time() - self.cpu0
        return {"wall_s": wall, "cpu_s": cpu, "cpu_per_wall": cpu / max(wall, 1e-9)}


def _save(out_dir: Path, stage: str, result: dict, show: bool = True) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    result.setdefault("machine", machine_record(result.get("precision")))
    (out_dir / f"{stage}.json").write_text(json.dumps(result, indent=2) + "\n")
    if show:
        print(json.dumps(result, indent=2))


# ---------------------------------------------------------------------- speed
def diffusers_unet(num_classes: int = 10, widths: tuple[int, ...] = (32, 64, 64)):
    """diffusers' UNet2DModel with about our small preset's parameter count (1.11M).

    ``widths`` (32, 64, 64) is the layout diffusers users pick (its docs' MNIST-size models
    double the width once); (16, 48, 80), our small preset's widths, gives diffusers 1.11M too.
    """
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=28,
        in_channels=1,
        out_channels=1,
        block_out_channels=widths,
        layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        norm_num_groups=8,
        attention_head_dim=16,
        num_class_embeds=num_classes + 1,
    )


class _DiffusersDenoiser(torch.nn.Module):
    """diffusers' U-Net behind our denoiser signature ``(x_t, t, labels)``.

    ``fp32_attention`` runs its attention core in float32 under autocast, as our U-Net does on
    the CPU (``synesthesia.nets.layers.sdpa``): the fair comparison of the two layouts.
    """

    def __init__(self, net, config: UNetConfig, fp32_attention: bool = False) -> None:
        super().__init__()
        self.net = net
        self.config = config  # image size, channels and classes, as the pipeline reads them
        self.null_class = config.num_classes
        self.fp32_attention = fp32_attention

    def forward(self, x, t, labels=None):
        if labels is None:
            labels = torch.full((x.shape[0],), self.null_class, dtype=torch.long)
        if not self.fp32_attention:
            return self.net(x, t, class_labels=labels).sample
        original = F.scaled_dot_product_attention
        F.scaled_dot_product_attention = _fp32_sdpa(original)
        try:
            return self.net(x, t, class_labels=labels).sample
        finally:
            F.scaled_dot_product_attention = original


def _fp32_sdpa(original):
    # nets.layers.sdpa cannot be reused here: it calls F.scaled_dot_product_attention, which
    # is the function being patched (and diffusers passes extra keyword arguments).
    def attention(q, k, v, *args, **kwargs):
        with torch.autocast("cpu", enabled=False):
            return original(q.float(), k.float(), v.float(), *args, **kwargs).to(q.dtype)

    return attention


def train_step_flops(model, loss_fn, batch) -> int:
    """FLOPs of one training step (forward + backward), counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    gen = torch.Generator().manual_seed(0)
    with FlopCounterMode(display=False) as counter:
        loss = loss_fn(model, batch, gen)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def matmul_flops_per_s(n: int = 2048, repeats: int = 5, dtype=torch.bfloat16) -> float:
    """Median FLOP/s of an n x n matmul (2 n^3 FLOPs): the machine's practical peak."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times)


def stage_speed(args) -> dict:
    clock = Clock()
    train, _ = load_image_splits("mnist5k")
    batch = (train.images[: args.batch_size], train.labels[: args.batch_size])
    loss_fn = image_loss_fn(ImageRecipe(), NoiseSchedule("cosine", 1000), null_class=10)
    torch.manual_seed(0)
    config = unet_preset("small")
    # bf16 rows use bf16 autocast (forced: this stage measures it); on a CPU without native
    # bf16 they are skipped unless --precision bf16 asks for them (bf16 is emulated there).
    low = resolve_precision(args.precision, "cpu")
    tag = "bf16" if low == "bf16" else "fp32"
    contestants = {
        f"ours_{tag}": (UNet(config), low),
        f"diffusers_{tag}": (_DiffusersDenoiser(diffusers_unet(), config), low),
        f"diffusers_{tag}_fp32_attention": (
            _DiffusersDenoiser(diffusers_unet(), config, fp32_attention=True),
            low,
        ),
        f"diffusers_{tag}_our_widths": (
            _DiffusersDenoiser(diffusers_unet(widths=(16, 48, 80)), config),
            low,
        ),
    }
    if low == "bf16":
        contestants["ours_fp32"] = (UNet(unet_preset("small")), "no")
    steps = {
        name: training_step(model, loss_fn, batch, precision)
        for name, (model, precision) in contestants.items()
    }
    for step in steps.values():  # warm-up (oneDNN kernel selection)
        time_calls(step, 2)
    times: dict[str, list[float]] = {k: [] for k in contestants}
    ratios: dict[str, list[float]] = {k: [] for k in contestants}
    for _ in range(args.rounds):  # interleaved: A, B, C, A, B, C, ...
        for name in contestants:
            c = Clock()
            times[name] += time_calls(steps[name], args.steps)
            ratios[name].append(c.read()["cpu_per_wall"])
    result: dict = {
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(),
        "precision": low,
    }
    for name, (model, _amp) in contestants.items():
        med = statistics.median(times[name])
        result[name] = {
            "parameters": sum(p.numel() for p in model.parameters()),
            "median_step_s": med,
            "images_per_s": args.batch_size / med,
            "cpu_per_wall": statistics.median(ratios[name]),
        }
    ours = result[f"ours_{tag}"]["images_per_s"]
    result["speedup_vs_diffusers"] = ours / result[f"diffusers_{tag}"]["images_per_s"]
    result["speedup_vs_diffusers_fp32_attention"] = (
        ours / result[f"diffusers_{tag}_fp32_attention"]["images_per_s"]
    )
    if low == "bf16":
        result["bf16_speedup"] = ours / result["ours_fp32"]["images_per_s"]

    # Machine share: model FLOP/s over the large-matmul FLOP/s of the same run.
    flops = train_step_flops(contestants[f"ours_{tag}"][0], loss_fn, batch)
    peak = matmul_flops_per_s(dtype=torch.bfloat16 if low == "bf16" else torch.float32)
    achieved = flops / result[f"ours_{tag}"]["median_step_s"]
    d_model = contestants[f"diffusers_{tag}"][0]
    d_flops = train_step_flops(d_model, loss_fn, batch)
    result["flops"] = {
        "ours_per_step": flops,
        "ours_per_image": flops / args.batch_size,
        "diffusers_per_step": d_flops,
        "ours_achieved_flop_s": achieved,
        f"matmul_{tag}_flop_s": peak,
        f"utilisation_vs_{tag}_matmul": achieved / peak,
        f"diffusers_utilisation_vs_{tag}_matmul": d_flops
        / result[f"diffusers_{tag}"]["median_step_s"]
        / peak,
    }
    result["clock"] = clock.read()
    return result


# ---------------------------------------------------------------------- quality
def _generator_fn(pipe, guidance: float, steps: int, method: str, counter=None):
    """``generate(labels, gen)`` for scoring; with ``counter`` (a dict) the denoiser calls of
    the first batch are counted into ``counter["calls"]`` (every batch makes as many)."""

    def generate(labels, gen):
        if counter is None:
            return pipe(
                labels,
                guidance_scale=guidance,
                num_inference_steps=steps,
                method=method,
                generator=gen,
            )
        real = pipe.denoiser
        counting = CountingDenoiser(real())
        pipe.denoiser = lambda: counting
        try:
            images = pipe(
                labels,
                guidance_scale=guidance,
                num_inference_steps=steps,
                method=method,
                generator=gen,
                batch_size=len(labels),
            )
        finally:
            pipe.denoiser = real
        counter["calls"] = counting.calls
        return images

    return generate


def stage_target(args, build_model=None, run_dir=None, grid=None) -> dict:
    clock = Clock()
    train, val = load_image_splits("mnist5k")
    evaluator, ev_config = get_evaluator(train, val, progress=False)
    options = ImageTrainOptions(
        out_dir=str(run_dir or args.run_dir),
        minutes=args.minutes,
        seed=args.seed,
        progress=False,
        build_model=build_model,
    )
    train_clock = Clock()
    pipe, res, plan = train_class_to_image(train, options)
    trained = train_clock.read()
    result: dict = {
        "minutes": args.minutes,
        "train": {
            "steps": res.step,
            "planned_steps": plan["max_steps"],
            "stopped": res.stopped,
            "images_per_s": res.items_per_s,
            "batch_size": options.batch_size,
            "parameters": sum(p.numel() for p in pipe.unet.parameters()),
            "plan": plan,
            **trained,
        },
        "evaluator": {k: ev_config.get(k) for k in ("val_accuracy", "val_size", "trusted")},
        "scores": {},
    }
    for guidance in (1.0, 2.0, 3.0):
        c = Clock()
        s = score_class_conditional(
            _generator_fn(pipe, guidance, 20, "dpmpp_2m"), evaluator, val, args.n_target, args.seed
        )
        result["scores"][f"dpmpp_2m_20_g{guidance:g}"] = {**s, **c.read()}
        print(f"guidance {guidance}: {s}", flush=True)
    images = pipe(
        torch.arange(10).repeat_interleave(10),
        guidance_scale=2.0,
        num_inference_steps=20,
        generator=torch.Generator().manual_seed(args.seed),
    )
    save_image_grid(images, grid or args.grid, nrow=10, scale=2)
    result["clock"] = clock.read()
    return result


def stage_diffusers(args) -> dict:
    """The target run with diffusers' UNet2DModel (32/64/64) in place of ours: same recipe,
    trainer, budget, probe and scoring, so the two results compare at equal wall time."""

    def build(config):
        torch.manual_seed(args.seed)
        return _DiffusersDenoiser(diffusers_unet(config.num_classes), config)

    return stage_target(
        args,
        build_model=build,
        run_dir=Path(args.run_dir).with_name(Path(args.run_dir).name + "-diffusers"),
        grid=Path(args.out_dir) / "diffusers_grid.png",
    )


def real_digits_floor(train, val, evaluator, n_per_class: int, seed: int) -> dict:
    """The scores of *real* training digits (n_per_class of each class, drawn with ``seed``)
    in place of samples: the floor that classifier-FID of that many samples can reach."""
    gen = torch.Generator().manual_seed(seed)

    def real(labels, _gen):
        picks = []
        for k in labels.unique():
            pool = torch.nonzero(train.labels == k).flatten()
            picks.append(pool[torch.randperm(len(pool), generator=gen)[: int((labels == k).sum())]])
        return train.images[torch.cat(picks)]

    return score_class_conditional(real, evaluator, val, n_per_class, seed)


def stage_nfe(args) -> dict:
    clock = Clock()
    train, val = load_image_splits("mnist5k")
    evaluator, _ = get_evaluator(train, val, progress=False)
    pipe = ClassToImagePipeline.from_pretrained(Path(args.run_dir) / "checkpoint")
    result: dict = {"guidance": args.guidance, "n_per_class": args.n_per_class, "rows": []}
    result["real_digits"] = real_digits_floor(train, val, evaluator, args.n_per_class, args.seed)
    print(f"real training digits: {result['real_digits']}", flush=True)
    for nfe in args.nfe:
        for method in ("ddpm", "ddim", "dpmpp_2m", "heun"):
            steps = steps_for_nfe(pipe.schedule, method, nfe)
            c = Clock()
            counted: dict = {}
            s = score_class_conditional(
                _generator_fn(pipe, args.guidance, steps, method, counted),
                evaluator,
                val,
                args.n_per_class,
                args.seed,
            )
            row = {
                "method": method,
                "nfe": counted["calls"],
                "nfe_budget": nfe,
                "steps": steps,
                **s,
                **c.read(),
            }
            result["rows"].append(row)
            print(
                f"{method:9s} nfe {row['nfe']:4d}: acc {s['sample_accuracy']:.3f} "
                f"fid {s['classifier_fid']:.2f} ({row['wall_s']:.0f} s, "
                f"cpu/wall {row['cpu_per_wall']:.2f})",
                flush=True,
            )
            _save(Path(args.out_dir), "nfe.partial", result, show=False)
    result["clock"] = clock.read()
    return result


def stage_demo(args) -> dict:
    """``synesthesia demo`` as a new user runs it: a subprocess, an empty evaluator cache."""
    import os
    import shutil
    import subprocess
    import sys
    import tempfile

    env = dict(os.environ)
    if args.emulate_avx2:
        env.update(AVX2_ENV)
    cache = Path(tempfile.mkdtemp(prefix="synesthesia-bench-cache-"))
    env["SYNESTHESIA_CACHE"] = str(cache)
    out = Path(args.run_dir).with_name(Path(args.run_dir).name + f"-demo-{args.tag}")
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "synesthesia.cli", "demo", "--out", str(out), "--no-progress"]
    if args.demo_minutes is not None:
        command += ["--minutes", str(args.demo_minutes)]
    if args.demo_precision is not None:
        command += ["--precision", args.demo_precision]
    c = Clock()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    clock = c.read()
    shutil.rmtree(cache, ignore_errors=True)
    if done.returncode != 0:
        raise SystemExit(f"demo failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    metrics = json.loads((out / "metrics.json").read_text())
    print(done.stdout)
    return {
        "tag": args.tag,
        "emulate_avx2": bool(args.emulate_avx2),
        "command": " ".join(command[2:]),
        "wall_s_with_startup": clock["wall_s"],
        "metrics": metrics,
        "machine": metrics["machine"],
        "precision": metrics["machine"].get("precision"),
    }


def plot_nfe(result: dict, path: str | Path) -> Path:
    """Classifier-FID and sample accuracy against NFE per sampler (log NFE axis), from the
    ``nfe`` stage's result; the real-digit floor as a dashed line when present."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_fid, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.4))
    for method in ("ddpm", "ddim", "dpmpp_2m", "heun"):
        rows = sorted((r for r in result["rows"] if r["method"] == method), key=lambda r: r["nfe"])
        nfe = [r["nfe"] for r in rows]
        ax_fid.plot(nfe, [r["classifier_fid"] for r in rows], "o-", label=method)
        ax_acc.plot(nfe, [100 * r["sample_accuracy"] for r in rows], "o-", label=method)
    if "real_digits" in result:
        ax_fid.axhline(result["real_digits"]["classifier_fid"], ls="--", c="grey", label="real")
    n = result["n_per_class"] * 10
    ax_fid.set(xscale="log", xlabel="network evaluations", ylabel=f"classifier-FID ({n} samples)")
    ax_acc.set(xscale="log", xlabel="network evaluations", ylabel="sample accuracy (%)")
    ax_acc.set_ylim(90, 100.5)
    ax_fid.legend(fontsize=8)
    fig.suptitle(f"10-minute model, guidance {result['guidance']:g}", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stage", choices=("speed", "target", "diffusers", "nfe", "demo", "all"), default="all"
    )
    parser.add_argument("--precision", default="auto", help="speed stage: auto, fp32 or bf16")
    parser.add_argument("--emulate-avx2", action="store_true", help="demo stage: AVX2-only CPU")
    parser.add_argument("--tag", default="native", help="demo stage: name of the JSON")
    parser.add_argument("--demo-minutes", type=float, default=None, help="demo stage budget")
    parser.add_argument("--demo-precision", default=None, help="demo stage: --precision")
    parser.add_argument("--out-dir", default="benchmarks/out/image")
    parser.add_argument("--run-dir", default="runs/bench-image")
    parser.add_argument("--grid", default="docs/img/demo_grid.png")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4, help="training steps per speed round")
    parser.add_argument("--n-target", type=int, default=100, help="samples per class (target)")
    parser.add_argument("--n-per-class", type=int, default=30, help="samples per class (nfe)")
    parser.add_argument("--nfe", type=int, nargs="+", default=[10, 20, 50, 250])
    parser.add_argument("--guidance", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nfe-plot", default="docs/img/nfe.png", help="figure of the nfe stage")
    parser.add_argument(
        "--plot-only", action="store_true", help="redraw --nfe-plot from --out-dir/nfe.json"
    )
    args = parser.parse_args()
    if args.plot_only:
        result = json.loads((Path(args.out_dir) / "nfe.json").read_text())
        print(plot_nfe(result, args.nfe_plot))
        return
    stages = ("speed", "target", "diffusers", "nfe") if args.stage == "all" else (args.stage,)
    run = {
        "speed": stage_speed,
        "target": stage_target,
        "diffusers": stage_diffusers,
        "nfe": stage_nfe,
        "demo": stage_demo,
    }
    for stage in stages:
        result = run[stage](args)
        _save(Path(args.out_dir), f"demo_{args.tag}" if stage == "demo" else stage, result)
        if stage == "nfe":
            plot_nfe(result, args.nfe_plot)


if __name__ == "__main__":
    main()
