"""The project's own error for bad input, and the checks every command shares.

:class:`InputError` is what a user can fix: a wrong argument, a missing or malformed file, a
size that cannot fit. The ``synesthesia`` command prints it as one line and exits with
status 2; any other exception is a bug and keeps its traceback. It subclasses ``ValueError``
so that library callers catching ``ValueError`` keep working.

This module imports nothing of the package: every room (``brain``, ``diffusion`` and ``nets``
included) may raise it without breaking the one-way arrows.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = [
    "InputError",
    "MissingInputError",
    "check_count",
    "check_finite",
    "check_output_dir",
    "check_output_file",
    "short",
]


class InputError(ValueError):
    """Bad input a user can fix; printed as one line by the command (exit status 2)."""


class MissingInputError(InputError, FileNotFoundError):
    """A file or folder the user named does not exist."""


def short(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to about ``limit`` characters, for error messages."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 20]}...{text[-12:]} ({len(text)} characters)"


def check_finite(
    value: float, what: str, lo: float | None = None, hi: float | None = None
) -> float:
    """``value`` as a finite float in [lo, hi], or an :class:`InputError` naming ``what``."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{what}: expected a number, got {short(value)}") from None
    if not math.isfinite(number):
        raise InputError(f"{what}: expected a finite number, got {short(value)}")
    if lo is not None and number < lo:
        raise InputError(f"{what}: must be >= {lo:g}, got {short(value)}")
    if hi is not None and number > hi:
        raise InputError(f"{what}: must be <= {hi:g}, got {short(value)}")
    return number


def check_count(n: int, what: str, limit: int, unit: str = "items") -> int:
    """Refuse a size that cannot fit: ``n`` must lie in [1, limit]; names ``what`` and the limit."""
    if n < 1:
        raise InputError(f"{what}: must be >= 1, got {n}")
    if n > limit:
        raise InputError(
            f"{what}: {short(n, 40)} {unit} is more than this command can hold in "
            f"memory (at most {limit:,})"
        )
    return int(n)


def _label(what: str, given: str) -> str:
    return f"{what} {given}".strip()


def _first_existing_parent(path: Path) -> Path:
    for parent in [path, *path.parents]:
        if parent.exists() or parent.is_symlink():
            return parent
    return Path(".")


def check_output_file(path: str | os.PathLike, what: str, suffixes: tuple[str, ...] = ()) -> Path:
    """Check, before any work, that a file can be written at ``path`` (named as the user gave it).

    ``suffixes`` (lower case, e.g. ``(".png", ".npz")``) restricts the extension; the check
    ignores case (``.PNG`` is a PNG). The parent folders are not created here.
    """
    given = str(path)
    path = Path(path)
    if not given or given.endswith(("/", os.sep)):
        raise InputError(f"{_label(what, repr(given))}: expected a file name, got a folder")
    if suffixes and path.suffix.lower() not in suffixes:
        raise InputError(f"{_label(what, given)}: must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise InputError(f"{_label(what, given)}: is a folder; give a file name inside it")
    _check_parent(path.parent, what, given)
    return path


def check_output_dir(path: str | os.PathLike, what: str) -> Path:
    """Check, before any work, that ``path`` is (or can become) a writable folder."""
    given = str(path)
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{_label(what, given)}: is a file, not a folder")
    if path.is_dir():
        _probe_write(path, what, given)
        return path
    _check_parent(path.parent, what, given)
    return path


def _check_parent(parent: Path, what: str, given: str) -> None:
    existing = _first_existing_parent(parent if str(parent) else Path("."))
    if not existing.is_dir():
        raise InputError(f"{_label(what, given)}: {existing} is a file, not a folder")
    _probe_write(existing, what, given)


def _probe_write(folder: Path, what: str, given: str) -> None:
    """Create and remove a file in ``folder``: the only test that holds for root, /proc, ..."""
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(prefix=".synesthesia-probe-", dir=folder)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        where = _label(what, given)
        raise InputError(f"{where}: cannot write in {folder} ({reason.lower()})") from None
    os.close(fd)
    os.unlink(tmp)
