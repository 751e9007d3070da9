"""The ``synesthesia brain`` command writes figures and CSVs, fits, and reports errors."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synesthesia.brain import FLASH_DEFAULTS, fit_causal_inference, read_trials
from synesthesia.cli import main


@pytest.mark.parametrize("paradigm", ["ventriloquist", "flash", "mcgurk", "binding"])
def test_paradigm_writes_figure_and_csv(tmp_path, paradigm, capsys):
    png, csv = tmp_path / "f.png", tmp_path / "t.csv"
    assert main(["brain", paradigm, "--plot", str(png), "--csv", str(csv), "--trials", "5"]) == 0
    assert png.stat().st_size > 1000
    assert len(csv.read_text().splitlines()) > 5
    assert "wrote" in capsys.readouterr().out


def test_fit_prints_and_writes_the_library_fit_and_recovers_the_truth(tmp_path, capsys):
    csv, out = tmp_path / "flash.csv", tmp_path / "fit.json"
    assert main(["brain", "flash", "--plot", str(tmp_path / "f.png"), "--csv", str(csv)]) == 0
    trials = read_trials(csv)
    assert len(trials) == 9 * 40
    argv = ["brain", "fit", str(csv), "--fixed", "mu_p=1.5", "--starts", "1", "--json", str(out)]
    code = main([*argv, "--plot", str(tmp_path / "fit.png")])
    printed = capsys.readouterr().out
    assert code == 0 and (tmp_path / "fit.png").stat().st_size > 1000
    # the command's numbers are the library's: the same fit called directly
    direct = fit_causal_inference(trials, "averaging", fixed={"mu_p": 1.5}, n_starts=1, seed=0)
    (written,) = json.loads(out.read_text())
    for name, value in direct.params.items():
        assert written["params"][name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    assert written["nll"] == pytest.approx(direct.nll, rel=1e-12)
    rows = {line.split()[0]: line.split() for line in printed.splitlines() if line.strip()}
    for name in direct.free:
        assert float(rows[name][1]) == pytest.approx(direct.params[name], rel=6e-4), name
        assert float(rows[name][2]) == pytest.approx(direct.se[name], rel=6e-3), name
    # and the fit recovers the simulating observer (FLASH_DEFAULTS) within 4 standard errors
    for name in ("sigma_v", "sigma_a", "p_common"):
        err = abs(written["params"][name] - FLASH_DEFAULTS[name])
        assert err < 4 * written["se"][name], (name, written["params"][name], written["se"][name])
    assert np.isfinite(written["aic"]) and written["converged"]


def test_fit_bad_table_is_one_line_error(tmp_path, capsys):
    csv = tmp_path / "bad.csv"
    csv.write_text("stim_v,stim_a,resp_v\n1,1,1\n1,x,2\n")
    assert main(["brain", "fit", str(csv)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "row 2, column 'stim_a'" in err


def test_fit_negative_fixed_noise(tmp_path, capsys):
    csv = tmp_path / "t.csv"
    csv.write_text("stim_v,stim_a,resp_v\n1,1,1\n1,2,2\n")
    assert main(["brain", "fit", str(csv), "--fixed", "sigma_a=-2"]) == 2
    assert "sigma_a" in capsys.readouterr().err


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40) | st.floats().map(repr) | st.integers().map(str))
def test_the_levels_type_gives_a_finite_number_or_one_argparse_error(text):
    import argparse
    import math

    from synesthesia.commands.brain import _finite_float

    try:
        value = _finite_float(text)
    except argparse.ArgumentTypeError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 200
    else:
        assert math.isfinite(value)
