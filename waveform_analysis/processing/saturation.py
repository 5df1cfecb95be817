"""Which records are saturated: a sample at the ADC's limit, or the digitizer says so.

The 14-bit boards read here digitize ``ADC_MIN`` ... ``ADC_MAX_14BIT``
(:mod:`waveform_analysis.dtypes`); a sample at either end is a clipped
input. CoMPASS also marks saturation in FLAGS (CoMPASS user manual, FLAGS
table): ``0x80`` "saturation within the gate" and ``0x400`` "input
saturating". The documented path :mod:`waveform_analysis.saturation`
re-exports this module.
"""

from __future__ import annotations

import numpy as np

from ..dtypes import ADC_MAX_14BIT, ADC_MIN
from ..parallel import thread_map
from .rows import contiguous_rows

__all__ = [
    "ADC_MAX_14BIT",
    "ADC_MIN",
    "FLAG_INPUT_SATURATING",
    "FLAG_SATURATION_IN_GATE",
    "SATURATION_FLAGS",
    "saturated",
]

FLAG_SATURATION_IN_GATE = 0x80
FLAG_INPUT_SATURATING = 0x400
SATURATION_FLAGS = FLAG_SATURATION_IN_GATE | FLAG_INPUT_SATURATING


def saturated(
    records: np.ndarray,
    adc_min: int = ADC_MIN,
    adc_max: int = ADC_MAX_14BIT,
    flag_mask: int = SATURATION_FLAGS,
) -> np.ndarray:
    """Bool per record: a valid sample at ``adc_min``/``adc_max`` or a FLAGS bit of ``flag_mask``."""
    out = np.zeros(len(records), np.bool_)
    if len(records) == 0:
        return out
    from ._saturation_kernels import at_limit

    wave = contiguous_rows(records)  # rows read in place, not copied out of the records
    length = np.ascontiguousarray(records["length"], dtype=np.int64)
    n = len(records)
    edges = np.linspace(0, n, max(1, min(8, n // 2000)) + 1).astype(np.int64).tolist()
    thread_map(
        lambda b: at_limit(wave, length, int(adc_min), int(adc_max), out, b[0], b[1]),
        list(zip(edges[:-1], edges[1:])),
    )
    if flag_mask and "flags" in (records.dtype.names or ()):
        out |= (records["flags"] & np.uint32(flag_mask)) != 0
    return out
