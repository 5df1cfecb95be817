"""The CAEN board family named in a file or folder name, and its trigger-time-tag tick.

A WaveDump run or a readout dump rarely says which board wrote it; its file
or folder names often do (``1730_RAWTest-Board_0-001.dat``,
``WaveDumpConfig_1730B_TPB.txt``). :func:`family_in_name` finds the first
model-like word there that :func:`waveform_analysis.daq.models.family` knows.
"""

from __future__ import annotations

import re

from .models import Family, family

# the standard firmware's 31-bit trigger time tag ticks; every other family: 8 ns
TTT_NS = {"x724": 10.0, "x740": 16.0, "x742": 8.5, "x743": 5.0, "x761": 8.5}
DEFAULT_TTT_NS = 8.0

_MODEL_WORD_RE = re.compile(r"(?<![A-Za-z0-9])(?:VX|DT|V|N|R|X)?\d{4}[A-Za-z]*(?![0-9])", re.I)


def family_in_name(text: str) -> tuple[Family, str] | None:
    """(family, the model word) of the first CAEN model named in ``text``, or None.

    ``1730_RAWTest-Board_0-001.dat`` -> x730 (``1730``); ``DT5725_1360`` ->
    x725; serial numbers and years (``1463``, ``2024``) name no family.
    """
    for m in _MODEL_WORD_RE.finditer(text):
        fam = family(m.group(0))
        if fam is not None:
            return fam, m.group(0)
    return None


def ttt_ns(fam: Family) -> float:
    """The tick of ``fam``'s standard-firmware trigger time tag [ns]."""
    return TTT_NS.get(fam.name, DEFAULT_TTT_NS)
