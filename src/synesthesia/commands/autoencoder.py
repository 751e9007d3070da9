"""Autoencoder commands: ``train autoencoder`` and ``eval`` for checkpoints of kind "autoencoder".

Heavy modules (torch, the trainer) are imported inside the command functions so that
``synesthesia --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from synesthesia.commands import CommandError
from synesthesia.commands._shared import (
    CheckpointKind,
    add_run_options,
    count_up_to,
    output_file,
    register_kind,
    report_interrupted,
    run_options,
    run_settings,
    seed_int,
    train_subparsers,
)

KIND = "autoencoder"  # the "kind" entry of an autoencoder checkpoint's config.json
DEFAULT_MINUTES = 5.0
MAX_BATCH = 65_536
MAX_TRAIN_STEPS = 100_000_000
MAX_GRID = 1_024


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train autoencoder`` and ``eval`` for autoencoder checkpoints."""
    train = train_subparsers(subparsers).add_parser(
        "autoencoder",
        help="train the KL autoencoder of latent diffusion",
        description="Train a KL autoencoder (digits to a latent of at most a quarter of the "
        "pixels, e.g. 28 x 28 x 1 -> 7 x 7 x 4) within a time budget, then measure its latent "
        "scaling factor (1 / std of the training latents). The checkpoint lands in "
        "OUT/checkpoint.",
    )
    add_run_options(
        train,
        name="autoencoder",
        minutes=DEFAULT_MINUTES,
        max_batch=MAX_BATCH,
        max_steps=MAX_TRAIN_STEPS,
    )
    train.set_defaults(func=cmd_train)

    register_kind(subparsers, CheckpointKind(KIND, evaluate=cmd_eval, eval_options=_eval_options))


def _eval_options(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Score an autoencoder on the held-out split of its data: PSNR of the reconstructions, "
        "the digit evaluator's accuracy on originals and on reconstructions, and the std of "
        "the scaled latents (1 when the scaling factor fits)."
    )
    p.add_argument(
        "--json",
        type=output_file(".json"),
        default=None,
        help="where to write the scores (default: eval.json next to the checkpoint)",
    )
    p.add_argument(
        "--grid",
        type=output_file(".png"),
        default=None,
        help="a PNG of held-out digits (the classes in turn), each row of originals above its "
        "reconstructions",
    )
    p.add_argument(
        "--grid-n",
        type=count_up_to(MAX_GRID),
        default=32,
        help="digits in the grid (default 32)",
    )
    p.add_argument("--seed", type=seed_int, default=0, help="seed of the latent samples")
    p.add_argument("--no-progress", action="store_true", help="no progress output")


def cmd_train(args: argparse.Namespace) -> int:
    """``synesthesia train autoencoder``."""
    from synesthesia.data.images import load_image_splits
    from synesthesia.pipelines.autoencoder import (
        AutoencoderTrainOptions,
        resumable_settings,
        train_autoencoder,
    )

    given = run_settings(args, resumable_settings)
    train, _ = load_image_splits(given["data"])
    options = AutoencoderTrainOptions(**run_options(args, given, len(train)))
    ae, result, plan = train_autoencoder(train, options, resume=args.resume)
    if result.interrupted:
        return report_interrupted(result, KIND, args.out)
    print(
        f"trained {result.step} steps ({result.stopped}) in {result.wall_s:.0f} s at "
        f"{result.items_per_s:.0f} images/s ({plan.get('precision', options.precision)}); "
        f"latent {'x'.join(map(str, ae.config.latent_shape))}, scaling factor "
        f"{ae.config.scaling_factor:.4g}; checkpoint: {Path(args.out) / 'checkpoint'}"
    )
    return 0


def cmd_eval(args: argparse.Namespace, checkpoint: Path) -> int:
    """``synesthesia eval [autoencoder] CHECKPOINT``: a table on screen, JSON on disk."""
    from synesthesia.data.images import load_image_splits
    from synesthesia.errors import check_output_file
    from synesthesia.io import atomic_write_json
    from synesthesia.metrics import TRUSTED_ACCURACY, get_evaluator
    from synesthesia.pipelines.autoencoder import (
        class_spread,
        comparison_grid,
        read_autoencoder,
        reconstruction_scores,
    )

    ae, config = read_autoencoder(checkpoint)
    out = Path(args.json) if args.json else Path(checkpoint).parent / "eval.json"
    check_output_file(out, "--json" if args.json else "scores file")
    data = config.get("data") or "mnist5k"
    train, val = load_image_splits(data)
    shape = (ae.config.in_channels, ae.config.image_size, ae.config.image_size)
    if tuple(val.images.shape[1:]) != shape:
        raise CommandError(
            f"{checkpoint}: the autoencoder takes {shape} images, its data {data!r} has "
            f"{tuple(val.images.shape[1:])}"
        )
    evaluator, _ = get_evaluator(train, val, progress=not args.no_progress)
    scores = reconstruction_scores(ae, val, evaluator, seed=args.seed)
    scores.update(checkpoint=str(checkpoint), data=data, scaling=config.get("scaling"))
    if args.grid:
        shown = val.images[class_spread(val.labels, args.grid_n)]
        scores["grid"] = str(comparison_grid(ae, shown, args.grid, nrow=min(16, args.grid_n)))
    atomic_write_json(out, scores)
    rows = [
        ("PSNR (mean per image)", f"{scores['psnr_db']:.2f} dB"),
        ("PSNR (pooled MSE)", f"{scores['psnr_pooled_db']:.2f} dB"),
        ("evaluator acc. originals", f"{scores['evaluator_accuracy_original']:.4f}"),
        ("evaluator acc. reconstr.", f"{scores['evaluator_accuracy_reconstruction']:.4f}"),
        ("latent std after scaling", f"{scores['latent_std_scaled']:.4f}"),
        ("scaling factor", f"{scores['scaling_factor']:.5g}"),
        ("latent", "x".join(map(str, scores["latent_shape"]))),
        ("held-out images", str(scores["num_images"])),
    ]
    print(f"{checkpoint} ({data}):")
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    if config.get("scaling") is None:
        print("  warning: the scaling factor was never measured for these weights (1.0 kept)")
    if scores["evaluator_accuracy_original"] < TRUSTED_ACCURACY:
        print(f"  warning: evaluator accuracy below {TRUSTED_ACCURACY:.0%}; not trusted")
    if args.grid:
        print(f"grid (originals above reconstructions): {scores['grid']}")
    print(f"scores written to {out}")
    return 0
