"""Text-to-audio commands: ``train audio``, and ``generate`` / ``eval`` for text2audio kinds.

synesthesia train audio --minutes 15 --out runs/audio --fsdd ../shared/datasets/fsdd
synesthesia generate runs/audio/checkpoint --audio "seven" --n 8 --out clips/
synesthesia eval runs/audio/checkpoint --fsdd ../shared/datasets/fsdd
"""

from __future__ import annotations

import argparse
from pathlib import Path

from synesthesia.commands import CommandError
from synesthesia.commands._shared import (
    CheckpointKind,
    add_run_options,
    count_up_to,
    guidance_float,
    output_dir,
    output_file,
    register_kind,
    report_interrupted,
    run_options,
    run_settings,
    train_subparsers,
)
from synesthesia.commands.image import MAX_BATCH, MAX_TRAIN_STEPS
from synesthesia.commands.text2image import sampling_options

KIND = "text2audio"
#: Largest number of clips one generate / eval call holds (1 s at 8 kHz: 32 kB each).
MAX_CLIPS = 100_000
MAX_ESPEAK = 100_000
#: What a resumption keeps unless told otherwise.
AUDIO_RUN_DEFAULTS = {"fsdd": None, "n_espeak": 2000, "batch_size": 64, "seed": 0}


def _fsdd_folder(text: str) -> str:
    """argparse type: an FSDD folder that exists (checked at parse time, named as given)."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a file, expected the FSDD recordings folder")
    if not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"FSDD folder {text} not found: download the Free Spoken Digit Dataset "
            "(https://github.com/Jakobovski/free-spoken-digit-dataset) and pass its "
            "recordings/ folder"
        )
    return str(path)


def _espeak_count(text: str) -> int:
    """argparse type: a number of synthetic clips, 0 (none) to MAX_ESPEAK."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value <= MAX_ESPEAK:
        raise argparse.ArgumentTypeError(f"expected 0..{MAX_ESPEAK:,}, got {value}")
    return value


