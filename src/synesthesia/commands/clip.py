"""Joint-embedding commands: ``train clip`` and ``eval [clip] CHECKPOINT``.

Heavy modules (torch, the model, the trainer) are imported inside the command functions so
that ``synesthesia --help`` stays fast. Everything the user names (output folders and files,
the speech cache, the FSDD folder, a resumed run) is checked before any work.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from synesthesia.commands import CommandError
from synesthesia.commands._shared import (
    add_scale_options,
    positive_float,
    positive_int,
    register_eval,
    seed_int,
    train_subparsers,
)

KIND = "clip"  # the "kind" entry of a joint-embedding checkpoint's config.json
#: Largest --n-speech: 100,000 clips of about 0.5 s at 22,050 Hz are 4.4 GB of float32.
MAX_SPEECH_CLIPS = 100_000
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def _modalities(text: str) -> tuple[str, ...]:
    from synesthesia.multimodal.modalities import modality_names

    known = modality_names()
    mods = tuple(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    bad = [m for m in mods if m not in known]
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown modality {bad[0]!r} (choose from {', '.join(known)})"
        )
    if "image" not in mods or len(mods) < 2:
        raise argparse.ArgumentTypeError(
            f"give image and at least one more modality (images are the anchor), got {text!r}"
        )
    return mods


def _names(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train clip`` and ``eval clip``."""
    train = train_subparsers(subparsers).add_parser(
        "clip",
        help="train a joint image/text/speech embedding (CLIP-style)",
        description="Train encoders for images, captions and spoken digits into one joint "
        "embedding space with a contrastive loss (each modality bound to the images), on the "
        "digit world, within a time budget. The checkpoint lands in OUT/checkpoint. With "
        "--resume, options left out take the run's saved values; one given must equal it "
        "(--max-steps and --precision may change, with a printed statement). Ctrl-C saves, "
        "prints the resume command and exits with 130.",
    )
    train.add_argument(
        "--modalities",
        type=_modalities,
        default=None,
        help="comma-separated, images plus one or both others (default image,text,speech)",
    )
    train.add_argument(
        "--minutes", type=positive_float, default=5.0, help="time budget (default 5)"
    )
    train.add_argument("--out", default="runs/clip", help="run folder (default runs/clip)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument(
        "--loss", choices=("clip", "siglip"), default=None, help="contrastive loss (clip)"
    )
    train.add_argument(
        "--fsdd",
        default=None,
        metavar="FOLDER",
        help="Free Spoken Digit Dataset recordings folder (held-out FSDD speakers are scored)",
    )
    train.add_argument(
        "--fsdd-speakers",
        type=_names,
        default=None,
        metavar="A,B",
        help="FSDD speakers to train on (the others stay held out; naming all of them "
        "leaves none to score); needs --fsdd",
    )
    train.add_argument("--n-speech", type=positive_int, default=None, help="synthetic clips (2000)")
    train.add_argument("--batch-size", type=positive_int, default=None, help="(64)")
    train.add_argument("--lr", type=positive_float, default=None, help="peak learning rate (2e-3)")
    train.add_argument(
        "--max-steps",
        type=positive_int,
        default=None,
        help="schedule length (default: as many steps as fit in --minutes)",
    )
    train.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="auto (default): bf16 only where native and measured faster (fp16 with a "
        "gradient scaler on a GPU without bf16); fp32; bf16; fp16",
    )
    train.add_argument("--seed", type=seed_int, default=None, help="random seed (0)")
    train.add_argument(
        "--cache-dir", default=None, help="speech cache (default $SYNESTHESIA_CACHE or ~/.cache)"
    )
    train.add_argument(
        "--no-eval", action="store_true", help="skip the zero-shot table after training"
    )
    add_scale_options(train)
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    register_eval(subparsers, KIND, cmd_eval, add_eval_arguments)


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``eval clip`` (on the clip kind's own parser)."""
    p.add_argument("--fsdd", default=None, metavar="FOLDER", help="FSDD recordings to score")
    p.add_argument("--plot", default=None, help="PNG map of the joint space")
    p.add_argument("--no-baselines", action="store_true", help="skip probe and pixel baselines")
    p.add_argument(
        "--json", default=None, help="where to write the scores (default CHECKPOINT/eval_clip.json)"
    )
    p.add_argument(
        "--cache-dir", default=None, help="speech cache (default $SYNESTHESIA_CACHE or ~/.cache)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _resume_command(args: argparse.Namespace) -> str:
    parts = ["synesthesia", "train", "clip", "--resume", "--out", args.out]
    if args.fsdd:
        parts += ["--fsdd", args.fsdd]
    if args.cache_dir:
        parts += ["--cache-dir", args.cache_dir]
    return shlex.join(parts)


def cmd_train(args: argparse.Namespace) -> int:
    """``synesthesia train clip``."""
    from synesthesia.errors import check_count
    from synesthesia.multimodal.evaluate import format_table, quick_zero_shot
    from synesthesia.multimodal.train import ClipTrainOptions, train_clip

    if args.fsdd_speakers and not args.fsdd:
        raise CommandError("--fsdd-speakers needs --fsdd FOLDER (the FSDD recordings)")
    if args.n_speech is not None:
        check_count(args.n_speech, "--n-speech", MAX_SPEECH_CLIPS, "clips")
    options = ClipTrainOptions(
        out_dir=args.out,
        modalities=args.modalities,
        loss=args.loss,
        minutes=args.minutes,
        max_steps=args.max_steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        n_speech=args.n_speech,
        precision=args.precision,
        fsdd_folder=args.fsdd,
        fsdd_speakers=args.fsdd_speakers,
        cache_dir=args.cache_dir,
        progress=not args.no_progress,
        grad_accumulation=args.grad_accumulation,
        compile=args.compile,
    )
    model, result, world = train_clip(options, resume=args.resume)
    checkpoint = Path(args.out) / "checkpoint"
    if result.interrupted:
        print(
            f"interrupted at step {result.step}; checkpoint saved in {checkpoint}. "
            f"Resume with: {_resume_command(args)}"
        )
        return result.exit_code
    print(
        f"trained {result.step} steps ({result.stopped}) in {result.wall_s:.0f} s at "
        f"{result.items_per_s:.0f} images/s; checkpoint: {checkpoint}"
    )
    from synesthesia.training.distributed import is_main_process

    if not args.no_eval and is_main_process():  # several processes: one table, rank 0's
        print(format_table(quick_zero_shot(model, world)))
    return 0


def cmd_eval(args: argparse.Namespace, checkpoint: Path) -> int:
    """``synesthesia eval [clip] CHECKPOINT``: a table on screen, JSON on disk."""
    from synesthesia.data.fsdd import fsdd_speakers
    from synesthesia.data.speech import check_speech_cache
    from synesthesia.errors import check_output_file
    from synesthesia.io import atomic_write_json
    from synesthesia.multimodal.evaluate import build_world_for, evaluate_clip, format_table
    from synesthesia.multimodal.model import JointEmbeddingModel

    checkpoint = Path(checkpoint)
    if checkpoint.exists() and not checkpoint.is_dir():
        raise CommandError(f"{checkpoint}: is a file, expected a checkpoint folder")
    cache_dir = getattr(args, "cache_dir", None)
    out = Path(args.json) if args.json else checkpoint / "eval_clip.json"
    check_output_file(
        out, "--json" if args.json else "the scores file (give --json)", suffixes=(".json",)
    )
    if args.plot:
        check_output_file(args.plot, "--plot", suffixes=(".png",))
    model = JointEmbeddingModel.from_pretrained(checkpoint)
    info = model.config.training_data
    trained = tuple(info.get("fsdd_train_speakers") or ())
    held_out = tuple(info.get("fsdd_val_speakers") or ())
    if args.fsdd:
        have = fsdd_speakers(args.fsdd)
        lost = sorted((set(trained) | set(held_out)) - set(have))
        if lost:
            raise CommandError(
                f"--fsdd {args.fsdd}: the checkpoint was trained or scored with FSDD speakers "
                f"{lost}, which this folder lacks (it has {have})"
            )
        if not trained:  # trained without FSDD: every speaker is held out
            held_out = tuple(have)
    if "speech" in model.config.modalities:
        check_speech_cache(cache_dir)
    world = build_world_for(
        model,
        args.fsdd,
        int(info.get("n_speech", 2000)),
        seed=int(info.get("seed", 0)),
        fsdd_val_speakers=held_out,
        cache_dir=cache_dir,
        progress=not args.no_progress,
    )
    results = evaluate_clip(model, world, baselines=not args.no_baselines, plot_path=args.plot)
    results["checkpoint"] = str(checkpoint)
    results["training_data"] = info
    print(format_table(results))
    atomic_write_json(out, results)
    print(f"scores written to {out}")
    return 0
