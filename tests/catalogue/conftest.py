"""Fixture of the bad-input catalogue (the runner is in catalogue.py)."""

from __future__ import annotations

import pytest

from catalogue import Case, assert_one_line, run_case


@pytest.fixture
def check_case(tmp_path, capsys, monkeypatch):
    """``check_case(case)``: run a catalogue row and assert its one clear line."""

    def check(case: Case) -> None:
        monkeypatch.setenv("SYNESTHESIA_CACHE", str(tmp_path / "cache"))
        code, err = run_case(case, tmp_path, capsys, monkeypatch)
        assert_one_line(case, code, err)

    return check