def _sample_rate(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a rate in Hz, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive rate in Hz, got {value}")
    return value


def _generate_options(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Speak a digit: one 16-bit WAV file per clip in --out, named digit_index.wav "
        "(7_000.wav, 7_001.wav, ...)."
    )
    p.add_argument("--audio", required=True, help='the prompt: a digit, e.g. "seven" or "7"')
    p.add_argument("--negative", default=None, help="negative prompt (replaces the empty one)")
    p.add_argument("--n", type=count_up_to(MAX_CLIPS), default=8, help="number of clips")
    p.add_argument("--out", required=True, type=output_dir, help="folder for the WAV files")
    p.add_argument(
        "--sample-rate",
        type=_sample_rate,
        default=None,
        help="the rate you expect (Hz); an error if the model was trained at another",
    )
    sampling_options(p)


def _eval_options(p: argparse.ArgumentParser) -> None:
    p.description = (
        "Score a text-to-audio checkpoint by the SC09 protocol with a spoken-digit classifier "
        "trained on real FSDD speech: accuracy, Inception Score, modified IS, AM score and "
        "Frechet distance, beside the same numbers for real held-out clips."
    )
    p.add_argument(
        "--fsdd",
        type=_fsdd_folder,
        default=None,
        help="the FSDD recordings folder (default: the one the model was trained with)",
    )
    p.add_argument(
        "--n-per-digit", type=count_up_to(MAX_CLIPS // 10), default=25, help="clips per digit"
    )
    p.add_argument("--json", type=output_file(".json"), default=None, help="scores file")
    sampling_options(p)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train audio`` and the text2audio kind's ``generate`` and ``eval``."""
    train = train_subparsers(subparsers).add_parser(
        "audio",
        help="train a text-to-audio diffusion model (spoken digits)",
        description="Train a prompt-conditioned 1-D U-Net on spoken digits (the eSpeak NG "
        "voices of the digit world and, with --fsdd, the FSDD training speakers; held-out "
        "voices and speakers are left out) within a time budget. The checkpoint lands in "
        "OUT/checkpoint.",
    )
    add_run_options(
        train,
        name="audio",
        minutes=15.0,
        max_batch=MAX_BATCH,
        max_steps=MAX_TRAIN_STEPS,
        batch_size=AUDIO_RUN_DEFAULTS["batch_size"],
        data=False,
    )
    train.add_argument(
        "--fsdd",
        type=_fsdd_folder,
        default=None,
        help="the FSDD recordings folder: its training speakers join the synthetic voices",
    )
    train.add_argument(
        "--n-espeak",
        type=_espeak_count,
        default=None,
        help="synthetic eSpeak NG clips to build (default 2000; 0: FSDD only)",
    )
    train.add_argument("--domain", choices=("mel", "wave"), default="mel", help="audio domain")
    train.add_argument("--preset", choices=("tiny", "mel", "wave"), default=None, help="U-Net size")
    train.add_argument("--guidance", type=guidance_float, default=2.0, help="default guidance")
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
    from synesthesia.pipelines.text2audio import TextToAudioPipeline

    return TextToAudioPipeline.from_pretrained(checkpoint, precision=precision)


def cmd_train(args: argparse.Namespace) -> int:
    """``synesthesia train audio``."""
    from synesthesia.pipelines.text2audio_train import (
        AudioRecipe,
        AudioTrainOptions,
        resumable_settings,
        train_text_to_audio,
        training_clips,
    )

    given = run_settings(args, resumable_settings, AUDIO_RUN_DEFAULTS)
    train = training_clips(given["fsdd"], given["n_espeak"], given["seed"], not args.no_progress)
    options = AudioTrainOptions(
        **run_options(args, given, len(train)),
        preset=args.preset,
        recipe=AudioRecipe(domain=args.domain),
        guidance_scale=args.guidance,
        fsdd_folder=given["fsdd"],
        n_espeak=given["n_espeak"],
    )
    pipe, result, plan = train_text_to_audio(train, options, resume=args.resume)
    if result.interrupted:
        return report_interrupted(result, "audio", args.out)
    print(
        f"trained {result.step} steps ({result.stopped}) in {result.wall_s:.0f} s on "
        f"{plan['train_clips']} clips ({pipe.domain.kind} domain, "
        f"{plan.get('precision', args.precision)}); checkpoint: {Path(args.out) / 'checkpoint'}"
    )
    return 0


def cmd_generate(args: argparse.Namespace, checkpoint: Path) -> int:
    """``synesthesia generate CHECKPOINT --audio PROMPT --out DIR``."""
    import numpy as np
    import torch

    from synesthesia.data.spoken_digits import prompt_digits
    from synesthesia.pipelines.text2audio import save_wav

    pipe = _load(checkpoint, args.precision)
    if args.sample_rate is not None and args.sample_rate != pipe.sample_rate:
        raise CommandError(
            f"--sample-rate {args.sample_rate}: {checkpoint} was trained at {pipe.sample_rate} "
            f"Hz; generate at {pipe.sample_rate} and resample the WAV files"
        )
    clips = pipe(
        args.audio,
        negative_prompt=args.negative,
        guidance_scale=args.guidance,
        num_inference_steps=args.steps,
        method=args.method,
        generator=torch.Generator().manual_seed(args.seed),
        num_images_per_prompt=args.n,
        output_type="np",
        progress=not args.no_progress,
    )
    if not np.isfinite(clips).all():
        raise CommandError("the clips are not finite; lower --guidance")
    digit = prompt_digits(args.audio)[0]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for i, clip in enumerate(clips):
        save_wav(out / f"{digit}_{i:03d}.wav", clip, pipe.sample_rate)
    print(
        f"wrote {len(clips)} clips of {args.audio!r} ({pipe.sample_rate} Hz, "
        f"{pipe.samples / pipe.sample_rate:g} s each) to {out}"
    )
    return 0


def cmd_eval(args: argparse.Namespace, checkpoint: Path) -> int:
    """``synesthesia eval CHECKPOINT`` for a text2audio checkpoint."""
    from synesthesia.data.spoken_digits import fsdd_digits
    from synesthesia.errors import check_output_file
    from synesthesia.io import atomic_write_json
    from synesthesia.metrics.audio import get_speech_classifier, score_generator

    pipe = _load(checkpoint, args.precision)
    out = Path(args.json) if args.json else Path(checkpoint).parent / "eval.json"
    check_output_file(out, "--json" if args.json else "scores file")
    fsdd = args.fsdd or pipe.extra.get("fsdd_folder")
    if fsdd is None:
        raise CommandError(
            "eval needs the FSDD recordings (the classifier is trained on real speech): pass "
            "--fsdd FOLDER"
        )
    if not Path(fsdd).is_dir():
        raise CommandError(
            f"FSDD folder {fsdd} (from {checkpoint}/config.json) not found: pass --fsdd FOLDER"
        )
    classifier, info = get_speech_classifier(fsdd, progress=not args.no_progress)
    splits = fsdd_digits(fsdd)
    val = splits["val"]

    def generate(prompts, gen):
        return pipe(
            prompts,
            guidance_scale=args.guidance,
            num_inference_steps=args.steps,
            method=args.method,
            generator=gen,
        )

    scores = score_generator(
        generate, classifier, info, val, pipe.sample_rate, args.n_per_digit, args.seed,
        reference=splits["train"],
    )  # fmt: skip
    guidance = pipe.guidance_scale if args.guidance is None else args.guidance
    scores.update(
        checkpoint=str(checkpoint),
        fsdd=str(fsdd),
        guidance=guidance,
        steps=args.steps,
        method=args.method,
        domain=pipe.domain.kind,
        precision=pipe.precision,
    )
    atomic_write_json(out, scores)
    print(f"{checkpoint} ({pipe.domain.kind} domain, guidance {guidance:g}):")
    names = (
        ("accuracy", "accuracy"),
        ("inception_score", "IS"),
        ("modified_inception_score", "mIS"),
        ("am_score", "AM"),
        ("frechet_distance", "FD"),
    )
    for side in ("generated", "real"):
        s = scores[side]
        print(f"  {side:<9} " + "  ".join(f"{label} {s[key]:.3f}" for key, label in names))
    c = scores["classifier"]
    print(
        f"  classifier: {c['test_accuracy']:.3f} on held-out speakers {c['test_speakers']}; "
        f"scores written to {out}"
    )
    return 0
