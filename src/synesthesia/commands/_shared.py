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
    """``--precision auto|fp32|bf16`` (auto: bf16 only where native and measured faster)."""
    p.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        default="auto",
        help="auto (default: bf16 only where the CPU/GPU computes it natively and it measures "
        "faster), fp32 or bf16",
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
