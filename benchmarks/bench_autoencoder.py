"""The KL autoencoder of latent diffusion: a time-bounded run and its scores (issue 9, item 3).

Trains the default autoencoder (``synesthesia train autoencoder``'s network and recipe) for
``--minutes`` (default 5) on the built-in digits, then scores it on the held-out split:

- reconstruction PSNR on [0, 1] images (target >= 24 dB): the mean of per-image PSNRs, and
  the PSNR of the pooled MSE beside it;
- the digit evaluator's accuracy on reconstructions within 1 point of its accuracy on the
  originals;
- the std of the scaled latents (posterior samples) on held-out digits: 1 +- 0.1.

``--variants NAME ...`` also trains recipe/network variants, one after another, for
``--variant-minutes`` each, or for ``--variant-steps`` optimizer steps each (an equal-steps
comparison that contention cannot skew), and scores them the same way. With variants, the
seconds of one training step of each (batch 64, the run's precision) are also timed in
interleaved rounds (A, B, C, A, B, C, ...), so equal steps convert to equal CPU time.

Every result carries the machine record (``training.machine.machine_record``) and process
CPU time / wall time of the training: on 2 cores a ratio well below 2 means contention.

    python benchmarks/bench_autoencoder.py --minutes 5
    python benchmarks/bench_autoencoder.py --variants default l1 wide --variant-steps 600 \
        --skip-default --tag steps600
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from synesthesia.data.images import load_image_splits
from synesthesia.metrics import get_evaluator
from synesthesia.pipelines.autoencoder import (
    AutoencoderRecipe,
    AutoencoderTrainOptions,
    class_spread,
    comparison_grid,
    reconstruction_scores,
    train_autoencoder,
)
from synesthesia.training.machine import CpuWallClock, machine_record

#: Variants tried beside the default (network overrides, recipe).
VARIANTS: dict[str, dict] = {
    "default": {},
    "l1": {"recipe": AutoencoderRecipe(l1_weight=1.0, mse_weight=0.0)},
    "l1_mse": {"recipe": AutoencoderRecipe(l1_weight=1.0, mse_weight=1.0)},
    "feature": {"recipe": AutoencoderRecipe(feature_weight=0.01), "evaluator": True},
    "wide": {"config": {"channels": (32, 64)}},
    "kl_1e-4": {"recipe": AutoencoderRecipe(kl_weight=1e-4)},
    "attention": {"config": {"mid_attention": True}},
}

TARGETS = {"psnr_db": 24.0, "evaluator_accuracy_drop": 0.01, "latent_std_error": 0.1}


def run_one(
    name: str,
    minutes: float | None,
    train,
    val,
    evaluator,
    seed: int,
    precision: str,
    max_steps: int | None = None,
) -> dict:
    """Train variant ``name`` for ``minutes`` (or ``max_steps``) and score it on ``val``."""
    spec = VARIANTS[name]
    with tempfile.TemporaryDirectory(prefix=f"bench-ae-{name}-") as tmp:
        options = AutoencoderTrainOptions(
            out_dir=tmp,
            minutes=minutes,
            max_steps=max_steps,
            seed=seed,
            precision=precision,
            progress=False,
            recipe=spec.get("recipe", AutoencoderRecipe()),
            config=spec.get("config", {}),
        )
        with CpuWallClock() as clock:
            ae, result, plan = train_autoencoder(
                train, options, evaluator=evaluator if spec.get("evaluator") else None
            )
    if result.interrupted:  # a cut-short run is no measurement: write nothing
        raise SystemExit(f"{name}: training interrupted at step {result.step}; nothing written")
    scores = reconstruction_scores(ae, val, evaluator)
    drop = scores["evaluator_accuracy_drop"]
    std_error = abs(scores["latent_std_scaled"] - 1.0)
    return {
        "variant": name,
        "minutes": minutes,
        "max_steps_given": max_steps,
        "network": ae.config.to_dict(),
        "recipe": options.recipe.to_dict(),
        "parameters": sum(p.numel() for p in ae.parameters()),
        "steps": result.step,
        "stopped": result.stopped,
        "train_s": result.wall_s,
        "total_s": plan.get("total_s"),
        "images_per_s": result.items_per_s,
        "planned_steps": plan.get("max_steps"),
        "replanned_steps": plan.get("replanned_steps"),
        "seconds_per_step_probe": plan.get("seconds_per_step"),
        "scaling": plan.get("scaling"),
        "final_rec_loss": sum(result.losses[-25:]) / max(1, len(result.losses[-25:])),
        "scores": scores,
        "targets": {
            "psnr_db": {
                "value": scores["psnr_db"],
                "target": ">= 24",
                "met": scores["psnr_db"] >= TARGETS["psnr_db"],
            },
            "evaluator_accuracy_drop": {
                "value": drop,
                "target": "<= 0.01",
                "met": drop <= TARGETS["evaluator_accuracy_drop"],
            },
            "latent_std_scaled": {
                "value": scores["latent_std_scaled"],
                "target": "1 +- 0.1",
                "met": std_error <= TARGETS["latent_std_error"],
            },
        },  # fmt: skip
        "cpu_s": clock.cpu_s,
        "wall_s": clock.wall_s,
        "cpu_per_wall": clock.ratio,
        "machine": machine_record(
            plan.get("precision", precision),
            cpu_wall=clock.ratio,
            threads_used=plan.get("threads"),
        ),
        "_ae": ae,
    }


def step_seconds(names: list[str], train, precision: str, evaluator, rounds: int = 5) -> dict:
    """Median seconds of one training step (batch 64) of each variant, timed interleaved."""
    from synesthesia.nets.autoencoder import AutoencoderKL
    from synesthesia.pipelines.autoencoder import autoencoder_loss_fn, default_autoencoder_config
    from synesthesia.training.precision import resolve_precision
    from synesthesia.training.timing import time_calls, training_step

    mode = resolve_precision(precision, "cpu")
    batch = (train.images[:64], train.labels[:64])
    steps = {}
    for name in names:
        spec = VARIANTS[name]
        torch.manual_seed(0)
        ae = AutoencoderKL(default_autoencoder_config(train.images, **spec.get("config", {})))
        loss_fn = autoencoder_loss_fn(spec.get("recipe", AutoencoderRecipe()), evaluator)
        steps[name] = training_step(ae, loss_fn, batch, mode)
        time_calls(steps[name], steps=3)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            times[name] += time_calls(steps[name], steps=3)
    medians = {name: statistics.median(t) for name, t in times.items()}
    return {"precision": mode, "threads": torch.get_num_threads(), "median_s": medians,
            "times_s": times}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--data", default="mnist5k")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--variants", nargs="*", default=[], choices=sorted(VARIANTS))
    parser.add_argument("--variant-minutes", type=float, default=5.0)
    parser.add_argument("--variant-steps", type=int, default=None)
    parser.add_argument("--skip-default", action="store_true")
    parser.add_argument("--out-dir", type=Path, default=Path("benchmarks/out"))
    parser.add_argument("--tag", default="", help="suffix of the JSON names")
    args = parser.parse_args()

    args.out_dir.mkdir(parents=True, exist_ok=True)
    train, val = load_image_splits(args.data)
    evaluator, ev_config = get_evaluator(train, val, progress=False)
    common = {
        "data": args.data,
        "train_items": len(train),
        "val_items": len(val),
        "evaluator_val_accuracy": ev_config.get("val_accuracy"),
        "command": " ".join(["python", *sys.argv]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    suffix = f"_{args.tag}" if args.tag else ""
    if not args.skip_default:
        record = run_one("default", args.minutes, train, val, evaluator, args.seed, args.precision)
        ae = record.pop("_ae")
        grid = args.out_dir / f"autoencoder_grid{suffix}.png"
        comparison_grid(ae, val.images[class_spread(val.labels, 32)], grid, nrow=16, scale=2)
        record.update(common, grid=str(grid))
        path = args.out_dir / f"autoencoder{suffix}.json"
        path.write_text(json.dumps(record, indent=2) + "\n")
        print(json.dumps({k: v for k, v in record.items() if k != "machine"}, indent=2))
    if args.variants:
        with CpuWallClock() as clock:
            timing = step_seconds(args.variants, train, args.precision, evaluator)
        timing.update(cpu_per_wall=clock.ratio, machine=machine_record(timing["precision"]))
        print("step seconds", json.dumps(timing["median_s"]))
        minutes = None if args.variant_steps else args.variant_minutes
        rows = []
        for name in args.variants:
            row = run_one(name, minutes, train, val, evaluator, args.seed, args.precision,
                          max_steps=args.variant_steps)  # fmt: skip
            row.pop("_ae")
            rows.append(row)
            print(name, json.dumps(row["targets"]), f"cpu/wall {row['cpu_per_wall']:.2f}")
        path = args.out_dir / f"autoencoder_variants{suffix}.json"
        path.write_text(json.dumps({**common, "step_timing": timing, "variants": rows}, indent=2)
                        + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
