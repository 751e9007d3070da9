"""What several rooms' commands share: argparse types, ``train KIND``, and checkpoint kinds.

``train`` has one nested sub-command per kind of model (``train image``, ``train clip``), added
by each room through :func:`train_subparsers`. ``sample`` and ``eval`` take
``[KIND] CHECKPOINT [options]``: the kind is read from the checkpoint's ``config.json`` (its
``"kind"`` entry) unless given, and dispatches to what that kind registered with
:func:`register_kind` (a :class:`CheckpointKind`), whose options are parsed by a parser of its
own. Argparse types here check values (and output paths) at parse time, before any work.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from synesthesia.commands import CommandError, Parser
from synesthesia.errors import InputError, check_output_dir, check_output_file, short

#: Largest seed accepted (torch.Generator.manual_seed takes 64-bit integers).
MAX_SEED = 2**63 - 1


def _number(text: str, kind: type, ok, what: str) -> float:
    word = "an integer" if kind is int else "a number"
    try:
        value = kind(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"expected {word}, got {short(text, 40)}") from None
    if not ((kind is int or math.isfinite(value)) and ok(value)):
        raise argparse.ArgumentTypeError(f"expected {what}, got {short(text, 40)}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    return _number(text, float, lambda v: v > 0, "a positive number")


def nonnegative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    return _number(text, float, lambda v: v >= 0, "a number >= 0")


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _number(text, int, lambda v: v >= 1, "a positive integer")


def seed_int(text: str) -> int:
    """argparse type: a seed, an integer in [0, 2**63 - 1]."""
    return _number(text, int, lambda v: 0 <= v <= MAX_SEED, f"an integer in [0, {MAX_SEED}]")


def guidance_float(text: str) -> float:
    """argparse type: a classifier-free guidance scale, finite, in [0, 100]."""
    return _number(text, float, lambda v: 0 <= v <= 100, "a guidance scale in [0, 100]")


def count_up_to(limit: int) -> Callable[[str], int]:
    """argparse type: an integer in [1, limit] (sizes beyond ``limit`` cannot fit in memory)."""

    def parse(text: str) -> int:
        value = _number(text, int, lambda v: v >= 1, "a positive integer")
        if value > limit:
            raise argparse.ArgumentTypeError(
                f"{short(text, 30)} is more than this command can hold in memory "
                f"(at most {limit:,})"
            )
        return value

    parse.__name__ = "count"
    return parse


def output_file(*suffixes: str) -> Callable[[str], Path]:
    """argparse type: a file that can be written (checked at once, before any work).

    ``suffixes`` (lower case) restricts the extension, ignoring case (``.PNG`` is a PNG).
    """

    def parse(text: str) -> Path:
        try:
            return check_output_file(text, "", suffixes)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc).strip()) from None

    parse.__name__ = "output file"
    return parse


def output_dir(text: str) -> Path:
    """argparse type: a folder that exists or can be created, and written."""
    try:
        return check_output_dir(text, "")
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc).strip()) from None


def add_precision_option(p: argparse.ArgumentParser) -> None:
    """``--precision auto|fp32|bf16|fp16`` (auto: bf16 only where native and measured faster;
    fp16 on a GPU without bf16)."""
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "fp16"),
        default="auto",
        help="auto (default: bf16 only where the CPU/GPU computes it natively and it measures "
        "faster; fp16 with a gradient scaler on a GPU without bf16), fp32, bf16 or fp16",
    )


def add_scale_options(p: argparse.ArgumentParser) -> None:
    """``--grad-accumulation N`` and ``--compile``: what a bigger machine or a bigger batch
    needs (see docs/scale.md; several processes come from accelerate launch / torchrun)."""
    p.add_argument(
        "--grad-accumulation",
        type=positive_int,
        default=1,
        metavar="N",
        help="micro-batches per optimizer step (default 1); --batch-size stays the global "
        "batch, so it must divide by N times the number of processes",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="run the training forward through torch.compile (first steps compile; measure "
        "before relying on it)",
    )


# ---------------------------------------------------------------------- checkpoint kinds
@dataclass
class CheckpointKind:
    """What ``synesthesia sample`` and ``synesthesia eval`` can do with one kind of checkpoint.

    ``evaluate(args, checkpoint)`` / ``sample(args, checkpoint)`` / ``generate(args,
    checkpoint)`` run the command; ``eval_options(parser)`` / ``sample_options(parser)`` /
    ``generate_options(parser)`` add this kind's own options to a parser of its own (so kinds
    never share, or collide in, one option list).
    """

    name: str
    evaluate: Callable[[argparse.Namespace, Path], int | None] | None = None
    eval_options: Callable[[argparse.ArgumentParser], None] | None = None
    sample: Callable[[argparse.Namespace, Path], int | None] | None = None
    sample_options: Callable[[argparse.ArgumentParser], None] | None = None
    generate: Callable[[argparse.Namespace, Path], int | None] | None = None
    generate_options: Callable[[argparse.ArgumentParser], None] | None = None


KINDS: dict[str, CheckpointKind] = {}
_VERBS = {
    "eval": ("evaluate", "eval_options", "evaluate a checkpoint: eval CHECKPOINT [options]"),
    "sample": ("sample", "sample_options", "generate from a checkpoint: sample CHECKPOINT ..."),
    "generate": (
        "generate",
        "generate_options",
        "generate from a prompt: generate CHECKPOINT PROMPT [options]",
    ),
}


def train_subparsers(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """The nested sub-parsers of ``synesthesia train`` (created on first use)."""
    parser = subparsers.choices.get("train")
    if parser is None:
        parser = subparsers.add_parser("train", help="train a model (train KIND --help)")
        parser.set_defaults(_nested=parser.add_subparsers(dest="train_kind", metavar="KIND"))
    return parser.get_default("_nested")


def register_kind(subparsers: argparse._SubParsersAction, kind: CheckpointKind) -> None:
    """Add (or extend) checkpoint kind ``kind.name`` for ``synesthesia sample`` / ``eval``."""
    entry = KINDS.setdefault(kind.name, CheckpointKind(kind.name))
    for f in dataclasses.fields(kind):
        if f.name != "name" and getattr(kind, f.name) is not None:
            setattr(entry, f.name, getattr(kind, f.name))
    for verb, (action, _, help_text) in _VERBS.items():
        if getattr(entry, action) is not None and verb not in subparsers.choices:
            parser = subparsers.add_parser(
                verb,
                help=help_text,
                description=f"{help_text.capitalize()}. The kind of checkpoint is read from its "
                f"config.json; each kind has its own options: synesthesia {verb} CHECKPOINT "
                f"--help. An explicit kind may come first: synesthesia {verb} KIND CHECKPOINT.",
            )
            parser.add_argument("rest", nargs=argparse.REMAINDER, metavar="[KIND] CHECKPOINT ...")
            parser.set_defaults(func=lambda args, verb=verb: _dispatch(verb, args.rest))


def register_eval(
    subparsers: argparse._SubParsersAction,
    kind: str,
    func: Callable[[argparse.Namespace, Path], int | None],
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """Add ``kind`` to ``synesthesia eval`` (``func(args, checkpoint)``, its own options)."""
    register_kind(subparsers, CheckpointKind(kind, evaluate=func, eval_options=add_arguments))


def checkpoint_kind(checkpoint: Path) -> str:
    """The ``"kind"`` entry of a checkpoint folder's config.json, with clear errors."""
    from synesthesia.io import read_json

    config = checkpoint / "config.json"
    if not checkpoint.exists():
        raise CommandError(f"{checkpoint}: no such checkpoint folder")
    if not checkpoint.is_dir():
        raise CommandError(f"{checkpoint}: is a file, expected a checkpoint folder")
    if not config.is_file():
        raise CommandError(f"{checkpoint}: not a checkpoint folder (no config.json in it)")
    data = read_json(config, what="config file")
    kind = data.get("kind") if isinstance(data, dict) else None
    if not isinstance(kind, str):
        raise CommandError(f"{config}: has no 'kind' entry; name it: synesthesia eval KIND PATH")
    return kind


