"""Text-to-image commands: ``train text2image``, ``generate``, ``eval`` for text2image kinds.

    synesthesia train text2image --minutes 15 --out runs/t2i
    synesthesia train text2image --latent runs/ae/checkpoint --minutes 15 --out runs/t2i-latent
    synesthesia generate runs/t2i/checkpoint "a thick, right-slanted seven" --negative thin \\
        --n 16 --out seven.png
    synesthesia eval runs/t2i/checkpoint --n-per-prompt 4
"""

from __future__ import annotations

import argparse
import math
import warnings
from pathlib import Path

from synesthesia.commands import CommandError
from synesthesia.commands._shared import (
    CheckpointKind,
    add_precision_option,
    add_run_options,
    count_up_to,
    guidance_float,
    output_file,
    register_kind,
    report_interrupted,
    run_options,
    run_settings,
    seed_int,
    train_subparsers,
)
from synesthesia.commands.image import (
    MAX_BATCH,
    MAX_SAMPLER_STEPS,
    MAX_SAMPLES,
    MAX_TRAIN_STEPS,
    METHODS,
    load_data,
)

KIND = "text2image"
TEXT_PRESETS = ("tiny", "small", "latent")


def _checkpoint_folder(text: str) -> Path:
    """A checkpoint folder that must exist (checked at parse time, named as given)."""
    path = Path(text)
    if not path.is_dir():
        what = "is a file, expected" if path.exists() else "no such"
        raise argparse.ArgumentTypeError(f"{text}: {what} checkpoint folder")
    return path


def _text_encoder_choice(text: str) -> str:
    if text == "joint":
        return text
    if not text.startswith("clip:"):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give 'joint' or 'clip:FOLDER' (a `synesthesia train clip` checkpoint)"
        )
    folder = Path(text[5:])
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(f"{folder}: no such CLIP checkpoint folder")
    return str(folder)


def sampling_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--guidance",
        type=guidance_float,
        default=None,
        help="classifier-free guidance scale in [0, 100] (default: the model's stored one)",
    )
    p.add_argument("--method", choices=METHODS, default="dpmpp_2m", help="sampler")
    p.add_argument("--steps", type=count_up_to(MAX_SAMPLER_STEPS), default=20, help="steps")
    p.add_argument("--seed", type=seed_int, default=0, help="random seed")
    add_precision_option(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _generate_options(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Generate images from a prompt. Words outside the model's vocabulary become [UNK] "
        "(with a warning); the empty prompt is the unconditional model."
    )
    p.add_argument("prompt", help='the prompt, e.g. "a thick, right-slanted seven"')
    p.add_argument("--negative", default=None, help="negative prompt (replaces the empty one)")
    p.add_argument("--n", type=count_up_to(MAX_SAMPLES), default=16, help="number of images")
    p.add_argument(
        "--out", required=True, type=output_file(".png", ".npz"), help="a .png grid or .npz"
    )
    sampling_options(p)


def _eval_options(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Score a text-to-image checkpoint: class accuracy, attribute agreement and "
        "classifier-FID of prompted samples, per prompt group (plain, attribute, held-out)."
    )
    p.add_argument(
        "--n-per-prompt",
        type=count_up_to(10_000),
        default=4,
        help="samples per prompt (default 4)",
    )
    p.add_argument(
        "--clip",
        type=_checkpoint_folder,
        default=None,
        help="a `synesthesia train clip` checkpoint: also score prompt alignment "
        "(cosine, R-precision among 100 captions)",
    )
    p.add_argument("--json", type=output_file(".json"), default=None, help="scores file")
    sampling_options(p)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train text2image`` and the text2image kind's ``generate`` and ``eval``."""
    train = train_subparsers(subparsers).add_parser(
        "text2image",
        help="train a text-to-image diffusion model (pixel or latent)",
        description="Train a text-conditioned U-Net (cross-attention over the prompt's "
        "tokens, caption dropout for classifier-free guidance) on captioned digits within a "
        "time budget; with --latent, in the latent space of a trained autoencoder. The "
        "checkpoint lands in OUT/checkpoint.",
    )
    add_run_options(
        train, name="text2image", minutes=15.0, max_batch=MAX_BATCH, max_steps=MAX_TRAIN_STEPS
    )
    train.add_argument(
        "--latent",
        type=_checkpoint_folder,
        default=None,
        metavar="AUTOENCODER",
        help="an autoencoder checkpoint (synesthesia train autoencoder): latent diffusion",
    )
    train.add_argument(
        "--text-encoder",
        type=_text_encoder_choice,
        default="joint",
        help="joint (default: trained with the denoiser) or clip:FOLDER (a frozen CLIP text tower)",
    )
    train.add_argument("--preset", choices=TEXT_PRESETS, default=None, help="U-Net size")
    train.add_argument(
        "--guidance", type=guidance_float, default=3.0, help="default guidance stored"
    )
    train.set_defaults(func=cmd_train)

    register_kind(
        subparsers,
        CheckpointKind(
            KIND,
            evaluate=cmd_eval,
            eval_options=_eval_options,
            generate=cmd_generate,
            generate_options=_generate_options,
        ),
    )


def _load(checkpoint: Path, precision: str):
    from synesthesia.pipelines.text2image import TextToImagePipeline

    return TextToImagePipeline.from_pretrained(checkpoint, precision=precision)


def cmd_train(args: argparse.Namespace) -> int:
    """``synesthesia train text2image``."""
    from synesthesia.pipelines.text2image_train import (
        TextTrainOptions,
        resumable_settings,
        train_text_to_image,
    )

    given = run_settings(args, resumable_settings)
    train, _ = load_data(given["data"])
    options = TextTrainOptions(
        **run_options(args, given, len(train)),
        preset=args.preset,
        text_encoder=args.text_encoder,
        autoencoder=None if args.latent is None else str(args.latent),
        guidance_scale=args.guidance,
    )
    _, result, plan = train_text_to_image(train, options, resume=args.resume)
    if result.interrupted:
        return report_interrupted(result, KIND, args.out)
    print(
        f"trained {result.step} steps ({result.stopped}) in {result.wall_s:.0f} s at "
        f"{result.items_per_s:.0f} images/s ({plan.get('precision', args.precision)}); "
        f"{plan['held_out_items']} held-out training digits left out; "
        f"checkpoint: {Path(args.out) / 'checkpoint'}"
    )
    return 0


def cmd_generate(args: argparse.Namespace, checkpoint: Path) -> int:
    """``synesthesia generate CHECKPOINT PROMPT --out FILE``."""
    import sys

    import torch

    from synesthesia.pipelines.text2image import UnknownWordWarning

    pipe = _load(checkpoint, args.precision)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnknownWordWarning)
        images = pipe(
            args.prompt,
            negative_prompt=args.negative,
            guidance_scale=args.guidance,
            num_inference_steps=args.steps,
            method=args.method,
            generator=torch.Generator().manual_seed(args.seed),
            num_images_per_prompt=args.n,
            output_type="pt",
            progress=not args.no_progress,
        )
    for w in caught:
        print(f"synesthesia: warning: {w.message}", file=sys.stderr)
    if not torch.isfinite(images).all():
        raise CommandError("the samples are not finite; lower --guidance")
    out = Path(args.out)
    if out.suffix.lower() == ".png":
        from synesthesia.pipelines.image import save_image_grid

        save_image_grid(images, out, nrow=math.ceil(math.sqrt(args.n)), scale=2)
    else:
        import io

        import numpy as np

        from synesthesia.io import atomic_write_bytes

        buf = io.BytesIO()
        np.savez(buf, images=images.numpy().astype(np.float32), prompt=np.array(args.prompt))
        atomic_write_bytes(out, buf.getvalue())
    print(f"wrote {args.n} images of {args.prompt!r} to {out}")
    return 0


