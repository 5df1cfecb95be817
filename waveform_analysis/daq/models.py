"""CAEN digitizer families: sample period and ADC bits from a board model name.

A model name (``DT5725``, ``V1730B``, ``VX2730``, ``DT5730SB``, ``N6725``,
``V1742``) names its family by its digits: the last three for the x7xx
boards (``x725``), all four for the Digitizer 2.0 boards (``x2730``). The
table holds the sampling of each family as CAEN's data sheets give it; the
x742 (DRS4) samples at the DRS4 frequency its settings choose, so it has no
entry here (:func:`drs4_dt_ns`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    """One digitizer family: its name (``x725``), sample period [ns] and ADC bits."""

    name: str
    dt_ns: float | None
    adc_bits: int


FAMILIES = {
    "720": Family("x720", 4.0, 12),
    "721": Family("x721", 2.0, 8),
    "724": Family("x724", 10.0, 14),
    "725": Family("x725", 4.0, 14),
    "730": Family("x730", 2.0, 14),
    "740": Family("x740", 16.0, 12),
    "742": Family("x742", None, 12),  # DRS4: from DRS4_FREQUENCY
    "743": Family("x743", None, 12),  # SAMLONG: from its sampling setting
    "751": Family("x751", 1.0, 10),
    "761": Family("x761", 0.25, 10),
    "780": Family("x780", 10.0, 14),  # DT5780 / N6780 digital MCA
    "781": Family("x781", 10.0, 14),  # DT5781 / V1781 / N6781 digital MCA
    "790": Family("x790", 4.0, 12),  # DT5790 PSD digitizer
    "2730": Family("x2730", 2.0, 14),
    "2740": Family("x2740", 8.0, 16),
    "2745": Family("x2745", 8.0, 16),
    "2751": Family("x2751", 1.0, 14),
}

DRS4_FREQUENCIES_MHZ = {0: 5000.0, 1: 2500.0, 2: 1000.0, 3: 750.0}  # CAEN_DGTZ_DRS4Frequency_t

_MODEL_RE = re.compile(r"^(?:VX|DT|V|N|R|X)?(\d{4})[A-Z]*$", re.IGNORECASE)


def family(model: str | None) -> Family | None:
    """The family of ``model`` (None when the name is not a CAEN model the table holds)."""
    if not model:
        return None
    m = _MODEL_RE.match(model.strip())
    if not m:
        return None
    digits = m.group(1)
    if digits.startswith("27"):
        return FAMILIES.get(digits)
    return FAMILIES.get(digits[1:])


def drs4_dt_ns(setting: int | str | float) -> float:
    """Sample period of an x742 at DRS4 frequency ``setting``: its index (0-3, as WaveDump's
    ``DRS4_FREQUENCY``) or a frequency in MHz/GHz-free number (e.g. 750)."""
    value = float(setting)
    mhz = DRS4_FREQUENCIES_MHZ.get(int(value)) if value.is_integer() and value < 4 else value
    if not mhz or mhz <= 0:
        raise ValueError(f"unknown DRS4 frequency {setting!r}")
    return 1000.0 / mhz