def _dispatch(verb: str, rest: list[str]) -> int | None:
    action, options, _ = _VERBS[verb]
    able = sorted(k for k, v in KINDS.items() if getattr(v, action) is not None)
    if not rest or rest[0].startswith("-"):
        raise CommandError(
            f"{verb}: give the CHECKPOINT folder first (synesthesia {verb} CHECKPOINT [options]; "
            f"kinds: {', '.join(able)})"
        )
    if rest[0] in KINDS and not Path(rest[0]).exists():
        kind, rest = rest[0], rest[1:]
        if rest and rest[0] in ("-h", "--help"):
            _kind_parser(verb, kind).parse_args(["--help"])  # this kind's options; exits 0
        if not rest or rest[0].startswith("-"):
            raise CommandError(f"{verb} {kind}: give the CHECKPOINT folder after the kind")
    else:
        kind = checkpoint_kind(Path(rest[0]))
    entry = KINDS.get(kind)
    if entry is None or getattr(entry, action) is None:
        raise CommandError(
            f"{rest[0]}: kind {kind!r} has no {verb} (kinds with {verb}: {', '.join(able)})"
        )
    args = _kind_parser(verb, kind).parse_args(rest)
    return getattr(entry, action)(args, args.checkpoint)


def _kind_parser(verb: str, kind: str) -> argparse.ArgumentParser:
    """The parser of ``synesthesia VERB CHECKPOINT [options]`` for checkpoints of ``kind``."""
    _, options, _ = _VERBS[verb]
    parser = Parser(prog=f"synesthesia {verb}", description=f"{verb} a {kind!r} checkpoint")
    parser.add_argument("checkpoint", type=Path, help="checkpoint folder")
    add = getattr(KINDS[kind], options)
    if add is not None:
        add(parser)
    return parser


