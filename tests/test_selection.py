"""Selections parsed from text equal the numpy masks they describe, and bad text is a ConfigError."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from waveform_analysis.analysis.selection import apply_selection, parse_selection, selection_mask
from waveform_analysis.errors import ConfigError

DTYPE = np.dtype([("time", np.int64), ("energy", np.float32), ("psd", np.float64),
                  ("channel", np.int16), ("pileup", np.bool_), ("wave", np.int16, (4,))])
FIELDS = ("energy", "psd", "channel")
OPS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
       "==": np.equal, "!=": np.not_equal}


def _data(n: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    d = np.zeros(n, DTYPE)
    d["time"] = np.sort(rng.integers(0, 10_000_000_000, n))
    d["energy"] = rng.integers(-5, 50, n)
    d["psd"] = rng.integers(0, 10, n) / 10
    d["channel"] = rng.integers(0, 4, n)
    d["pileup"] = rng.random(n) < 0.3
    return d


numbers = st.one_of(st.integers(-10, 60), st.sampled_from([0.1, 0.25, 0.5, 2.5, -1.5, 1e1]))


@st.composite
def comparisons(draw):
    field = draw(st.sampled_from(FIELDS))
    op = draw(st.sampled_from(sorted(OPS)))
    value = draw(numbers)
    if draw(st.booleans()):
        return f"{field} {op} {value}", lambda d: OPS[op](d[field], value)
    return f"{value}{op}{field}", lambda d: OPS[op](value, d[field])


def _combine(children):
    def node(parts):
        (a, fa), (b, fb), how = parts
        if how == "&":
            return f"({a}) & ({b})", lambda d: fa(d) & fb(d)
        if how == "|":
            return f"({a})|({b})", lambda d: fa(d) | fb(d)
        return f"~({a})", lambda d: ~fa(d)

    return st.tuples(children, children, st.sampled_from(["&", "|", "~"])).map(node)


@settings(max_examples=150, deadline=None)
@given(st.recursive(comparisons(), _combine, max_leaves=6), st.integers(0, 3))
def test_a_parsed_selection_equals_the_numpy_mask(case, seed):
    text, oracle = case
    d = _data(seed=seed)
    np.testing.assert_array_equal(selection_mask(d, text), oracle(d))


def test_comparisons_bind_tighter_than_and_or_and_or_looser_than_and():
    d = _data()
    got = selection_mask(d, "energy > 10 & psd < 0.5 | channel == 3")
    np.testing.assert_array_equal(got, ((d["energy"] > 10) & (d["psd"] < 0.5)) | (d["channel"] == 3))
    got = selection_mask(d, "~pileup & energy >= -2.5e0")
    np.testing.assert_array_equal(got, ~d["pileup"] & (d["energy"] >= -2.5))
    np.testing.assert_array_equal(selection_mask(d, "psd < energy"), d["psd"] < d["energy"])


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("energi > 3", "no field 'energi' at position 0; did you mean 'energy'?"),
        ("energy > 3 $ psd < 1", "unexpected character '$' at position 11"),
        ("energy > 3 &", "expected a field name or a number at position 12, found the end"),
        ("(energy > 3", "expected ')'"),
        ("energy 3", "expected a comparison"),
        ("energy > 3 psd", "found 'psd'"),
        ("1 < 2", "compares two numbers"),
        ("wave > 3", "field 'wave' holds (4,) values per row"),
        ("__import__('os')", "unexpected character"),
        ("__import__ > 1", "no field '__import__'"),
        ("", "is empty"),
    ],
)
def test_a_string_that_is_not_a_selection_is_a_config_error_naming_the_token(text, named):
    with pytest.raises(ConfigError) as err:
        parse_selection(text, DTYPE)
    assert named in str(err.value)


def test_a_callable_selection_and_its_checks():
    d = _data()
    np.testing.assert_array_equal(selection_mask(d, lambda a: a["channel"] == 1), d["channel"] == 1)
    with pytest.raises(ConfigError, match="bool array of shape"):
        selection_mask(d, lambda a: a["channel"])


def test_time_and_seconds_ranges_are_half_open_in_ns_and_seconds():
    d = _data()
    got = apply_selection(d, "channel != 0", seconds_range=(1, 4.5))
    want = d[(d["channel"] != 0) & (d["time"] >= 1e9) & (d["time"] < 4.5e9)]
    np.testing.assert_array_equal(got, want)
    got = apply_selection(d, time_range=(2_000_000_000, 3_000_000_000))
    np.testing.assert_array_equal(got["time"], d["time"][(d["time"] >= 2e9) & (d["time"] < 3e9)])
    assert apply_selection(d) is d
    with pytest.raises(ConfigError, match="seconds_range must be two numbers"):
        selection_mask(d, seconds_range=("a", 2))


def test_seconds_range_counts_from_the_run_start_exactly_at_epoch_scale():
    start = 1_733_000_000_123_456_789  # ns since the epoch: more digits than a float64 holds
    d = np.zeros(5, DTYPE)
    d["time"] = start + np.array([0, 999_999_999, 1_000_000_000, 1_999_999_999, 2_000_000_000])
    got = selection_mask(d, seconds_range=(1, 2), run_start_ns=start)
    np.testing.assert_array_equal(got, [False, False, True, True, False])
    got = selection_mask(d, time_range=(start + 1, start + 2_000_000_000))
    np.testing.assert_array_equal(got, [False, True, True, True, False])
