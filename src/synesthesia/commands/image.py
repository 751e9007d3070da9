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
    nonnegative_float,
    positive_float,
    positive_int,
    register_eval,
    train_subparsers,
)

KIND = "image"  # the "kind" entry of an image checkpoint's config.json
METHODS = ("ddpm", "ddim", "dpmpp_2m", "euler", "heun")
PRESETS = ("tiny", "small", "base")


def _add_sampling_options(p: argparse.ArgumentParser, steps: int = 20) -> None:
    """Options shared by sample/eval/demo (skipped when another kind already added them)."""
    have = p._option_string_actions
    if "--guidance" not in have:
        p.add_argument(
            "--guidance",
            type=nonnegative_float,
            default=2.0,
            help="classifier-free guidance scale w (1 = no guidance; default 2)",
        )
    if "--method" not in have:
        p.add_argument("--method", choices=METHODS, default="dpmpp_2m", help="sampler")
    if "--steps" not in have:
        p.add_argument("--steps", type=positive_int, default=steps, help="sampler steps")
    if "--seed" not in have:
        p.add_argument("--seed", type=int, default=0, help="random seed")
    if "--no-progress" not in have:
        p.add_argument("--no-progress", action="store_true", help="no progress bars")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train image``, ``sample``, ``eval image`` and ``demo``."""
    train = train_subparsers(subparsers).add_parser(
        "image",
        help="train a class-conditional image diffusion model",
        description="Train a class-conditional U-Net diffusion model (with condition dropout "
        "for classifier-free guidance) within a time budget; the checkpoint lands in "
        "OUT/checkpoint.",
    )
    train.add_argument(
        "--data",
        default="mnist5k",
        help="mnist5k (built in, default), digits8x8, or a folder of MNIST/Fashion-MNIST IDX files",
    )
    train.add_argument(
        "--minutes", type=positive_float, default=10.0, help="time budget (default 10)"
    )
    train.add_argument("--preset", choices=PRESETS, default="small", help="U-Net size")
    train.add_argument("--out", default="runs/image", help="run folder (default runs/image)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument("--seed", type=int, default=0, help="random seed")
    train.add_argument("--batch-size", type=positive_int, default=64)
    train.add_argument(
        "--max-steps",
        type=positive_int,
        default=None,
        help="schedule length (default: fit --minutes)",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    sample = subparsers.add_parser(
        "sample",
        help="sample images from an image checkpoint",
        description="Sample class-conditional images. OUT ending in .png is a grid; .npz holds "
        "images (float32 N x C x H x W in [-1, 1]) and labels (int64).",
    )
    sample.add_argument("checkpoint", help="checkpoint folder (config.json + model.safetensors)")
    sample.add_argument(
        "--class",
        dest="classes",
        type=int,
        action="append",
        help="class to draw (repeatable; default: all classes in turn)",
    )
    sample.add_argument("--n", type=positive_int, default=64, help="number of images")
    sample.add_argument("--out", required=True, help="output file: .png grid or .npz")
    _add_sampling_options(sample)
    sample.set_defaults(func=cmd_sample)

    register_eval(subparsers, KIND, cmd_eval, _eval_arguments)

    demo = subparsers.add_parser(
        "demo",
        help="the main job: train on the built-in digits, sample a grid, score it",
        description="Train a class-conditional diffusion model on the built-in MNIST digits "
        "for at most --minutes, then write a 10 x 10 grid (one row per class), metrics JSON "
        "and the checkpoint under --out.",
    )
    demo.add_argument(
        "--minutes", type=positive_float, default=10.0, help="training time (default 10)"
    )
    demo.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    demo.add_argument("--preset", choices=PRESETS, default="small", help="U-Net size")
    demo.add_argument(
        "--n-per-class", type=positive_int, default=100, help="samples per class for metrics"
    )
    _add_sampling_options(demo)
    demo.set_defaults(func=cmd_demo)


def _eval_arguments(p: argparse.ArgumentParser) -> None:
    _add_sampling_options(p)
    if "--n-per-class" not in p._option_string_actions:
        p.add_argument(
            "--n-per-class", type=positive_int, default=100, help="samples per class (image)"
        )
    if "--json" not in p._option_string_actions:
        p.add_argument("--json", default=None, help="where to write the scores (JSON)")


# ---------------------------------------------------------------------- helpers
def _load_pipeline(checkpoint: str | Path):
    from synesthesia.pipelines.image import ClassToImagePipeline

    folder = Path(checkpoint)
    if not folder.exists():
        raise CommandError(f"{folder}: no such checkpoint folder")
    return ClassToImagePipeline.from_pretrained(folder)


def _load_data(spec: str):
    from synesthesia.data.images import load_image_splits

    return load_image_splits(spec)


def _scores(pipe, args, val, evaluator, n_per_class: int) -> dict:
    from synesthesia.metrics import score_class_conditional

    def generate(labels, gen):
        return pipe(
            labels,
            guidance_scale=args.guidance,
            num_inference_steps=args.steps,
            method=args.method,
            generator=gen,
            progress=not args.no_progress,
        )

    scores = score_class_conditional(generate, evaluator, val, n_per_class, seed=args.seed)
    scores.update(guidance=args.guidance, steps=args.steps, method=args.method, seed=args.seed)
    return scores


def _print_table(scores: dict, evaluator_config: dict) -> None:
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
    from synesthesia.pipelines.image_train import ImageTrainOptions, train_class_to_image

    train, _ = _load_data(args.data)
    options = ImageTrainOptions(
        out_dir=args.out,
        preset=args.preset,
        minutes=args.minutes,
        max_steps=args.max_steps,
        batch_size=min(args.batch_size, len(train)),
        seed=args.seed,
        progress=not args.no_progress,
    )
    _, result, plan = train_class_to_image(train, options, resume=args.resume)
    print(
        f"trained {result.step} steps ({result.stopped}) in {result.wall_s:.0f} s at "
        f"{result.items_per_s:.0f} images/s; checkpoint: {Path(args.out) / 'checkpoint'}"
    )
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    """``synesthesia sample CHECKPOINT --out FILE``."""
    import numpy as np
    import torch

    out = Path(args.out)
    if out.suffix not in (".png", ".npz"):
        raise CommandError(f"--out must end in .png or .npz, got {out}")
    pipe = _load_pipeline(args.checkpoint)
    if args.classes:
        bad = [c for c in args.classes if not 0 <= c < pipe.num_classes]
        if bad:
            raise CommandError(f"--class {bad[0]}: classes run from 0 to {pipe.num_classes - 1}")
        pool = args.classes
    else:
        pool = list(range(pipe.num_classes))
    labels = torch.tensor([pool[i % len(pool)] for i in range(args.n)])
    gen = torch.Generator().manual_seed(args.seed)
    images = pipe(
        labels,
        guidance_scale=args.guidance,
        num_inference_steps=args.steps,
        method=args.method,
        generator=gen,
        progress=not args.no_progress,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".png":
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
    from synesthesia.io import atomic_write_json
    from synesthesia.metrics import get_evaluator

    pipe = _load_pipeline(checkpoint)
    data = pipe.config.get("data", "mnist5k")
    train, val = _load_data(data)
    evaluator, ev_config = get_evaluator(train, val, progress=not args.no_progress)
    scores = _scores(pipe, args, val, evaluator, args.n_per_class)
    scores.update(checkpoint=str(checkpoint), data=data)
    out = Path(args.json) if args.json else Path(checkpoint).parent / "eval.json"
    atomic_write_json(out, scores)
    print(f"{checkpoint} ({data}):")
    _print_table(scores, ev_config)
    print(f"scores written to {out}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """``synesthesia demo``: train, sample a 10 x 10 grid, score, write everything."""
    import torch

    from synesthesia.io import atomic_write_json
    from synesthesia.metrics import get_evaluator
    from synesthesia.pipelines.image import save_image_grid
    from synesthesia.pipelines.image_train import ImageTrainOptions, train_class_to_image

    out = Path(args.out)
    progress = not args.no_progress
    train, val = _load_data("mnist5k")
    start = time.perf_counter()
    evaluator, _ = get_evaluator(train, val, progress=progress)
    evaluator_s = time.perf_counter() - start
    print(f"training a class-conditional U-Net for at most {args.minutes:g} minutes ...")
    options = ImageTrainOptions(
        out_dir=str(out),
        preset=args.preset,
        minutes=args.minutes,
        seed=args.seed,
        progress=progress,
    )
    pipe, result, plan = train_class_to_image(train, options)

    gen = torch.Generator().manual_seed(args.seed)
    labels = torch.arange(pipe.num_classes).repeat_interleave(10)
    grid = pipe(
        labels,
        guidance_scale=args.guidance,
        num_inference_steps=args.steps,
        method=args.method,
        generator=gen,
    )
    grid_path = save_image_grid(grid, out / "grid.png", nrow=10, scale=3)
    scores = _scores(pipe, args, val, evaluator, args.n_per_class)
    scores.update(
        train_steps=result.step,
        train_stopped=result.stopped,
        train_s=result.wall_s,
        train_images_per_s=result.items_per_s,
        planned_steps=plan["max_steps"],
        probe_s=plan.get("probe_s"),
        evaluator_s=evaluator_s,
        preset=args.preset,
        batch_size=options.batch_size,
        parameters=sum(p.numel() for p in pipe.unet.parameters()),
    )
    metrics_path = atomic_write_json(out / "metrics.json", scores)
    print("results:")
    _print_table(scores, {})
    print(f"grid (one row per class): {grid_path}")
    print(f"metrics: {metrics_path}")
    print(
        f"checkpoint: {out / 'checkpoint'}  (try: synesthesia sample {out / 'checkpoint'} "
        "--class 7 --out seven.png)"
    )
    return 0
