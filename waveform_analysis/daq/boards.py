"""CAEN digitizer families: sample period, trigger-time-tag tick and ADC bits by model name.

A run's files rarely say which board wrote them; its file or folder names
often do (``1730_RAWTest``, ``WaveDumpConfig_1730B.txt``, ``DT5725_1360``).
:func:`board_from_name` finds the family in such a name. The x742 family
(DRS4 chips) has no fixed sample period: it comes from ``DRS4_FREQUENCY``
(:data:`DRS4_DT_NS`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Board:
    """One CAEN digitizer family (``x730`` stands for V1730, VX1730, DT5730, N6730)."""

    family: str
    dt_ns: float | None  # sample period; None: set by the DRS4 frequency (x742)
    ttt_ns: float  # tick of the standard firmware's 31-bit trigger time tag
    adc_bits: int


BOARDS: dict[str, Board] = {
    b.family: b
    for b in (
        Board("x720", 4.0, 8.0, 12),
        Board("x721", 2.0, 8.0, 8),
        Board("x724", 10.0, 10.0, 14),
        Board("x725", 4.0, 8.0, 14),
        Board("x730", 2.0, 8.0, 14),
        Board("x731", 2.0, 8.0, 8),
        Board("x740", 16.0, 16.0, 12),
        Board("x742", None, 8.5, 12),
        Board("x751", 1.0, 8.0, 10),
        Board("x761", 0.25, 8.5, 10),
        Board("x2730", 2.0, 8.0, 14),
        Board("x2740", 8.0, 8.0, 16),
        Board("x2745", 8.0, 8.0, 16),
    )
}

# DRS4_FREQUENCY code of a WaveDump config (0..3) or its value in MHz -> sample period
DRS4_DT_NS: dict[str, float] = {
    "0": 0.2, "5000": 0.2, "1": 0.4, "2500": 0.4, "2": 1.0, "1000": 1.0,
    "3": 4.0 / 3.0, "750": 4.0 / 3.0,
}  # fmt: skip

# V1730, VX1730B, DT5730SB, N6730, V2730, DT5725: a form digit, 7, the family's two digits
_MODEL_RE = re.compile(r"(?<![0-9])([1-9]?)7(2[0-5]|3[01]|4[025]|5[01]|61)(?![0-9])")


def board_from_name(text: str) -> Board | None:
    """The family named in ``text`` (a file or folder name), or None.

    ``1730_RAWTest-Board_0-001.dat`` -> x730; ``DT5725_1360`` -> x725;
    ``V2730`` -> x2730. The first model-like number wins.
    """
    for m in _MODEL_RE.finditer(text):
        gen, tail = m.group(1), m.group(2)
        family = f"x{gen if gen == '2' else ''}7{tail}"
        if family in BOARDS:
            return BOARDS[family]
    return None
