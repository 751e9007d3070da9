"""Trial-table validation: every bad cell is named by row and column."""

import numpy as np
import pytest

from synesthesia.brain import Trials, fit_causal_inference, read_trials, write_trials


def _write(tmp_path, text):
    p = tmp_path / "t.csv"
    p.write_text(text)
    return p


def test_roundtrip(tmp_path):
    t = Trials(
        np.array([[0.0, 5.0], [5.0, 5.0]]), np.array([[0.0], [5.0]]), (1,), np.array([1.0, 0])
    )
    p = write_trials(t, tmp_path / "x.csv")
    back = read_trials(p)
    np.testing.assert_array_equal(back.stimuli, t.stimuli)
    np.testing.assert_array_equal(back.responses, t.responses)
    assert back.reported == (1,) and back.unity.tolist() == [1.0, 0.0]


@pytest.mark.parametrize(
    "text,match",
    [
        ("stim_v,resp_v\n1,1\n", r"missing column\(s\) stim_a"),
        ("stim_v,stim_a\n1,1\n", "no response column"),
        ("stim_v,stim_a,resp_a\n1,1,1\n2,nan,1\n", r"row 2, column 'stim_a'.*NaN"),
        ("stim_v,stim_a,resp_a\n1,1,1\n2,2,\n", r"row 2, column 'resp_a'"),
        ("stim_v,stim_a,resp_a\n1,1,abc\n", r"row 1, column 'resp_a'.*not a number"),
        ("stim_v,stim_a,unity\n1,1,1\n1,2,2\n", r"row 2, column 'unity'"),
    ],
)
def test_bad_tables_name_row_and_column(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        read_trials(_write(tmp_path, text))


def test_response_outside_levels(tmp_path):
    p = _write(tmp_path, "stim_v,stim_a,resp_v\n0,0,0\n0,5,7\n")
    with pytest.raises(ValueError, match=r"row 2, column 'resp_v'.*not one of the allowed levels"):
        read_trials(p, levels=[-5, 0, 5])


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="no such trial table"):
        read_trials("/nonexistent/trials.csv")


@pytest.mark.parametrize(
    "fixed,match",
    [({"sigma_v": -1.0}, "sigma_v: a noise parameter must be > 0"), ({"lapse": 2}, "lapse")],
)
def test_negative_noise_parameters_are_rejected(fixed, match):
    t = Trials(np.array([[0.0, 5.0], [5.0, 5.0]]), np.array([[0.0], [5.0]]), (1,))
    with pytest.raises(ValueError, match=match):
        fit_causal_inference(t, fixed=fixed)


def test_fit_rejects_responses_outside_given_levels():
    t = Trials(np.array([[0.0, 5.0], [5.0, 5.0]]), np.array([[0.0], [3.0]]), (1,), source="x.csv")
    with pytest.raises(ValueError, match=r"x.csv: row 2, column 'resp_a'.*not one of the levels"):
        fit_causal_inference(t, levels=[-5, 0, 5])
