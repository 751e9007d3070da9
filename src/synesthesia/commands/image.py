"""Image-diffusion commands: ``train image``, ``sample``, ``eval [image]`` and ``demo``.

Heavy modules (torch, the pipeline, the trainer) are imported inside the command functions so
that ``synesthesia --help`` stays fast.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

from synesthesia.commands import CommandError
from synesthesia.commands._shared import (
    RUN_DEFAULTS,
    CheckpointKind,
    add_precision_option,
    add_run_options,
    count_up_to,
    guidance_float,
    output_dir,
    output_file,
    positive_float,
    register_kind,
    report_interrupted,
    run_options,
    run_settings,
    seed_int,
    train_subparsers,
)

KIND = "image"  # the "kind" entry of an image checkpoint's config.json
METHODS = ("ddpm", "ddim", "dpmpp_2m", "euler", "heun")
PRESETS = ("tiny", "small", "base")
DEMO_MINUTES = 11.0
# Sizes beyond these cannot be held in memory on a laptop (28 x 28 float32 images: 1 million
# samples are 3.1 GB, before the sampler's working copies).
MAX_SAMPLES = 1_000_000
MAX_SAMPLER_STEPS = 10_000
MAX_BATCH = 65_536
MAX_TRAIN_STEPS = 100_000_000


def _add_sampling_options(p: argparse.ArgumentParser, steps: int = 20) -> None:
    """Options of every image sampling command (sample, eval image, demo)."""
    p.add_argument(
        "--guidance",
        type=guidance_float,
        default=2.0,
        help="classifier-free guidance scale w in [0, 100] (1 = no guidance; default 2)",
    )
    p.add_argument("--method", choices=METHODS, default="dpmpp_2m", help="sampler")
    p.add_argument(
        "--steps", type=count_up_to(MAX_SAMPLER_STEPS), default=steps, help="sampler steps"
    )
    p.add_argument("--seed", type=seed_int, default=0, help="random seed")
    add_precision_option(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _sample_options(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Sample class-conditional images. OUT ending in .png is a grid; .npz holds images "
        "(float32 N x C x H x W in [-1, 1]) and labels (int64)."
    )
    p.add_argument(
        "--class",
        dest="classes",
        type=int,
        action="append",
        help="class to draw (repeatable; default: all classes in turn)",
    )
    p.add_argument("--n", type=count_up_to(MAX_SAMPLES), default=64, help="number of images")
    p.add_argument(
        "--out",
        required=True,
        type=output_file(".png", ".npz"),
        help="output file: .png grid or .npz",
    )
    _add_sampling_options(p)


def _eval_options(p: argparse.ArgumentParser) -> None:
    _add_sampling_options(p)
    p.add_argument(
        "--n-per-class",
        type=count_up_to(MAX_SAMPLES // 10),
        default=100,
        help="samples per class (default 100)",
    )
    p.add_argument(
        "--json",
        type=output_file(".json"),
        default=None,
        help="where to write the scores (default: next to the checkpoint)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train image``, ``sample`` and ``eval`` for image checkpoints, and ``demo``."""
    train = train_subparsers(subparsers).add_parser(
        "image",
        help="train a class-conditional image diffusion model",
        description="Train a class-conditional U-Net diffusion model (with condition dropout "
        "for classifier-free guidance) within a time budget; the checkpoint lands in "
        "OUT/checkpoint.",
    )
    add_run_options(
        train, name="image", minutes=10.0, max_batch=MAX_BATCH, max_steps=MAX_TRAIN_STEPS
    )
    train.add_argument("--preset", choices=PRESETS, default=None, help="U-Net size (default small)")
    train.set_defaults(func=cmd_train)

    register_kind(
        subparsers,
        CheckpointKind(
            KIND,
            evaluate=cmd_eval,
            eval_options=_eval_options,
            sample=cmd_sample,
            sample_options=_sample_options,
        ),
    )

    demo = subparsers.add_parser(
        "demo",
        help="the main job: train on the built-in digits, sample a grid, score it",
        description="Train a class-conditional diffusion model on the built-in MNIST digits, "
        "then write a 10 x 10 grid (one row per class), metrics JSON and the checkpoint under "
        "--out. --minutes bounds the whole job (evaluator, training, sampling and scoring).",
    )
    demo.add_argument(
        "--minutes",
        type=positive_float,
        default=DEMO_MINUTES,
        help=f"wall-time budget of the whole job (default {DEMO_MINUTES:g})",
    )
    demo.add_argument(
        "--out",
        type=output_dir,
        default=Path("runs/demo"),
        help="output folder (default runs/demo)",
    )
    demo.add_argument("--preset", choices=PRESETS, default="small", help="U-Net size")
    demo.add_argument(
        "--n-per-class",
        type=count_up_to(MAX_SAMPLES // 10),
        default=100,
        help="samples per class for metrics",
    )
    _add_sampling_options(demo)
    demo.set_defaults(func=cmd_demo)


# ---------------------------------------------------------------------- helpers
def _load_pipeline(checkpoint: str | Path, precision: str = "auto"):
    from synesthesia.pipelines.image import ClassToImagePipeline

    return ClassToImagePipeline.from_pretrained(Path(checkpoint), precision=precision)


def load_data(spec: str):
    from synesthesia.data.images import load_image_splits

    return load_image_splits(spec)


def _generate(pipe, args, labels, gen, progress: bool):
    return pipe(
        labels,
        guidance_scale=args.guidance,
        num_inference_steps=args.steps,
        method=args.method,
        generator=gen,
        progress=progress,
    )


def _scores(pipe, args, val, evaluator, n_per_class: int, keep: list | None = None) -> dict:
    """Scores of ``n_per_class`` samples per class; ``keep`` (a list) receives the images."""
    from synesthesia.metrics import score_class_conditional

    def generate(labels, gen):
        images = _generate(pipe, args, labels, gen, progress=not args.no_progress)
        if keep is not None:
            keep.append(images)
        return images

    scores = score_class_conditional(generate, evaluator, val, n_per_class, seed=args.seed)
    scores.update(
        guidance=args.guidance,
        steps=args.steps,
        method=args.method,
        seed=args.seed,
        precision=pipe.precision,
    )
    return scores


def _print_table(scores: dict) -> None:
    from synesthesia.metrics import TRUSTED_ACCURACY

    rows = [
        ("sample accuracy", f"{scores['sample_accuracy']:.4f}"),
        ("classifier-FID", f"{scores['classifier_fid']:.3f}"),
        ("evaluator accuracy", f"{scores['evaluator_accuracy']:.4f}"),
        ("samples", str(scores["num_samples"])),
        ("sampler", f"{scores['method']}, {scores['steps']} steps, guidance {scores['guidance']}"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    if scores["evaluator_accuracy"] < TRUSTED_ACCURACY:
        print(
            f"  warning: evaluator accuracy below {TRUSTED_ACCURACY:.0%}; "
            "its scores are not trusted"
        )


# ---------------------------------------------------------------------- commands
def cmd_train(args: argparse.Namespace) -> int:
    """``synesthesia train image``."""
    from synesthesia.pipelines.image_train import (
        ImageTrainOptions,
        resumable_settings,
        train_class_to_image,
    )

    given = run_settings(args, resumable_settings, {**RUN_DEFAULTS, "preset": "small"})
    data = given["data"]
    train, _ = load_data(data)
    common = run_options(args, given, len(train))
    precision = common.pop("precision")  # the image recipe's own name for it
    options = ImageTrainOptions(**common, preset=given["preset"], mixed_precision=precision)
    _, result, plan = train_class_to_image(train, options, resume=args.resume)
    if result.interrupted:
        return report_interrupted(result, "image", args.out)
    print(
        f"trained {result.step} steps ({result.stopped}) in {result.wall_s:.0f} s at "
        f"{result.items_per_s:.0f} images/s ({plan.get('precision', options.mixed_precision)}); "
        f"checkpoint: {Path(args.out) / 'checkpoint'}"
    )
    return 0


def cmd_sample(args: argparse.Namespace, checkpoint: Path) -> int:
    """``synesthesia sample CHECKPOINT --out FILE`` for an image checkpoint."""
    import numpy as np
    import torch

    out = Path(args.out)
    pipe = _load_pipeline(checkpoint, args.precision)
    if args.classes:
        bad = [c for c in args.classes if not 0 <= c < pipe.num_classes]
        if bad:
            raise CommandError(f"--class {bad[0]}: classes run from 0 to {pipe.num_classes - 1}")
        pool = args.classes
    else:
        pool = list(range(pipe.num_classes))
    labels = torch.tensor([pool[i % len(pool)] for i in range(args.n)])
    gen = torch.Generator().manual_seed(args.seed)
    images = _generate(pipe, args, labels, gen, progress=not args.no_progress)
    if not torch.isfinite(images).all():
        raise CommandError(
            f"the samples are not finite (guidance {args.guidance:g}, {args.method}); "
            "lower --guidance"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".png":
        from synesthesia.pipelines.image import save_image_grid

        nrow = len(pool) if len(pool) > 1 and args.n % len(pool) == 0 and len(pool) <= 16 else 0
        save_image_grid(images, out, nrow=nrow or math.ceil(math.sqrt(args.n)), scale=2)
    else:
        import io

        from synesthesia.io import atomic_write_bytes

        buf = io.BytesIO()
        np.savez(
            buf,
            images=images.cpu().numpy().astype(np.float32),
            labels=labels.numpy().astype(np.int64),
        )
        atomic_write_bytes(out, buf.getvalue())
    print(f"wrote {args.n} samples to {out}")
    return 0


def cmd_eval(args: argparse.Namespace, checkpoint: Path) -> int:
    """``synesthesia eval [image] CHECKPOINT``: a table on screen, JSON on disk."""
    from synesthesia.errors import check_output_file
    from synesthesia.io import atomic_write_json
    from synesthesia.metrics import get_evaluator

    pipe = _load_pipeline(checkpoint, args.precision)
    out = Path(args.json) if args.json else Path(checkpoint).parent / "eval.json"
    check_output_file(out, "--json" if args.json else "scores file")
    data = pipe.extra.get("data", "mnist5k")
    train, val = load_data(data)
    evaluator, _ = get_evaluator(train, val, progress=not args.no_progress)
    scores = _scores(pipe, args, val, evaluator, args.n_per_class)
    scores.update(checkpoint=str(checkpoint), data=data)
    atomic_write_json(out, scores)
    print(f"{checkpoint} ({data}):")
    _print_table(scores)
    print(f"scores written to {out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """``synesthesia demo``: train, sample a 10 x 10 grid, score, write everything.

    ``--minutes`` bounds the whole job: the evaluator (trained on first use), the throughput
    probe, training, the grid and the scored samples. Sampling is timed first (one network
    call at the sampling batch size) and its share is kept out of the training budget.
    """

    from synesthesia.io import atomic_write_json
    from synesthesia.metrics import get_evaluator
    from synesthesia.pipelines.image import save_image_grid
    from synesthesia.pipelines.image_train import (
        ImageTrainOptions,
        estimate_sampling_s,
        train_class_to_image,
    )
    from synesthesia.training import machine_record, resolve_precision
    from synesthesia.training.machine import CpuWallClock

    start = time.perf_counter()
    budget_s = args.minutes * 60.0
    out = Path(args.out)
    progress = not args.no_progress
    precision = resolve_precision(args.precision, "cpu")
    train, val = load_data("mnist5k")
    with CpuWallClock() as clock:
        evaluator, _ = get_evaluator(train, val, progress=progress)
        evaluator_s = time.perf_counter() - start
        n_samples = 10 * args.n_per_class
        sampling_s = estimate_sampling_s(
            args.preset, train, n_samples, args.method, args.steps, args.guidance, precision
        )
        train_s = budget_s - (time.perf_counter() - start) - 1.1 * sampling_s - 5.0
        if train_s < 20.0:
            raise CommandError(
                f"--minutes {args.minutes:g}: too short on this machine; sampling and scoring "
                f"{n_samples} images alone take about {sampling_s / 60:.1f} minutes (lower "
                "--n-per-class or --steps, or give more minutes)"
            )
        print(
            f"training a class-conditional U-Net for {train_s / 60:.1f} of the job's "
            f"{args.minutes:g} minutes ({precision}; sampling and scoring take about "
            f"{sampling_s / 60:.1f}) ..."
        )
        options = ImageTrainOptions(
            out_dir=str(out),
            preset=args.preset,
            minutes=train_s / 60.0,
            seed=args.seed,
            mixed_precision=precision,
            progress=progress,
        )
        pipe, result, plan = train_class_to_image(train, options)
        if result.interrupted:
            return report_interrupted(result, "image", out, " (then synesthesia eval)")
        sample_start = time.perf_counter()
        kept: list = []
        scores = _scores(pipe, args, val, evaluator, args.n_per_class, keep=kept)
        # the grid: the first 10 scored samples of each class (samples come in class order)
        per_class = kept[0].reshape(pipe.num_classes, args.n_per_class, *kept[0].shape[1:])
        grid = per_class[:, :10].reshape(-1, *kept[0].shape[1:])
        grid_path = save_image_grid(grid, out / "grid.png", nrow=min(10, args.n_per_class), scale=3)
        sample_s = time.perf_counter() - sample_start
    total_s = time.perf_counter() - start
    scores.update(
        train_steps=result.step,
        train_stopped=result.stopped,
        train_s=result.wall_s,
        train_images_per_s=result.items_per_s,
        planned_steps=plan["max_steps"],
        replanned_steps=plan.get("replanned_steps"),
        probe_s=plan.get("probe_s"),
        evaluator_s=evaluator_s,
        sampling_estimate_s=sampling_s,
        sampling_s=sample_s,
        total_s=total_s,
        budget_s=budget_s,
        preset=args.preset,
        batch_size=options.batch_size,
        parameters=sum(p.numel() for p in pipe.unet.parameters()),
        machine=machine_record(precision, cpu_wall=clock.ratio, threads_used=plan.get("threads")),
    )
    metrics_path = atomic_write_json(out / "metrics.json", scores)
    print(f"results ({total_s / 60:.1f} minutes in all):")
    _print_table(scores)
    print(f"grid (one row per class): {grid_path}")
    print(f"metrics: {metrics_path}")
    print(
        f"checkpoint: {out / 'checkpoint'}  (try: synesthesia sample {out / 'checkpoint'} "
        "--class 7 --out seven.png)"
    )
    return 0
