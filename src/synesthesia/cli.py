"""The ``synesthesia`` command: thin wiring of the rooms' sub-commands.

Every sub-command has ``--help``. The project's own input errors
(:class:`synesthesia.errors.InputError`: a wrong argument, a missing or malformed file, a size
that cannot fit) print one line (``synesthesia: error: ...``) and exit with status 2; any other
exception is a bug and keeps its traceback. An interrupted command exits with 130.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Iterator, Sequence

from synesthesia import __version__
from synesthesia.commands import Parser
from synesthesia.errors import InputError

# One module per room under synesthesia.commands; each has register(subparsers).
COMMAND_MODULES = (
    "oracle",
    "data",
    "image",
    "autoencoder",
    "text2image",
    "video",
    "audio",
    "clip",
    "brain",
    "probe",
    "app",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every room's sub-commands registered."""
    parser = Parser(
        prog="synesthesia",
        description="Multimodal learning, diffusion generation and multisensory integration.",
    )
    parser.add_argument("--version", action="version", version=f"synesthesia {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"synesthesia.commands.{name}")
        except ModuleNotFoundError as exc:  # a room not built yet
            if exc.name == f"synesthesia.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


@contextlib.contextmanager
def _quiet_unless_main() -> Iterator[None]:
    """Under torchrun / accelerate launch, only rank 0 prints results (each rank runs the same
    command); the others' standard output is dropped, their errors still reach stderr."""
    rank = int(os.environ.get("RANK", "0") or 0)
    if rank == 0:
        yield
        return
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if extra and getattr(args, "rest", None) is not None:  # sample / eval: options first
            raise InputError(
                f"{args.command}: give the CHECKPOINT folder first, then its options "
                f"(synesthesia {args.command} CHECKPOINT [options]); got {' '.join(extra)}"
            )
        if extra:
            parser.parse_args(argv)  # argparse's own message for unrecognised arguments
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        with _quiet_unless_main():
            result = args.func(args)
    except InputError as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"synesthesia: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("synesthesia: interrupted", file=sys.stderr)
        return 130
    finally:
        if "torch" in sys.modules:  # a command that ran under torchrun leaves its group
            from synesthesia.training.distributed import leave_process_group

            leave_process_group()
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
