"""Video commands: ``train video``, ``generate`` and ``eval`` for text2video checkpoints.

synesthesia train video --minutes 20 --out runs/video
synesthesia generate runs/video/checkpoint "a 3 moving left" --out three.gif
synesthesia generate runs/video/checkpoint "a seven moving up fast" --n 4 --out strip.png
synesthesia eval runs/video/checkpoint --n-per-prompt 1
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from synesthesia.commands import CommandError
from synesthesia.commands._shared import (
    CheckpointKind,
    add_run_options,
    count_up_to,
    guidance_float,
    nonnegative_float,
    output_file,
    positive_float,
    register_kind,
    report_interrupted,
    run_options,
    run_settings,
    train_subparsers,
)
from synesthesia.commands.image import MAX_BATCH, MAX_SAMPLES, MAX_TRAIN_STEPS, load_data
from synesthesia.commands.text2image import sampling_options

KIND = "text2video"
PRESETS = ("tiny", "small")
#: Canvas sides the command accepts (a digit is 28 pixels; beyond 128 a video cannot fit).
MAX_CANVAS = 128
MAX_FRAMES = 64
#: What ``train video`` keeps on --resume unless told otherwise (videos per batch: 16); a
#: value given that differs from the run's is refused, naming both.
RUN_DEFAULTS = {
    "data": "mnist5k",
    "batch_size": 16,
    "seed": 0,
    "consistency_weight": 0.5,
    "canvas": 32,
    "frames": 8,
    "image_fraction": 0.0,
    "frame_noise_correlation": 0.0,
    "preset": "small",
    "layout": "factorised",
}


def _fraction(text: str) -> float:
    value = nonnegative_float(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train video`` and the text2video kind's ``generate`` and ``eval``."""
    train = train_subparsers(subparsers).add_parser(
        "video",
        help="train a text-to-video diffusion model on moving digits",
        description="Train a caption-conditioned space-time U-Net (the image U-Net per frame "
        "plus zero-initialised temporal attention and convolutions, Ho et al. 2022) on "
        "moving digits within a time budget. The checkpoint lands in OUT/checkpoint.",
    )
    add_run_options(
        train,
        name="video",
        minutes=20.0,
        max_batch=MAX_BATCH,
        max_steps=MAX_TRAIN_STEPS,
        what="digits that move",
        batch_size=RUN_DEFAULTS["batch_size"],
    )
    train.add_argument(
        "--preset",
        choices=PRESETS,
        default=None,
        help="U-Net size (default small; with --init-from, the checkpoint's)",
    )
    train.add_argument(
        "--init-from",
        type=Path,
        default=None,
        metavar="CHECKPOINT",
        help="start from a trained image model: the spatial U-Net and text encoder of a "
        "text2image (pixel) or text2video checkpoint, zero-initialised temporal layers on top "
        "(step 0 is the image model on every frame)",
    )
    train.add_argument(
        "--loaded-lr-scale",
        type=positive_float,
        default=None,
        metavar="FACTOR",
        help="with --init-from: the loaded U-Net's and text encoder's learning rate as a "
        "factor of the new temporal layers' (default 1)",
    )
    train.add_argument(
        "--loaded-text-lr-scale",
        type=positive_float,
        default=None,
        metavar="FACTOR",
        help="with --init-from: the loaded text encoder's factor alone (default: "
        "--loaded-lr-scale's); it has the motion words to learn",
    )
    train.add_argument(
        "--layout",
        choices=("factorised", "conv3d", "per-frame"),
        default=None,
        help="factorised space-time U-Net (default), conv3d (the chapter's layout, equal "
        "parameter count) or per-frame (no temporal layers)",
    )
    train.add_argument(
        "--canvas", type=count_up_to(MAX_CANVAS), default=None, help="canvas side (default 32)"
    )
    train.add_argument(
        "--frames", type=count_up_to(MAX_FRAMES), default=None, help="frames (default 8)"
    )
    train.add_argument(
        "--consistency-weight",
        type=nonnegative_float,
        default=None,
        help="weight of the temporal consistency loss on the clean-video estimate (default "
        "0.5; 0: off)",
    )
    train.add_argument(
        "--image-fraction",
        type=_fraction,
        default=None,
        help="share of items that are independent images (joint image-video training; default 0)",
    )
    train.add_argument(
        "--frame-noise-correlation",
        type=_fraction,
        default=None,
        metavar="RHO",
        help="correlation of the noise of a video's frames (Ge et al. 2023's mixed noise; "
        "default 0: white noise)",
    )
    train.add_argument(
        "--guidance", type=guidance_float, default=3.0, help="the guidance a generate uses"
    )
    train.set_defaults(func=cmd_train)
    verbs = {"generate": cmd_generate, "generate_options": _generate_options}
    verbs.update(evaluate=cmd_eval, eval_options=_eval_options)
    register_kind(subparsers, CheckpointKind(KIND, **verbs))


