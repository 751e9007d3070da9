"""Bad-input catalogue rows of ``synesthesia oracle`` (issue 15): one line, exit status 2."""

from __future__ import annotations

import pytest

from catalogue import ROOT, Case, make_file, make_folder

OUT = ["--out", "{tmp}/o.png"]


CASES = [
    # sizes
    Case("n-too-large", ["oracle", "--n", "10000000000", *OUT], "at most 1,000,000"),
    Case("n-400-digits", ["oracle", "--n", "9" * 400, *OUT], "--n"),
    Case("n-zero", ["oracle", "--n", "0", *OUT], "--n: expected a positive integer"),
    Case("n-text", ["oracle", "--n", "many", *OUT], "--n: expected an integer"),
    Case("n-float", ["oracle", "--n", "2.5", *OUT], "--n: expected an integer"),
    Case("steps-zero", ["oracle", "--steps", "0", *OUT], "--steps: expected a positive integer"),
    Case("steps-too-many", ["oracle", "--steps", "1001", *OUT], "--steps: at most 1000"),
    Case("steps-text", ["oracle", "--steps", "ten", *OUT], "--steps: expected an integer"),
    # values that make no sense
    Case(
        "guidance-nan",
        ["oracle", "--guidance", "nan", *OUT],
        "--guidance: expected a guidance scale",
    ),
    Case("guidance-negative", ["oracle", "--guidance", "-3", *OUT], "--guidance"),
    Case("guidance-inf", ["oracle", "--guidance", "1", "inf", *OUT], "--guidance"),
    Case("guidance-text", ["oracle", "--guidance", "strong", *OUT], "--guidance"),
    Case(
        "guidance-overflow", ["oracle", "--guidance", "1e308", *OUT], "guidance scale in [0, 100]"
    ),
    Case("seed-overflow", ["oracle", "--seed", "99999999999999999999", *OUT], "--seed"),
    Case("seed-negative", ["oracle", "--seed", "-5", *OUT], "--seed: expected an integer in [0,"),
    Case("seed-5000-digits", ["oracle", "--seed", "7" * 5000, *OUT], "characters)"),
    Case("seed-text", ["oracle", "--seed", "abc", *OUT], "--seed: expected an integer"),
    Case("unknown-option", ["oracle", "--sampler", "ddim", *OUT], "unrecognized arguments"),
    # output paths, checked before any work, named as given
    Case(
        "out-folder",
        ["oracle", "--out", "{tmp}/adir.png"],
        "adir.png: is a folder",
        prepare=make_folder("adir.png"),
    ),
    Case(
        "out-under-a-file",
        ["oracle", "--out", "{tmp}/t.sh/s.png"],
        "is a file, not a folder",
        prepare=make_file("t.sh", "#!/bin/sh\n"),
    ),
    Case("out-in-proc", ["oracle", "--out", "/proc/x.png"], "--out: /proc/x.png: cannot write"),
    Case("out-wrong-extension", ["oracle", "--out", "{tmp}/fig.jpg"], "must end in .png"),
    Case("out-no-extension", ["oracle", "--out", "{tmp}/fig"], "must end in .png"),
    Case("out-trailing-slash", ["oracle", "--out", "{tmp}/figs/"], "expected a file name"),
]

READ_ONLY = Case(
    "out-read-only-folder",
    ["oracle", "--out", "{tmp}/ro/s.png"],
    "cannot write",
    prepare=make_folder("ro", 0o555),
)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_oracle_bad_input(case, check_case):
    check_case(case)


@pytest.mark.skipif(ROOT, reason="root writes into a read-only folder")
def test_oracle_read_only_folder(check_case):
    check_case(READ_ONLY)
