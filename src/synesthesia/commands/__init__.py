"""Sub-commands of the ``synesthesia`` command, one module per room.

Each module defines ``register(subparsers)``, which adds its sub-commands to the parser and
sets ``func`` on each; :mod:`synesthesia.cli` is the only module that imports them all.
Heavy imports (torch, matplotlib) happen inside the command functions so that ``--help`` is fast.
"""


class CommandError(Exception):
    """A user error: printed as one line by the command, with no traceback, exit status 2."""