def _generate_options(p: argparse.ArgumentParser) -> None:
    p.description = (
        'Generate moving-digit videos from a prompt ("a 3 moving left"): a .gif (the '
        "videos side by side) or a .png strip (one row per video, frames left to right)."
    )
    p.add_argument("prompt", help='the prompt, e.g. "a seven moving up fast"')
    p.add_argument("--negative", default=None, help="negative prompt (replaces the empty one)")
    p.add_argument("--n", type=count_up_to(MAX_SAMPLES), default=1, help="number of videos")
    p.add_argument("--out", required=True, type=output_file(".gif", ".png"), help=".gif or .png")
    sampling_options(p)


def _eval_options(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Score a text-to-video checkpoint on every digit x direction x speed prompt: per-frame "
        "digit accuracy, identity consistency, motion and speed agreement, smoothness, and "
        "the Frechet distances of frames and frame differences with their real-vs-real floor."
    )
    p.add_argument("--n-per-prompt", type=count_up_to(10_000), default=1, help="videos per prompt")
    p.add_argument("--json", type=output_file(".json"), default=None, help="scores file")
    sampling_options(p)


def _load(checkpoint: Path, precision: str):
    from synesthesia.pipelines.text2video import TextToVideoPipeline

    return TextToVideoPipeline.from_pretrained(checkpoint, precision=precision)


def _read_saved(out: Path) -> dict:
    from synesthesia.pipelines.text2video_train import resumable_settings

    return resumable_settings(out)


def cmd_train(args: argparse.Namespace) -> int:
    """``synesthesia train video``."""
    from synesthesia.errors import InputError
    from synesthesia.pipelines.text2video_train import (
        VideoRecipe,
        VideoTrainOptions,
        train_text_to_video,
    )

    if args.init_from is not None and args.preset is not None:
        raise CommandError(
            "--preset: with --init-from the U-Net's layout is the checkpoint's; leave --preset out"
        )
    if args.init_from is not None and args.resume:
        raise CommandError(
            "--init-from: a resumed run continues from its own checkpoint; leave --init-from out"
        )
    for flag in ("loaded_lr_scale", "loaded_text_lr_scale"):
        if getattr(args, flag) is not None and args.init_from is None:
            raise CommandError(
                f"--{flag.replace('_', '-')}: it sets the learning rate of weights loaded by "
                "--init-from; give --init-from too (a resumed run keeps its own)"
            )
    given = run_settings(args, _read_saved, RUN_DEFAULTS)
    try:
        recipe = VideoRecipe(
            consistency_weight=given["consistency_weight"],
            image_fraction=given["image_fraction"],
            frame_noise_correlation=given["frame_noise_correlation"],
            canvas=given["canvas"],
            frames=given["frames"],
        )
    except InputError as exc:
        option = "--canvas" if "canvas" in str(exc) or "speed" in str(exc) else "--frames"
        raise CommandError(f"{option}: {exc}") from None
    train, _ = load_data(given["data"])
    layout = "factorised" if given["layout"] == "per-frame" else given["layout"]
    options = VideoTrainOptions(
        **run_options(args, given, len(train)),
        preset=given["preset"],
        recipe=recipe,
        layout=layout,
        temporal=() if given["layout"] == "per-frame" else ("attention", "conv"),
        guidance_scale=args.guidance,
        init_from=None if args.init_from is None else str(args.init_from),
        loaded_lr_scale=1.0 if args.loaded_lr_scale is None else args.loaded_lr_scale,
        loaded_text_lr_scale=args.loaded_text_lr_scale,
    )
    _, result, plan = train_text_to_video(train, options, resume=args.resume)
    if result.interrupted:
        return report_interrupted(result, "video", args.out)
    print(
        f"trained {result.step} steps ({result.stopped}) in {result.wall_s:.0f} s at "
        f"{result.items_per_s:.1f} videos/s ({plan.get('precision', args.precision)}); "
        f"checkpoint: {Path(args.out) / 'checkpoint'}"
    )
    return 0


