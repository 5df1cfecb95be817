"""Column layout of a CoMPASS CSV file, read from its header line.

CoMPASS 2.x writes ``BOARD;CHANNEL;TIMETAG;ENERGY;ENERGYSHORT;FLAGS;PROBE_CODE;SAMPLES``
(``PROBE_CODE`` only in some versions), CoMPASS 1.x ``TIMETAG;ENERGY;ENERGYSHORT;FLAGS;SAMPLES``.
With the energy saved calibrated too, CoMPASS adds ``CALIB_ENERGY`` (a decimal, in
the calibration's unit, e.g. keV) after ``ENERGY``; energies may be written as
decimals. ``SAMPLES`` is the last column and runs to the end of the line; without it
the file is list mode (one energy, time and flags per trigger, no samples:
``BOARD;CHANNEL;TIMETAG;ENERGY;ENERGYSHORT;FLAGS``). The positions
found here are passed to the parsing kernel, so any order of the fixed
columns is read right.
"""

from __future__ import annotations

from dataclasses import dataclass

COLUMNS_2X = (
    "BOARD", "CHANNEL", "TIMETAG", "ENERGY", "ENERGYSHORT", "FLAGS", "PROBE_CODE", "SAMPLES",
)
COLUMNS_1X = ("TIMETAG", "ENERGY", "ENERGYSHORT", "FLAGS", "SAMPLES")
COLUMNS_2X_LIST = ("BOARD", "CHANNEL", "TIMETAG", "ENERGY", "ENERGYSHORT", "FLAGS")


@dataclass(frozen=True)
class Columns:
    """Where the fields are: ``n_fixed`` columns precede the samples (all of them in list
    mode, ``has_samples`` False); -1 marks an absent column."""

    names: tuple[str, ...]
    n_fixed: int
    board: int
    channel: int
    timetag: int
    flags: int
    energy: int = -1
    energy_short: int = -1
    has_samples: bool = True
    energy_calibrated: int = -1

    @classmethod
    def from_names(cls, names: tuple[str, ...] | list[str]) -> Columns:
        """Columns from header names; ``ValueError`` (with the reason) for an unusable header."""
        names = tuple(n.strip().upper() for n in names)
        has_samples = "SAMPLES" in names
        if has_samples and names.index("SAMPLES") != len(names) - 1:
            raise ValueError(f"header {';'.join(names)}: SAMPLES must be the last column")
        if "TIMETAG" not in names:
            raise ValueError(f"header {';'.join(names)} has no TIMETAG column")
        for n in set(names):
            if names.count(n) > 1:
                raise ValueError(f"header {';'.join(names)} names {n} twice")

        def at(name: str) -> int:
            return names.index(name) if name in names else -1

        n_fixed = len(names) - 1 if has_samples else len(names)
        return cls(names, n_fixed, at("BOARD"), at("CHANNEL"), at("TIMETAG"), at("FLAGS"),
                   at("ENERGY"), at("ENERGYSHORT"), has_samples, at("CALIB_ENERGY"))

    def kernel_args(self) -> tuple[int, int, int, int, int, int, int, int]:
        """(n_fixed, board, channel, timetag, flags, energy, energy_short, energy_calibrated) as
        the kernel takes them."""
        return (self.n_fixed, self.board, self.channel, self.timetag, self.flags, self.energy,
                self.energy_short, self.energy_calibrated)

    @property
    def energy_fields(self) -> tuple[str, ...]:
        """The firmware energies these columns hold."""
        pairs = (("energy", self.energy), ("energy_short", self.energy_short),
                 ("energy_calibrated", self.energy_calibrated))
        return tuple(f for f, c in pairs if c >= 0)

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
DEFAULT_2X_LIST = Columns.from_names(COLUMNS_2X_LIST)