# ---------------------------------------------------------------------- training runs
def add_run_options(
    train: argparse.ArgumentParser,
    *,
    name: str,
    minutes: float,
    max_batch: int,
    max_steps: int,
    what: str = "images",
    batch_size: int = 64,
    data: bool = True,
) -> None:
    """The options every time-bounded ``train KIND`` shares: ``--data --minutes --out --resume
    --seed --batch-size --max-steps --precision --no-progress`` (``--out`` defaults to
    ``runs/NAME``). Settings a resumption keeps (data, batch size, seed) default to ``None``,
    resolved by :func:`run_settings` (``batch_size`` is the default its ``defaults`` hold,
    named in the help). ``data=False`` leaves ``--data`` out (a kind with its own sources)."""
    if data:
        train.add_argument(
            "--data",
            default=None,
            help=f"mnist5k (built in, default), digits8x8, or a folder of MNIST/Fashion-MNIST "
            f"IDX files, the source of the {what} (on --resume: the run's own)",
        )
    train.add_argument(
        "--minutes", type=positive_float, default=minutes, help=f"time budget (default {minutes:g})"
    )
    train.add_argument(
        "--out",
        type=output_dir,
        default=Path("runs") / name,
        help=f"run folder (default runs/{name})",
    )
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    train.add_argument("--seed", type=seed_int, default=None, help="random seed (default 0)")
    train.add_argument(
        "--batch-size",
        type=count_up_to(max_batch),
        default=None,
        help=f"global batch (default {batch_size})",
    )
    train.add_argument(
        "--max-steps",
        type=count_up_to(max_steps),
        default=None,
        help="schedule length (default: fit --minutes); on --resume, a larger value extends "
        "the run",
    )
    add_precision_option(train)
    add_scale_options(train)
    train.add_argument("--no-progress", action="store_true", help="no progress bar")


#: What a run keeps unless told otherwise (``--data``, ``--batch-size``, ``--seed``).
RUN_DEFAULTS = {"data": "mnist5k", "batch_size": 64, "seed": 0}


def run_settings(
    args: argparse.Namespace,
    read_saved: Callable[[Path], dict],
    defaults: dict | None = None,
) -> dict:
    """The settings of a training run that a resumption must keep, one value per key of
    ``defaults`` (``RUN_DEFAULTS`` unless given; each key is an attribute of ``args``).

    Without ``--resume``: what is given, else the default. With it: what is not given comes
    from the saved run (``read_saved(out)``); what is given must equal the saved value, or
    the error names the option and both values.
    """
    defaults = RUN_DEFAULTS if defaults is None else defaults
    given = {key: getattr(args, key) for key in defaults}
    if args.resume:
        saved = read_saved(args.out)
        for key, value in given.items():
            if value is not None and saved.get(key) not in (None, value):
                raise CommandError(
                    f"--{key.replace('_', '-')}: the run in {args.out} used {saved[key]!r}, "
                    f"this call gives {value!r}; resume with the run's own settings, or start "
                    "a new run in another --out"
                )
        given = {k: saved.get(k) if v is None else v for k, v in given.items()}
    return {k: defaults[k] if v is None else v for k, v in given.items()}


def run_options(args: argparse.Namespace, given: dict, n_items: int) -> dict:
    """The fields every recipe's training options share, from :func:`add_run_options`'s
    arguments and :func:`run_settings`'s ``given`` (the batch capped at ``n_items``)."""
    return {
        "out_dir": str(args.out),
        "minutes": args.minutes,
        "max_steps": args.max_steps,
        "batch_size": min(given["batch_size"], n_items),
        "seed": given["seed"],
        "precision": args.precision,
        "progress": not args.no_progress,
        "grad_accumulation": args.grad_accumulation,
        "compile": args.compile,
    }


def report_interrupted(result, kind: str, out: Path, then: str = "") -> int:
    """Say how far an interrupted ``train KIND`` run got and how to resume it; its exit
    status (130)."""
    import shlex
    import sys

    command = f"synesthesia train {kind} --out {shlex.quote(str(out))} --resume{then}"
    print(
        f"interrupted at step {result.step} of {result.max_steps}; checkpoint of step "
        f"{result.checkpoint_step} in {result.checkpoint}. Resume with:\n  {command}",
        file=sys.stderr,
    )
    return result.exit_code