def _sample(pipe, args, prompts, generator, n: int = 1):
    import torch

    from synesthesia.pipelines.text2image import UnknownWordWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnknownWordWarning)
        videos = pipe(
            prompts,
            negative_prompt=getattr(args, "negative", None),
            guidance_scale=args.guidance,
            num_inference_steps=args.steps,
            method=args.method,
            generator=generator,
            num_images_per_prompt=n,
            output_type="pt",
            progress=not args.no_progress,
        )
    for w in caught:
        print(f"synesthesia: warning: {w.message}", file=sys.stderr)
    if not torch.isfinite(videos).all():
        raise CommandError("the samples are not finite; lower --guidance")
    return videos


def cmd_generate(args: argparse.Namespace, checkpoint: Path) -> int:
    """``synesthesia generate CHECKPOINT PROMPT --out FILE.gif|FILE.png``."""
    import torch

    from synesthesia.pipelines.text2video import save_frame_strip, save_videos_gif

    pipe = _load(checkpoint, args.precision)
    videos = _sample(pipe, args, args.prompt, torch.Generator().manual_seed(args.seed), args.n)
    out = Path(args.out)
    if out.suffix.lower() == ".gif":
        save_videos_gif(videos, out)
    else:
        save_frame_strip(videos, out)
    print(f"wrote {args.n} videos of {args.prompt!r} ({pipe.frames} frames) to {out}")
    return 0


def cmd_eval(args: argparse.Namespace, checkpoint: Path) -> int:
    """``synesthesia eval CHECKPOINT`` for a text2video checkpoint."""
    import torch

    from synesthesia.data.moving_digits import (
        MovingDigitsConfig,
        canonical_prompts,
        make_videos,
        parse_prompt,
    )
    from synesthesia.errors import check_output_file
    from synesthesia.io import atomic_write_json
    from synesthesia.metrics.evaluator import get_evaluator
    from synesthesia.metrics.video import frechet_floor, score_videos

    pipe = _load(checkpoint, args.precision)
    out = Path(args.json) if args.json else Path(checkpoint).parent / "eval.json"
    check_output_file(out, "--json" if args.json else "scores file")
    data = pipe.extra.get("data", "mnist5k")
    world = MovingDigitsConfig(**pipe.extra.get("world", {"canvas": pipe.video_config.image_size,
                                                          "frames": pipe.frames}))  # fmt: skip
    train, val = load_data(data)
    evaluator, _ = get_evaluator(train, val, progress=not args.no_progress)
    prompts = canonical_prompts(world)
    k = args.n_per_prompt
    videos = _sample(pipe, args, prompts, torch.Generator().manual_seed(args.seed), k)
    motions = [parse_prompt(p) for p in prompts for _ in range(k)]
    n = len(motions)
    real = make_videos(val, n, world, seed=args.seed + 1).videos
    scores = score_videos(evaluator, videos, motions, reference=real)
    floor = frechet_floor(evaluator, real, make_videos(val, n, world, seed=args.seed + 2).videos)
    scores.update(
        frame_fd_floor=floor["frame_fd"],
        difference_fd_floor=floor["difference_fd"],
        checkpoint=str(checkpoint),
        data=data,
        guidance=pipe.guidance_scale if args.guidance is None else args.guidance,
        steps=args.steps,
        method=args.method,
        precision=pipe.precision,
        prompts=len(prompts),
    )
    atomic_write_json(out, scores)
    print(
        f"{checkpoint}: frame accuracy {scores['frame_accuracy']:.3f}, identity consistency "
        f"{scores['identity_consistency']:.3f}, motion agreement {scores['motion_agreement']:.3f}"
        f", speed agreement {scores['speed_agreement']:.3f}, smoothness "
        f"{scores['smoothness']:.2f} px/frame^2, frame FD {scores['frame_fd']:.1f} (floor "
        f"{floor['frame_fd']:.1f}), difference FD {scores['difference_fd']:.1f} (floor "
        f"{floor['difference_fd']:.1f}); scores written to {out}"
    )
    return 0
