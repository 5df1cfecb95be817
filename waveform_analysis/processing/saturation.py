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
from ..parallel import row_parts, thread_map
from .rows import flat_rows

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

    flat, stride, offset = flat_rows(records)  # rows read in place, not copied out of the records
    ns = records["wave"].shape[1] if records["wave"].ndim > 1 else 1
    length = np.ascontiguousarray(records["length"], dtype=np.int64)
    thread_map(
        lambda b: at_limit(flat, stride, offset, ns, length, int(adc_min), int(adc_max), out, b[0], b[1]),
        row_parts(len(records)),
    )
    if flag_mask and "flags" in (records.dtype.names or ()):
        out |= (records["flags"] & np.uint32(flag_mask)) != 0
    return out