def cmd_eval(args: argparse.Namespace, checkpoint: Path) -> int:
    """``synesthesia eval CHECKPOINT`` for a text2image checkpoint."""
    from synesthesia.data.prompts import all_prompts
    from synesthesia.errors import check_output_file
    from synesthesia.io import atomic_write_json
    from synesthesia.metrics import get_evaluator, score_prompts

    pipe = _load(checkpoint, args.precision)
    out = Path(args.json) if args.json else Path(checkpoint).parent / "eval.json"
    check_output_file(out, "--json" if args.json else "scores file")
    clip = None
    if args.clip is not None:
        from synesthesia.multimodal.model import JointEmbeddingModel

        clip = JointEmbeddingModel.from_pretrained(args.clip)
    data = pipe.extra.get("data", "mnist5k")
    train, val = load_data(data)
    evaluator, _ = get_evaluator(train, val, progress=not args.no_progress)

    def generate(texts, gen):
        return pipe(
            texts,
            guidance_scale=args.guidance,
            num_inference_steps=args.steps,
            method=args.method,
            generator=gen,
            output_type="pt",
        )

    scores = score_prompts(
        generate,
        all_prompts(),
        evaluator,
        val,
        n_per_prompt=args.n_per_prompt,
        seed=args.seed,
        clip_model=clip,
        progress=not args.no_progress,
    )
    guidance = pipe.guidance_scale if args.guidance is None else args.guidance
    scores.update(
        checkpoint=str(checkpoint),
        data=data,
        guidance=guidance,
        steps=args.steps,
        method=args.method,
        precision=pipe.precision,
        latent=pipe.latent,
    )
    atomic_write_json(out, scores)
    print(f"{checkpoint} ({'latent' if pipe.latent else 'pixel'}, guidance {guidance:g}):")
    for group, s in scores["groups"].items():
        line = f"  {group:<9} accuracy {s['class_accuracy']:.3f}  FID {s['classifier_fid']:.1f}"
        if "attributes" in s:
            line += f"  attribute agreement {s['attributes']['binary']:.3f}"
        if "alignment" in s:
            line += f"  R-precision {s['alignment']['r_precision']:.3f}"
        print(line)
    print(f"scores written to {out}")
    return 0
