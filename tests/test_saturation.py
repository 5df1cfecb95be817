"""Saturation (processing/saturation.py): a valid sample at an ADC limit, or a CoMPASS flag."""

from __future__ import annotations

import numpy as np

from waveform_analysis import dtypes
from waveform_analysis.dtypes import st_waveforms_dtype
from waveform_analysis.processing.saturation import (
    FLAG_INPUT_SATURATING,
    FLAG_SATURATION_IN_GATE,
    SATURATION_FLAGS,
    saturated,
)


def test_samples_at_either_limit_and_the_adc_max_option():
    st = np.zeros(4, dtype=st_waveforms_dtype(5))
    st["wave"] = 8000
    st["length"] = 5
    st["wave"][1, 3] = 0
    st["wave"][2, 1] = dtypes.ADC_MAX_14BIT
    st["wave"][3, 4] = 12000
    assert list(saturated(st)) == [False, True, True, False]
    assert list(saturated(st, adc_max=12000)) == [False, True, True, True]
    assert list(saturated(st, adc_max=20000)) == [False, True, False, False]


def test_padding_beyond_length_and_empty_records():
    st = np.zeros(3, dtype=st_waveforms_dtype(4))
    st["wave"] = 8000
    st["wave"][0, 2:] = 0  # zero padding past length
    st["length"] = [2, 4, 0]
    assert list(saturated(st)) == [False, False, False]
    assert saturated(st[:0]).size == 0


def test_flags_and_the_documented_path():
    import waveform_analysis.saturation as documented

    st = np.zeros(3, dtype=st_waveforms_dtype(4))
    st["wave"] = 8000
    st["length"] = 4
    st["flags"] = [FLAG_SATURATION_IN_GATE, FLAG_INPUT_SATURATING, 0x1]
    assert list(saturated(st)) == [True, True, False]
    assert list(saturated(st, flag_mask=0)) == [False, False, False]
    assert documented.SATURATION_FLAGS == SATURATION_FLAGS == 0x480
    assert documented.saturated is saturated
    assert documented.ADC_MAX_14BIT == dtypes.ADC_MAX_14BIT == 16383


def test_many_records_over_threads_match_one_thread():
    from waveform_analysis.parallel import kernel_threads

    rng = np.random.default_rng(3)
    st = np.zeros(20_000, dtype=st_waveforms_dtype(16))
    st["wave"] = rng.integers(1, 16383, size=st["wave"].shape)
    st["length"] = 16
    st["wave"][rng.choice(len(st), 50, replace=False), 7] = 0
    with kernel_threads(1):
        one = saturated(st)
    np.testing.assert_array_equal(saturated(st), one)
    assert one.sum() == 50
