"""The bad-input catalogue: the shared runner for the per-room tables in this folder.

Each ``test_*.py`` here holds a table of :class:`Case` rows (command line, prepared bad input,
expected exit code, a fragment the one-line message must contain) and calls
the ``check_case`` fixture (conftest.py). Commands run in-process through
``synesthesia.cli.main``. ``{tmp}`` in an argument is replaced by the test's temporary folder;
``prepare(tmp)`` builds the bad input (a corrupted file, a read-only folder, ...) first.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Case:
    """One bad input: ``argv`` with ``{tmp}`` placeholders, what it must print, its exit code."""

    id: str
    argv: list[str]
    fragment: str  # must appear in the one-line message
    code: int = 2
    prepare: Callable[[Path], None] | None = None
    env: dict[str, str] = field(default_factory=dict)


#: Root writes into read-only folders: rows that need a permission error skip as root.
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def make_folder(name: str, mode: int | None = None) -> Callable[[Path], None]:
    """``prepare``: a folder ``tmp/name`` (and its parents), optionally with ``mode``."""

    def prepare(tmp: Path) -> None:
        (tmp / name).mkdir(parents=True, exist_ok=True)
        if mode is not None:
            (tmp / name).chmod(mode)

    return prepare


def make_file(name: str, data: bytes | str = b"x", mode: int | None = None):
    """``prepare``: a file ``tmp/name`` holding ``data`` (its folders created)."""

    def prepare(tmp: Path) -> None:
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        if mode is not None:
            path.chmod(mode)

    return prepare


def edit_json(edit: Callable[[dict], dict], rel: str = "run/checkpoint/config.json"):
    """``prepare``: the JSON file ``tmp/rel`` replaced by ``edit`` of its contents."""
    import json

    def prepare(tmp: Path) -> None:
        path = tmp / rel
        path.write_text(json.dumps(edit(json.loads(path.read_text()))))

    return prepare


def damaged(rel: str, keep: int | None = None) -> Callable[[Path], None]:
    """``prepare``: ``tmp/run/rel`` cut to its first ``keep`` bytes, or deleted (None)."""

    def prepare(tmp: Path) -> None:
        path = tmp / "run" / rel
        path.unlink() if keep is None else path.write_bytes(path.read_bytes()[:keep])

    return prepare


def with_run(case: Case, trained: Path) -> Case:
    """``case`` with a copy of the training run ``trained`` in ``{tmp}/run`` (prepared first)."""
    import dataclasses
    import shutil

    prepare = case.prepare

    def both(tmp: Path) -> None:
        shutil.copytree(trained, tmp / "run")
        if prepare is not None:
            prepare(tmp)

    return dataclasses.replace(case, prepare=both)


def _one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run_case(case: Case, tmp: Path, capsys, monkeypatch) -> tuple[int, str]:
    """Run ``case`` in-process; returns (exit code, stderr)."""
    from synesthesia.cli import main

    if case.prepare is not None:
        case.prepare(tmp)
    for key, value in case.env.items():
        monkeypatch.setenv(key, value.replace("{tmp}", str(tmp)))
    argv = [a.replace("{tmp}", str(tmp)) for a in case.argv]
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code if isinstance(exc.code, int) else 1
    return code, capsys.readouterr().err


def assert_one_line(case: Case, code: int, err: str) -> None:
    """Exit code ``case.code``, no traceback, one error line holding the fragment."""
    assert "Traceback" not in err, f"{case.id}: traceback\n{err}"
    assert code == case.code, f"{case.id}: exit {code}, expected {case.code}\n{err}"
    line = _one_line(err)
    assert "error:" in line, f"{case.id}: no error line in\n{err}"
    errors = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(errors) == 1, f"{case.id}: {len(errors)} error lines\n{err}"
    assert case.fragment.lower() in line.lower(), f"{case.id}: {case.fragment!r} not in {line!r}"
    assert len(line) < 600, f"{case.id}: a {len(line)}-character message"
