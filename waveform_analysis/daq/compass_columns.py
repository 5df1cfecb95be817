"""Column layout of a CoMPASS CSV file, read from its header line.

CoMPASS 2.x writes ``BOARD;CHANNEL;TIMETAG;ENERGY;ENERGYSHORT;FLAGS;PROBE_CODE;SAMPLES``
(``PROBE_CODE`` only in some versions), CoMPASS 1.x ``TIMETAG;ENERGY;ENERGYSHORT;FLAGS;SAMPLES``.
``SAMPLES`` is the last column and runs to the end of the line. The positions
found here are passed to the parsing kernel, so any order of the fixed
columns is read right.
"""

from __future__ import annotations

from dataclasses import dataclass

COLUMNS_2X = ("BOARD", "CHANNEL", "TIMETAG", "ENERGY", "ENERGYSHORT", "FLAGS", "PROBE_CODE",
              "SAMPLES")  # fmt: skip
COLUMNS_1X = ("TIMETAG", "ENERGY", "ENERGYSHORT", "FLAGS", "SAMPLES")


@dataclass(frozen=True)
class Columns:
    """Where the fields are: ``n_fixed`` columns precede the samples; -1 marks an absent column."""

    names: tuple[str, ...]
    n_fixed: int
    board: int
    channel: int
    timetag: int
    flags: int

    @classmethod
    def from_names(cls, names: tuple[str, ...] | list[str]) -> Columns:
        """Columns from header names; ``ValueError`` (with the reason) for an unusable header."""
        names = tuple(n.strip().upper() for n in names)
        if "SAMPLES" not in names:
            raise ValueError(
                f"header {';'.join(names)} has no SAMPLES column (waveforms were not saved)"
            )
        if names.index("SAMPLES") != len(names) - 1:
            raise ValueError(f"header {';'.join(names)}: SAMPLES must be the last column")
        if "TIMETAG" not in names:
            raise ValueError(f"header {';'.join(names)} has no TIMETAG column")
        for n in set(names):
            if names.count(n) > 1:
                raise ValueError(f"header {';'.join(names)} names {n} twice")

        def at(name: str) -> int:
            return names.index(name) if name in names else -1

        return cls(names, len(names) - 1, at("BOARD"), at("CHANNEL"), at("TIMETAG"), at("FLAGS"))

    def kernel_args(self) -> tuple[int, int, int, int, int]:
        """(n_fixed, board, channel, timetag, flags) as the parsing kernel takes them."""
        return self.n_fixed, self.board, self.channel, self.timetag, self.flags

    def header(self) -> str:
        return ";".join(self.names)


def header_columns(header_text: str) -> tuple[Columns | None, bool]:
    """(columns named by the last header line naming TIMETAG or SAMPLES, comma-delimited?).

    Returns ``(None, False)`` when no header line names columns (a later
    segment, or only a title line); ``ValueError`` for an unusable header.
    """
    for line in reversed(header_text.splitlines()):
        upper = line.strip().upper()
        if "TIMETAG" in upper or "SAMPLES" in upper:
            if ";" not in upper and "," in upper:
                return None, True
            return Columns.from_names(upper.split(";")), False
    return None, False


DEFAULT_2X = Columns.from_names(COLUMNS_2X)
DEFAULT_1X = Columns.from_names(COLUMNS_1X)
