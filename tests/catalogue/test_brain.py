"""Bad-input catalogue rows of ``synesthesia brain`` (issue 15): one line, exit status 2.

Every row fails before any simulation or fit, so the table runs in seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from catalogue import ROOT, Case, make_file, make_folder

GOOD = "stim_v,stim_a,resp_v\n0,0,0\n0,5,5\n5,0,0\n5,5,5\n0,0,5\n5,5,0\n0,5,0\n"


def _paradigm_rows(paradigm: str) -> list:
    base = ["brain", paradigm, "--trials", "2"]
    plot = ["--plot", "{tmp}/p.png"]
    p = paradigm
    rows = [
        Case(f"{p}-plot-is-a-folder", [*base, "--plot", "{tmp}/adir.png"], "is a folder",
             prepare=make_folder("adir.png")),
        Case(f"{p}-csv-is-a-folder", [*base, *plot, "--csv", "{tmp}/adir.png"], "is a folder",
             prepare=make_folder("adir.png")),
        Case(f"{p}-plot-under-a-file", [*base, "--plot", "{tmp}/t.sh/s.png"],
             "is a file, not a folder", prepare=make_file("t.sh", "#!/bin/sh\n")),
        Case(f"{p}-csv-under-a-file", [*base, *plot, "--csv", "{tmp}/t.sh/s.csv"],
             "is a file, not a folder", prepare=make_file("t.sh", "#!/bin/sh\n")),
        Case(f"{p}-plot-in-proc", [*base, "--plot", "/proc/x.png"], "--plot: /proc/x.png: cannot"),
        Case(f"{p}-csv-in-proc", [*base, *plot, "--csv", "/proc/x.csv"], "--csv: /proc/x.csv"),
        Case(f"{p}-plot-read-only-folder", [*base, "--plot", "/sys/x.png"], "cannot write"),
        Case(f"{p}-plot-no-suffix", [*base, "--plot", "{tmp}/xnoext"], "must end in .png"),
        Case(f"{p}-trials-too-many", ["brain", p, *plot, "--trials", "100000000000"],
             "argument --trials: '100000000000' is more than"),
        Case(f"{p}-trials-zero", ["brain", p, *plot, "--trials", "0"], "--trials"),
        Case(f"{p}-trials-400-digits", ["brain", p, *plot, "--trials", "9" * 400], "at most"),
        Case(f"{p}-seed-overflow", [*base, *plot, "--seed", "99999999999999999999"], "--seed"),
        Case(f"{p}-seed-negative", [*base, *plot, "--seed", "-5"], "--seed"),
        Case(f"{p}-strategy-unknown", [*base, *plot, "--strategy", "vote"], "invalid choice"),
    ]  # fmt: skip
    if not ROOT:  # root writes into a mode-555 folder: /sys above stands for it
        rows.append(
            Case(
                f"{p}-plot-read-only-tmp",
                [*base, "--plot", "{tmp}/ro/x.png"],
                "cannot write",
                prepare=make_folder("ro", 0o555),
            )  # fmt: skip
        )
    return rows


FIT = ["brain", "fit", "{tmp}/t.csv"]


def _fit(name: str, table: bytes | str, args: list[str], fragment: str) -> Case:
    def prepare(tmp: Path) -> None:
        make_file("t.csv", table)(tmp)
        (tmp / "adir.png").mkdir()

    return Case(f"fit-{name}", [*FIT, *args], fragment, prepare=prepare)


FIT_ROWS = [
    # the table file itself
    Case("fit-no-such-table", ["brain", "fit", "{tmp}/none.csv"], "none.csv: no such trial table"),
    Case("fit-table-is-a-folder", ["brain", "fit", "{tmp}/adir"], "adir: is a folder",
         prepare=make_folder("adir")),
    Case("fit-table-in-proc-self", ["brain", "fit", "/proc/self/mem"], "mem: cannot read"),
    _fit("empty-file", "", [], "empty file"),
    _fit("header-only", "stim_v,stim_a,resp_v\n", [], "no trials"),
    _fit("missing-column", "stim_v,resp_v\n1,1\n", [], "missing column(s) stim_a"),
    _fit("no-response-column", "stim_v,stim_a\n1,1\n", [], "no response column"),
    _fit("text-cell", "stim_v,stim_a,resp_v\n1,1,1\n1,x,2\n", [], "row 2, column 'stim_a'"),
    _fit("nan-cell", "stim_v,stim_a,resp_v\n1,nan,1\n", [], "row 1, column 'stim_a'"),
    _fit("empty-cell", "stim_v,stim_a,resp_v\n1,,1\n", [], "row 1, column 'stim_a'"),
    _fit("unity-two", "stim_v,stim_a,unity\n1,1,2\n", [], "row 1, column 'unity'"),
    _fit("resp-1e308", "stim_v,stim_a,resp_v\n1,1,1e308\n", [], "too large in magnitude"),
    _fit("field-200k", "stim_v,stim_a,resp_v\n1,1,1\n1,1," + "7" * 200_000 + "\n", [],
         "line 3 (row 2), column 'resp_v': malformed CSV"),
    _fit("number-100k-digits", "stim_v,stim_a,resp_v\n1,1," + "1" * 100_000 + "\n", [],
         "row 1, column 'resp_v'"),
    _fit("bom-then-bad-cell", b"\xef\xbb\xbfstim_v,stim_a,resp_v\n1,x,1\n", [],
         "row 1, column 'stim_a'"),
    _fit("duplicate-column", "stim_v,stim_a,resp_v,stim_v\n1,1,1,1\n", [],
         "column 'stim_v' appears twice"),
    _fit("latin-1", "stim_v,stim_a,resp_v,subject\n1,1,1,Jos\xe9\n".encode("latin-1"), [],
         "t.csv: line 2 (row 1)"),
    _fit("binary", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", [], "t.csv: line 3"),
    _fit("extra-field", "stim_v,stim_a,resp_v\n1,1,1\n1,1,1,9\n", [], "row 2: 4 fields"),
    _fit("short-row", "stim_v,stim_a,resp_v\n1,1\n", [], "row 1, column 'resp_v': missing"),
    _fit("one-trial", "stim_v,stim_a,unity\n0,0,1\n", [], "at least 6 trials"),
    _fit("response-outside-levels", GOOD, ["--levels", "0", "10"], "not one of the allowed"),
    # options
    _fit("fixed-1e308", GOOD, ["--fixed", "sigma_v=1e308"], "sigma_v=1e+308 is outside"),
    _fit("fixed-nan", GOOD, ["--fixed", "sigma_v=nan"], "--fixed: sigma_v"),
    _fit("fixed-negative", GOOD, ["--fixed", "sigma_a=-2"], "sigma_a"),
    _fit("fixed-probability", GOOD, ["--fixed", "p_common=1.5"], "p_common"),
    _fit("fixed-text", GOOD, ["--fixed", "sigma_v=abc"], "--fixed: sigma_v"),
    _fit("fixed-no-value", GOOD, ["--fixed", "sigma_v"], "NAME=VALUE"),
    _fit("fixed-unknown", GOOD, ["--fixed", "bogus=1"], "unknown parameter 'bogus'"),
    _fit("free-unknown", GOOD, ["--free", "bogus"], "--free: unknown parameter"),
    _fit("free-and-fixed", GOOD, ["--free", "lapse", "--fixed", "lapse=0.1"], "lapse: given as"),
    _fit("tie-other-kind", GOOD, ["--tie", "sigma_a=p_common"], "of its kind"),
    _fit("tie-unknown", GOOD, ["--tie", "sigma_a=bogus"], "unknown parameter"),
    _fit("levels-nan", GOOD, ["--levels", "nan", "5"], "--levels"),
    _fit("levels-one", GOOD, ["--levels", "5"], "at least two distinct"),
    _fit("levels-repeated", GOOD, ["--levels", "0", "0", "5"], "at least two distinct"),
    _fit("starts-zero", GOOD, ["--starts", "0"], "--starts"),
    _fit("starts-huge", GOOD, ["--starts", "1000000000"], "at most 1,000"),
    _fit("seed-overflow", GOOD, ["--seed", "99999999999999999999"], "--seed"),
    _fit("seed-negative", GOOD, ["--seed", "-5"], "--seed"),
    _fit("strategy-unknown", GOOD, ["--strategy", "vote"], "invalid choice"),
    # outputs, checked before the fit
    _fit("plot-is-a-folder", GOOD, ["--plot", "{tmp}/adir.png"], "is a folder"),
    _fit("plot-under-a-file", GOOD, ["--plot", "{tmp}/t.csv/f.png"], "is a file, not a folder"),
    _fit("plot-in-proc", GOOD, ["--plot", "/proc/x.png"], "--plot: /proc/x.png: cannot"),
    _fit("plot-no-suffix", GOOD, ["--plot", "{tmp}/xnoext"], "must end in .png"),
    _fit("plot-unity-only", "stim_v,stim_a,unity\n0,0,1\n0,5,0\n5,5,1\n0,0,0\n5,0,1\n0,5,1\n",
         ["--plot", "{tmp}/f.png"], "--plot: needs button"),
    _fit("json-in-proc", GOOD, ["--json", "/proc/x.json"], "--json: /proc/x.json: cannot"),
    _fit("json-suffix", GOOD, ["--json", "{tmp}/x.txt"], "must end in .json"),
]  # fmt: skip
if not ROOT:  # root reads files whatever their permissions: /proc/self/mem above stands for it
    FIT_ROWS.append(
        Case("fit-table-unreadable", FIT, "permission denied", prepare=make_file("t.csv", GOOD, 0))
    )

CASES = [row for p in ("ventriloquist", "flash", "mcgurk", "binding") for row in _paradigm_rows(p)]
CASES += FIT_ROWS
CASES.append(
    Case(
        "mcgurk-matching",
        ["brain", "mcgurk", "--plot", "{tmp}/p.png", "--strategy", "matching"],
        "--strategy: the McGurk model supports averaging or selection",
    )  # fmt: skip
)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_one_clear_line(case, check_case):
    check_case(case)


def test_nothing_is_written_when_an_output_is_refused(tmp_path, capsys):
    from synesthesia.cli import main

    (tmp_path / "adir.csv").mkdir()
    code = main(
        ["brain", "flash", "--plot", str(tmp_path / "p.png"), "--csv", str(tmp_path / "adir.csv")]
    )
    assert code == 2 and not (tmp_path / "p.png").exists()
    assert "wrote" not in capsys.readouterr().out


def test_a_table_with_a_byte_order_mark_is_fitted(tmp_path, capsys):
    from synesthesia.cli import main

    table = tmp_path / "bom.csv"
    table.write_bytes(b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode())
    assert (
        main(["brain", "fit", str(table), "--fixed", "sigma_p=10", "mu_p=2.5", "--starts", "1"])
        == 0
    )
    assert "log L" in capsys.readouterr().out
