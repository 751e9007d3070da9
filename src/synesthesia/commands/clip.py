"""Joint-embedding commands: ``train clip`` and ``eval [clip] CHECKPOINT``.

Heavy modules (torch, the model, the trainer) are imported inside the command functions so
that ``synesthesia --help`` stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from synesthesia.commands import CommandError
from synesthesia.commands._shared import (
    positive_float,
    positive_int,
    register_eval,
    train_subparsers,
)

KIND = "clip"  # the "kind" entry of a joint-embedding checkpoint's config.json
MODALITIES = ("image", "text", "speech")


def _modalities(text: str) -> tuple[str, ...]:
    mods = tuple(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    bad = [m for m in mods if m not in MODALITIES]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown modality {bad[0]!r} (choose from {MODALITIES})")
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
        "digit world, within a time budget. The checkpoint lands in OUT/checkpoint.",
    )
    train.add_argument(
        "--modalities",
        type=_modalities,
        default=MODALITIES,
        help="comma-separated, images plus one or both others (default image,text,speech)",
    )
    train.add_argument(
        "--minutes", type=positive_float, default=5.0, help="time budget (default 5)"
    )
    train.add_argument("--out", default="runs/clip", help="run folder (default runs/clip)")
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument(
        "--loss", choices=("clip", "siglip"), default="clip", help="contrastive loss"
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
        default=(),
        metavar="A,B",
        help="FSDD speakers to train on (the others stay held out); needs --fsdd",
    )
    train.add_argument("--n-speech", type=positive_int, default=2000, help="synthetic clips")
    train.add_argument("--batch-size", type=positive_int, default=64)
    train.add_argument("--lr", type=positive_float, default=2e-3, help="peak learning rate")
    train.add_argument(
        "--max-steps",
        type=positive_int,
        default=None,
        help="schedule length (default: as many steps as fit in --minutes)",
    )
    train.add_argument("--seed", type=int, default=0, help="random seed")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=cmd_train)

    register_eval(subparsers, KIND, cmd_eval, _eval_arguments)


def _eval_arguments(p: argparse.ArgumentParser) -> None:
    have = p._option_string_actions
    if "--fsdd" not in have:
        p.add_argument(
            "--fsdd", default=None, metavar="FOLDER", help="FSDD recordings to score (clip)"
        )
    if "--plot" not in have:
        p.add_argument("--plot", default=None, help="PNG map of the joint space (clip)")
    if "--no-baselines" not in have:
        p.add_argument(
            "--no-baselines", action="store_true", help="skip probe and pixel baselines (clip)"
        )
    if "--json" not in have:
        p.add_argument("--json", default=None, help="where to write the scores (JSON)")
    if "--no-progress" not in have:
        p.add_argument("--no-progress", action="store_true", help="no progress bars")


def cmd_train(args: argparse.Namespace) -> int:
    """``synesthesia train clip``."""
    from synesthesia.multimodal.evaluate import format_table, quick_zero_shot
    from synesthesia.multimodal.train import ClipTrainOptions, train_clip

    if args.fsdd_speakers and not args.fsdd:
        raise CommandError("--fsdd-speakers needs --fsdd FOLDER (the FSDD recordings)")
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
        fsdd_folder=args.fsdd,
        fsdd_speakers=args.fsdd_speakers,
        progress=not args.no_progress,
    )
    model, result, world = train_clip(options, resume=args.resume)
    print(
        f"trained {result.step} steps ({result.stopped}) in {result.wall_s:.0f} s at "
        f"{result.items_per_s:.0f} images/s; checkpoint: {Path(args.out) / 'checkpoint'}"
    )
    print(format_table(quick_zero_shot(model, world)))
    return 0


def cmd_eval(args: argparse.Namespace, checkpoint: Path) -> int:
    """``synesthesia eval [clip] CHECKPOINT``: a table on screen, JSON on disk."""
    from synesthesia.io import atomic_write_json
    from synesthesia.multimodal.evaluate import build_world_for, evaluate_clip, format_table
    from synesthesia.multimodal.model import JointEmbeddingModel

    model = JointEmbeddingModel.from_pretrained(checkpoint)
    info = model.config.training_data
    fsdd_val = tuple(info.get("fsdd_val_speakers") or ())
    if args.fsdd and not fsdd_val:
        from synesthesia.multimodal.train import fsdd_speakers_in

        fsdd_val = tuple(fsdd_speakers_in(args.fsdd))  # trained without FSDD: all are held out
    world = build_world_for(
        model,
        args.fsdd,
        int(info.get("n_speech", 2000)),
        seed=int(info.get("seed", 0)),
        fsdd_val_speakers=fsdd_val or ("nicolas",),
        progress=not args.no_progress,
    )
    results = evaluate_clip(model, world, baselines=not args.no_baselines, plot_path=args.plot)
    results["checkpoint"] = str(checkpoint)
    results["training_data"] = info
    print(format_table(results))
    out = Path(args.json) if args.json else Path(checkpoint) / "eval_clip.json"
    atomic_write_json(out, results)
    print(f"scores written to {out}")
    return 0
