"""Load the numba kernels of the readers before a run needs them (see :mod:`waveform_analysis.processing.warmup`).

Each reader's kernels are called on empty or two-row buffers with the argument
types its real reads pass (a one-row or empty block's fields would be
contiguous: another signature).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import numpy as np

__all__ = ["READERS", "warm_up_readers"]


def _fields() -> np.ndarray:
    """Two records as a reader's output block: their fields are strided ('A' layout in
    numba), which an empty or one-row block's would not be."""
    from ..dtypes import st_waveforms_dtype

    return np.zeros(2, st_waveforms_dtype(4))


def _v1725() -> None:
    """The V1725 (DPP-PSD) reader's walk, copy and timestamp unwrap."""
    from .v1725 import kernels as k

    e = np.zeros(0, np.int64)
    k._walk(np.zeros(0, np.uint8), 0, True, False, 0, e, e, e, e, e, e)
    out = _fields()
    k._copy_waves(np.zeros(0, np.int16), 0, e, e, e, 0, 0, out["wave"])
    k._unwrap(np.zeros(0, np.bool_), e, 1 << 48)


def _compass_csv() -> None:
    """The CoMPASS CSV reader's header scan and row parser (the VX2730's format)."""
    from .compass import csv_kernels as k

    buf = np.frombuffer(b"1\n", np.uint8).copy()
    k._skip_header(buf)
    k._next_line(buf, 0)
    k._count_columns(buf, 0)
    k._last_newline(buf, 1)
    out = _fields()
    k._parse_rows(buf, 0, 0, 1, 1, -1, -1, -1, -1, -1, -1, -1, out["board"], out["channel"],
                  out["timestamp"], out["flags"], out["energy"], out["energy_short"],
                  out["energy_calibrated"], out["wave"], 0, 0)


def _compass_bin() -> None:
    """The CoMPASS binary reader's event size, walk and fill."""
    from .compass import bin_kernels as k

    buf = np.zeros(0, np.uint8)
    k.fixed_bytes(False, 0)
    k.walk(buf, 0, True, False, 0)
    o = _fields()
    k.fill(buf, 0, False, 0, 0, 0.0, o["board"], o["channel"], o["timestamp"], o["time"], o["energy"],
           o["energy_calibrated"], o["energy_short"], o["flags"], o["length"], o["dt"], o["wave"])


def _event_walks(*pairs: tuple[Callable, Callable]) -> None:
    """Walk and copy kernels of the formats read with :mod:`.blockscan` (metadata rows of int64)."""
    buf = np.zeros(0, np.uint8)
    meta = np.zeros((0, 8), np.int64)
    params = np.ones(4, np.int64)
    wave = _fields()["wave"]
    for walk, copy in pairs:
        walk(buf, 0, True, False, 0, meta, params)
        copy(buf, 0, meta, params, wave)


def _wavedump() -> None:
    """The WaveDump readers' (binary and ASCII) walks and copies."""
    from .wavedump import kernels as k

    _event_walks((k.walk_binary, k.copy_binary), (k.walk_ascii, k.copy_ascii))


def _caen_raw() -> None:
    """The CAEN readout-dump reader's walks and copies, every firmware."""
    from .caen_raw import kernels as k

    _event_walks((k.walk_standard, k.copy_standard), (k.walk_zle, k.copy_zle), (k.walk_psd, k.copy_standard))


def _compass() -> None:
    _compass_csv()
    _compass_bin()


READERS: dict[str, Callable[[], None]] = {
    "v1725": _v1725, "vx2730": _compass_csv, "compass": _compass, "wavedump": _wavedump, "caen-raw": _caen_raw,
}
"""The readers :func:`warm_up_readers` can load, by ``daq_adapter`` name."""


def warm_up_readers(formats: Iterable[str] | None = None) -> float:
    """Load the kernels of the readers of ``formats`` (None: every one in :data:`READERS`, a
    few ms each); seconds taken. Formats not in :data:`READERS` load theirs on their first read."""
    t0 = time.perf_counter()
    for fn in dict.fromkeys(READERS[f] for f in (READERS if formats is None else formats) if f in READERS):
        fn()
    return time.perf_counter() - t0
