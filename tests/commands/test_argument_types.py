"""Property-based fuzzing of every numeric argument type the commands share.

For any text: either a value that meets the type's contract, or one argparse error with a
short message, never another exception (overflow, NaN, a 100,000-digit number, ...).
"""

from __future__ import annotations

import argparse
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synesthesia.commands import _shared

TYPES = {
    "positive_float": (_shared.positive_float, lambda v: math.isfinite(v) and v > 0),
    "nonnegative_float": (_shared.nonnegative_float, lambda v: math.isfinite(v) and v >= 0),
    "positive_int": (_shared.positive_int, lambda v: isinstance(v, int) and v >= 1),
    "seed_int": (_shared.seed_int, lambda v: isinstance(v, int) and 0 <= v <= 2**63 - 1),
    "guidance_float": (_shared.guidance_float, lambda v: math.isfinite(v) and 0 <= v <= 100),
    "count_up_to_1000": (
        _shared.count_up_to(1000),
        lambda v: isinstance(v, int) and 1 <= v <= 1000,
    ),
}

texts = st.one_of(
    st.text(max_size=40),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(
        [
            "nan",
            "inf",
            "-inf",
            "1e308",
            "1e309",
            "-0",
            "0x10",
            " 7 ",
            "1_000",
            "9" * 400,
            "9" * 5000,
        ]
    ),
)


@pytest.mark.parametrize("name", sorted(TYPES))
@settings(max_examples=300, deadline=None)
@given(text=texts)
def test_any_text_gives_a_value_or_one_short_error(name, text):
    parse, contract = TYPES[name]
    try:
        value = parse(text)
    except argparse.ArgumentTypeError as exc:
        message = str(exc)
        assert "\n" not in message and len(message) < 200, message
        return
    assert contract(value), (text, value)


def test_examples_by_hand():
    assert _shared.seed_int("0") == 0 and _shared.seed_int(str(2**63 - 1)) == 2**63 - 1
    for bad in ("-1", str(2**63), "99999999999999999999", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            _shared.seed_int(bad)
    assert _shared.guidance_float("2.5") == 2.5
    for bad in ("nan", "1e308", "-3", "100.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            _shared.guidance_float(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="at most 1,000"):
        _shared.count_up_to(1000)("1001")
    with pytest.raises(argparse.ArgumentTypeError, match="characters"):
        _shared.positive_int("9" * 5000)  # shortened, not echoed whole
