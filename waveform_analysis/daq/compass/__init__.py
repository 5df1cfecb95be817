"""CAEN CoMPASS output: CSV and BIN, 1.x and 2.x, with or without waveforms.

:class:`CompassAdapter` (``daq_adapter="compass"``) lists a run's files
(:mod:`.files`), says what the run is (:mod:`.settings`: ``settings.xml``,
``run.info``, the board model in the file names) and reads it with the CSV
(:mod:`.csv_reader`) or BIN (:mod:`.bin_reader`) reader. ``"vx2730"``
(:class:`VX2730Adapter`) is the same reader for VX2730 runs: a run whose files
name no board model is read as a VX2730's (2 ns).
"""

from __future__ import annotations

from .adapter import CompassAdapter, VX2730Adapter

__all__ = ["CompassAdapter", "VX2730Adapter"]
