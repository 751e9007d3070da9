"""The ``synesthesia brain`` command writes figures and CSVs, fits, and reports errors."""

import pytest

from synesthesia.brain import read_trials
from synesthesia.cli import main


@pytest.mark.parametrize("paradigm", ["ventriloquist", "flash", "mcgurk", "binding"])
def test_paradigm_writes_figure_and_csv(tmp_path, paradigm, capsys):
    png, csv = tmp_path / "f.png", tmp_path / "t.csv"
    assert main(["brain", paradigm, "--plot", str(png), "--csv", str(csv), "--trials", "5"]) == 0
    assert png.stat().st_size > 1000
    assert len(csv.read_text().splitlines()) > 5
    assert "wrote" in capsys.readouterr().out


def test_fit_flash_table(tmp_path, capsys):
    csv = tmp_path / "flash.csv"
    assert main(["brain", "flash", "--plot", str(tmp_path / "f.png"), "--csv", str(csv)]) == 0
    assert len(read_trials(csv)) == 9 * 40
    code = main(
        [
            "brain",
            "fit",
            str(csv),
            "--strategy",
            "averaging",
            "--fixed",
            "mu_p=1.5",
            "--starts",
            "1",
            "--plot",
            str(tmp_path / "fit.png"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "sigma_v" in out and "std.err" in out and "AIC" in out
    assert (tmp_path / "fit.png").exists()


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
