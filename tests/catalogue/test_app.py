"""Bad-input catalogue rows of ``synesthesia app`` (issue 15): one line, exit status 2, before
anything is served."""

from __future__ import annotations

import pytest

from catalogue import Case, make_file

CASES = [
    Case(
        "checkpoints-missing",
        ["app", "--checkpoints", "{tmp}/no-runs"],
        "no-runs: no such folder (give the folder your training runs are in",
    ),
    Case(
        "checkpoints-a-file",
        ["app", "--checkpoints", "{tmp}/runs.txt"],
        "runs.txt: is a file, expected a folder of runs",
        prepare=make_file("runs.txt", "not a folder"),
    ),
    Case("port-too-large", ["app", "--port", "70000"], "--port: expected a port in [1, 65535]"),
    Case("port-zero", ["app", "--port", "0"], "--port: expected a port in [1, 65535]"),
    Case("port-text", ["app", "--port", "http"], "--port: expected a port number, got 'http'"),
    Case("port-float", ["app", "--port", "80.5"], "--port: expected a port number"),
    Case("port-5000-digits", ["app", "--port", "9" * 5000], "characters)"),
    Case("port-missing-value", ["app", "--port"], "--port: expected one argument"),
    Case("unknown-option", ["app", "--share"], "unrecognized arguments: --share"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_app_bad_input(case, check_case):
    check_case(case)
