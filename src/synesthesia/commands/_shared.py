"""Parsers shared by several rooms: ``synesthesia train KIND ...`` and ``synesthesia eval``.

``train`` has one nested sub-command per kind of model (``train image``, ``train clip``), added by
each room through :func:`train_subparsers`. ``eval`` takes ``[KIND] CHECKPOINT``; without KIND
the kind is read from the checkpoint's ``config.json`` (its ``"kind"`` entry). Each room adds its
evaluator with :func:`register_eval`.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable
from pathlib import Path

from synesthesia.commands import CommandError


def _number(text: str, kind: type, ok, what: str) -> float:
    word = "an integer" if kind is int else "a number"
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {word}, got {text!r}") from None
    if not (math.isfinite(value) and ok(value)):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
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


_EVALUATORS: dict[str, Callable[[argparse.Namespace, Path], int | None]] = {}


def train_subparsers(subparsers: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """The nested sub-parsers of ``synesthesia train`` (created on first use)."""
    parser = subparsers.choices.get("train")
    if parser is None:
        parser = subparsers.add_parser("train", help="train a model (train KIND --help)")
        parser.set_defaults(_nested=parser.add_subparsers(dest="train_kind", metavar="KIND"))
    return parser.get_default("_nested")


def register_eval(
    subparsers: argparse._SubParsersAction,
    kind: str,
    func: Callable[[argparse.Namespace, Path], int | None],
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> None:
    """Add ``kind`` to ``synesthesia eval``: ``func(args, checkpoint)`` runs the evaluation.

    ``add_arguments(parser)`` may add kind-specific options (they must not collide).
    """
    parser = subparsers.choices.get("eval")
    if parser is None:
        parser = subparsers.add_parser(
            "eval",
            help="evaluate a checkpoint: eval [KIND] CHECKPOINT",
            description="Evaluate a checkpoint. KIND is read from its config.json when omitted.",
        )
        parser.add_argument("target", nargs="+", metavar="[KIND] CHECKPOINT")
        parser.set_defaults(func=_run_eval)
    if add_arguments is not None:
        add_arguments(parser)
    _EVALUATORS[kind] = func


def checkpoint_kind(checkpoint: Path) -> str:
    """The ``"kind"`` entry of a checkpoint folder's config.json, with clear errors."""
    config = checkpoint / "config.json"
    if not checkpoint.exists():
        raise CommandError(f"{checkpoint}: no such checkpoint folder")
    if not config.is_file():
        raise CommandError(f"{checkpoint}: not a checkpoint folder (no config.json in it)")
    try:
        kind = json.loads(config.read_text()).get("kind")
    except (json.JSONDecodeError, AttributeError) as exc:
        raise CommandError(f"{config}: not a valid JSON object ({exc})") from exc
    if not isinstance(kind, str):
        raise CommandError(f"{config}: has no 'kind' entry; name it: synesthesia eval KIND PATH")
    return kind


def _run_eval(args: argparse.Namespace) -> int | None:
    target = args.target
    if len(target) > 2:
        raise CommandError(f"eval takes [KIND] CHECKPOINT, got {len(target)} arguments")
    if len(target) == 2:
        kind, checkpoint = target[0], Path(target[1])
    else:
        checkpoint = Path(target[0])
        kind = checkpoint_kind(checkpoint)
    if kind not in _EVALUATORS:
        known = ", ".join(sorted(_EVALUATORS)) or "none"
        raise CommandError(f"unknown kind {kind!r} for eval (known: {known})")
    return _EVALUATORS[kind](args, checkpoint)
