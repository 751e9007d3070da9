"""Sub-commands of the ``synesthesia`` command, one module per room.

Each module defines ``register(subparsers)``, which adds its sub-commands to the parser and
sets ``func`` on each; :mod:`synesthesia.cli` is the only module that imports them all.
Heavy imports (torch, matplotlib) happen inside the command functions so that ``--help`` is fast.
"""

import argparse

from synesthesia.errors import InputError


class CommandError(InputError):
    """A user error found by a command: printed as one line, no traceback, exit status 2."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are :class:`CommandError` (one line, exit status 2)
    instead of argparse's usage block; ``--help`` still prints the full usage."""

    def error(self, message: str):  # type: ignore[override]
        raise CommandError(f"{self.prog}: {message} (see: {self.prog} --help)")
