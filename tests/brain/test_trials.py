"""Trial-table validation: every bad cell is named by row and column."""

import csv

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synesthesia.brain import Trials, fit_causal_inference, read_trials, write_trials
from synesthesia.brain.trials import parse_trials
from synesthesia.errors import InputError


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
    with pytest.raises(InputError, match=match):
        read_trials(_write(tmp_path, text))


def _write_bytes(tmp_path, data: bytes):
    p = tmp_path / "t.csv"
    p.write_bytes(data)
    return p


def test_a_utf8_byte_order_mark_is_read(tmp_path):
    t = read_trials(_write_bytes(tmp_path, b"\xef\xbb\xbfstim_v,stim_a,resp_v\r\n1,2,3\r\n"))
    assert t.stimuli.tolist() == [[1.0, 2.0]] and t.responses.tolist() == [[3.0]]


LONG = "9" * (csv.field_size_limit() + 10)
BAD_FILES = [
    # (bytes, fragments the one-line message must hold)
    (b"stim_v,stim_a,resp_v\n1,2,3\n1,2," + LONG.encode() + b"\n", ["row 2", "column 'resp_v'"]),
    (b"stim_v,stim_a,resp_v\n1,2,3\n1,\xe9,3\n", ["line 3 (row 2)", "not UTF-8"]),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ["line 3", "binary file"]),
    (b"stim_v,stim_a,stim_v,resp_v\n1,2,3,4\n", ["'stim_v' appears twice", "columns 1 and 3"]),
    (b"stim_v,stim_a,resp_v\n1,2,3\n1,2,3,4\n", ["row 2", "4 fields", "3 columns"]),
    (b"stim_v,stim_a,resp_v\n1,2\n", ["row 1, column 'resp_v'", "missing"]),
    (b"stim_v,stim_a,resp_v\n1,2,1e308\n", ["row 1, column 'resp_v'", "too large"]),
    (b"stim_v,stim_a,resp_v\n1,2," + b"1" * 100_000 + b"\n", ["row 1, column 'resp_v'"]),
    (b"stim_v,stim_a,resp_v\n", ["no trials"]),
    (b"", ["empty file"]),
]


@pytest.mark.parametrize("data,fragments", BAD_FILES, ids=range(len(BAD_FILES)))
def test_malformed_files_give_one_short_line_naming_file_row_and_column(tmp_path, data, fragments):
    path = _write_bytes(tmp_path, data)
    with pytest.raises(InputError) as info:
        read_trials(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message and len(message) < 400, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_a_folder_or_a_missing_file_is_named(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        read_trials(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such trial table"):
        read_trials(tmp_path / "none.csv")


WHERE = ("row", "line", "column", "header", "empty file", "no trials")
CELLS = ["stim_v", "stim_a", "resp_v", "resp_a", "unity", "subject", "1", "0", "-5", "2.5"]
CELLS += ["nan", "inf", "1e308", "x", "", " ", '"', '"a,b"', "\ufeff", "\x00", "\r", "é"]


def _check_parse(data) -> None:
    try:
        trials = parse_trials(data, source="fuzz.csv")
    except InputError as exc:
        message = str(exc)
        assert message.startswith("fuzz.csv: ") and len(message) < 600, message
        assert any(w in message for w in WHERE), message
        assert "\n" not in message.replace("\\n", ""), message
    else:
        assert isinstance(trials, Trials) and len(trials) >= 1
        assert np.all(np.isfinite(trials.stimuli))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_give_a_table_or_one_input_error(data):
    _check_parse(data)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(CELLS), min_size=0, max_size=6), min_size=0, max_size=6).map(
        lambda rows: "\n".join(",".join(r) for r in rows)
    ),
    st.booleans(),
)
def test_any_csv_like_text_gives_a_table_or_one_input_error(text, as_bytes):
    _check_parse(text.encode("utf-8") if as_bytes else text)


def test_a_one_trial_table_is_refused_with_the_minimum():
    t = Trials(np.array([[0.0, 5.0]]), unity=np.array([1.0]), source="one.csv")
    with pytest.raises(
        InputError, match=r"one.csv: 1 trial\(s\) cannot identify 5 free .* at least 6"
    ):
        fit_causal_inference(t)


def test_response_outside_levels(tmp_path):
    p = _write(tmp_path, "stim_v,stim_a,resp_v\n0,0,0\n0,5,7\n")
    with pytest.raises(InputError, match=r"row 2, column 'resp_v'.*not one of the allowed levels"):
        read_trials(p, levels=[-5, 0, 5])


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="no such trial table"):
        read_trials("/nonexistent/trials.csv")


@pytest.mark.parametrize(
    "fixed,match",
    [
        ({"sigma_v": -1.0}, "sigma_v: a noise parameter must be > 0"),
        ({"lapse": 2}, "lapse"),
        ({"sigma_v": 1e308}, "sigma_v=1e[+]308 is outside the range"),
        ({"p_common": float("nan")}, "p_common: expected a finite number"),
    ],
)
def test_bad_fixed_parameters_are_rejected(fixed, match):
    t = Trials(np.array([[0.0, 5.0], [5.0, 5.0]]), np.array([[0.0], [5.0]]), (1,))
    with pytest.raises(InputError, match=match):
        fit_causal_inference(t, fixed=fixed)


def test_fit_rejects_responses_outside_given_levels():
    t = Trials(np.array([[0.0, 5.0], [5.0, 5.0]]), np.array([[0.0], [3.0]]), (1,), source="x.csv")
    with pytest.raises(InputError, match=r"x.csv: row 2, column 'resp_a'.*not one of the levels"):
        fit_causal_inference(t, levels=[-5, 0, 5])
