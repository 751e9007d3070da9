"""Bad-input catalogue rows of ``synesthesia probe`` (issue 15): one line, exit status 2.

Every row fails while the arguments are parsed, before any training, so the table runs in
seconds.
"""

from __future__ import annotations

import pytest

from catalogue import ROOT, Case, make_file, make_folder

V = ["probe", "ventriloquist"]
PLOT = ["--plot", "{tmp}/p.png"]

CASES = [
    Case("unknown-paradigm", ["probe", "ventriloquism", *PLOT], "invalid choice: 'ventriloquism'"),
    Case("plot-missing", V, "the following arguments are required: --plot"),
    Case("plot-no-suffix", [*V, "--plot", "{tmp}/xnoext"], "must end in .png"),
    Case("plot-is-a-folder", [*V, "--plot", "{tmp}/adir.png"], "is a folder",
         prepare=make_folder("adir.png")),
    Case("plot-under-a-file", [*V, "--plot", "{tmp}/t.sh/s.png"], "is a file, not a folder",
         prepare=make_file("t.sh", "#!/bin/sh\n")),
    Case("plot-in-proc", [*V, "--plot", "/proc/x.png"], "--plot: /proc/x.png: cannot"),
    Case("json-wrong-suffix", [*V, *PLOT, "--json", "{tmp}/x.csv"], "must end in .json"),
    Case("json-is-a-folder", [*V, *PLOT, "--json", "{tmp}/d.json"], "is a folder",
         prepare=make_folder("d.json")),
    Case("p-train-above-one", [*V, *PLOT, "--p-train", "1.5"], "probability in [0, 1]"),
    Case("p-train-negative", [*V, *PLOT, "--p-train", "-0.1"], "probability in [0, 1]"),
    Case("p-train-nan", [*V, *PLOT, "--p-train", "nan"], "probability in [0, 1]"),
    Case("p-train-word", [*V, *PLOT, "--p-train", "half"], "expected a number in [0, 1]"),
    Case("p-train-too-many", [*V, *PLOT, "--p-train", *(["0.5"] * 21)], "at most 20 networks"),
    Case("trials-zero", [*V, *PLOT, "--trials", "0"], "--trials"),
    Case("trials-too-many", [*V, *PLOT, "--trials", "10000000"], "more than this command"),
    Case("steps-zero", [*V, *PLOT, "--steps", "0"], "--steps"),
    Case("steps-word", [*V, *PLOT, "--steps", "many"], "expected an integer"),
    Case("seed-negative", [*V, *PLOT, "--seed", "-5"], "--seed"),
    Case("seed-overflow", [*V, *PLOT, "--seed", "99999999999999999999"], "--seed"),
    Case("model-unknown", [*V, *PLOT, "--models", "vote"], "invalid choice: 'vote'"),
    Case("flash-plot-missing", ["probe", "flash"], "the following arguments are required: --plot"),
    Case("flash-noise-zero", ["probe", "flash", *PLOT, "--noise-v", "0"], "in (0, 100]"),
    Case("flash-noise-inf", ["probe", "flash", *PLOT, "--noise-v", "inf"], "noise level"),
    Case("flash-incongruent-above-one", ["probe", "flash", *PLOT, "--p-incongruent", "2"],
         "probability in [0, 1]"),
    Case("flash-trials-zero", ["probe", "flash", *PLOT, "--trials", "0"], "--trials"),
    Case("mcgurk-noise-negative", ["probe", "mcgurk", *PLOT, "--noise-a", "-1"], "noise level"),
    Case("mcgurk-clips-two", ["probe", "mcgurk", *PLOT, "--clips", "2"], "at least 3 clips"),
    Case("mcgurk-cache-is-a-file", ["probe", "mcgurk", *PLOT, "--cache-dir", "{tmp}/c.txt"],
         "--cache-dir", prepare=make_file("c.txt")),
    Case("enhancement-checkpoint-missing", ["probe", "enhancement", *PLOT, "--checkpoint",
         "{tmp}/nothere"], "nothere: no such folder"),
    Case("enhancement-checkpoint-not-given", ["probe", "enhancement", *PLOT],
         "the following arguments are required: --checkpoint"),
    Case("enhancement-wrong-kind", ["probe", "enhancement", *PLOT, "--checkpoint", "{tmp}/ck"],
         "a 'image' checkpoint; the enhancement probe needs a 'clip'",
         prepare=make_file("ck/config.json", '{"kind": "image"}')),
    Case("enhancement-wrong-kind-run-folder", ["probe", "enhancement", *PLOT, "--checkpoint",
         "{tmp}/run"], "needs a 'clip'",
         prepare=make_file("run/checkpoint/config.json", '{"kind": "autoencoder"}')),
    Case("enhancement-no-config", ["probe", "enhancement", *PLOT, "--checkpoint", "{tmp}/d"],
         "not a checkpoint folder", prepare=make_folder("d")),
    Case("enhancement-config-corrupt", ["probe", "enhancement", *PLOT, "--checkpoint",
         "{tmp}/ck"], "config.json", prepare=make_file("ck/config.json", "{\"kind\": ")),
    Case("enhancement-plot-no-suffix", ["probe", "enhancement", "--checkpoint", "{tmp}",
         "--plot", "{tmp}/x"], "must end in .png"),
    Case("mcgurk-json-wrong-suffix", ["probe", "mcgurk", *PLOT, "--json", "{tmp}/x.png"],
         "must end in .json"),
]  # fmt: skip
if not ROOT:  # root writes into a mode-555 folder
    CASES.append(
        Case(
            "plot-read-only-folder",
            [*V, "--plot", "{tmp}/ro/x.png"],
            "cannot write",
            prepare=make_folder("ro", 0o555),
        )  # fmt: skip
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_probe_bad_input(case, check_case):
    check_case(case)
