"""CoMPASS CSV writer of the synthetic runs (2.x, 1.x and our generator's naming; waveforms or
list mode). Kept independent of the reader in :mod:`waveform_analysis.daq.compass` on purpose:
a second implementation of the format is the test oracle."""

from __future__ import annotations

from pathlib import Path

import numba
import numpy as np

from ..errors import ConfigError
from ..kernel_cache import watch

HEADER = "BOARD;CHANNEL;TIMETAG;ENERGY;ENERGYSHORT;FLAGS;PROBE_CODE;SAMPLES"
LEGACY_HEADER = "CoMPASS;legacy;export\nBOARD;CHANNEL;TIMETAG;ENERGY;ENERGYSHORT;FLAGS;SAMPLES"



@numba.njit(cache=True)
def _put_int(out, p, v):
    if v < 0:
        out[p] = 45
        p += 1
        v = -v
    if v == 0:
        out[p] = 48
        return p + 1
    n = 0
    t = v
    while t > 0:
        t //= 10
        n += 1
    q = p + n - 1
    while v > 0:
        out[q] = 48 + v % 10
        v //= 10
        q -= 1
    return p + n


@numba.njit(cache=True)
def _put_hex(out, p, v):
    out[p] = 48
    out[p + 1] = 120
    p += 2
    if v == 0:
        out[p] = 48
        return p + 1
    n = 0
    t = v
    while t > 0:
        t >>= 4
        n += 1
    q = p + n - 1
    while v > 0:
        d = v & 15
        out[q] = 48 + d if d < 10 else 87 + d
        v >>= 4
        q -= 1
    return p + n


_COLUMN_KIND = {
    "BOARD": 0, "CHANNEL": 1, "TIMETAG": 2, "ENERGY": 3, "ENERGYSHORT": 4, "FLAGS": 5,
    "PROBE_CODE": 6, "CALIB_ENERGY": 7,
}
CALIB_KEV_PER_CHANNEL = 0.1234  # the CALIB_ENERGY column: ENERGY x this, written with 3 decimals
COLUMNS_2X = ("BOARD", "CHANNEL", "TIMETAG", "ENERGY", "ENERGYSHORT", "FLAGS", "PROBE_CODE")
COLUMNS_1X = ("TIMETAG", "ENERGY", "ENERGYSHORT", "FLAGS")
LAYOUTS = ("generator", "compass2", "compass1")


@numba.njit(cache=True)
def _format_rows(kinds, board, channel, timetag, energy, energy_short, flags, hex_flags, wave,
                 length, out, milli_kev):
    p = 0
    for i in range(wave.shape[0]):
        for c in range(kinds.size):
            if c > 0:
                out[p] = 59
                p += 1
            k = kinds[c]
            if k == 0:
                p = _put_int(out, p, np.int64(board[i]))
            elif k == 1:
                p = _put_int(out, p, np.int64(channel[i]))
            elif k == 2:
                p = _put_int(out, p, np.int64(timetag[i]))
            elif k == 3:
                p = _put_int(out, p, np.int64(energy[i]))
            elif k == 4:
                p = _put_int(out, p, np.int64(energy_short[i]))
            elif k == 5:
                if hex_flags:
                    p = _put_hex(out, p, np.int64(flags[i]))
                else:
                    p = _put_int(out, p, np.int64(flags[i]))
            elif k == 6:
                p = _put_int(out, p, np.int64(1))
            elif k == 7:  # a decimal: <int>.<3 digits>
                p = _put_int(out, p, milli_kev[i] // 1000)
                out[p] = 46
                m = milli_kev[i] % 1000
                out[p + 1] = 48 + m // 100
                out[p + 2] = 48 + (m // 10) % 10
                out[p + 3] = 48 + m % 10
                p += 4
            else:
                p = _put_int(out, p, np.int64(0))
        for j in range(length[i]):
            out[p] = 59
            p = _put_int(out, p + 1, np.int64(wave[i, j]))
        out[p] = 10
        p += 1
    return p


def format_vx2730_rows(
    records: np.ndarray,
    *,
    hex_flags: bool = True,
    flags: int | np.ndarray = 0x4000,
    columns: tuple[str, ...] = COLUMNS_2X,
    samples: bool = True,
) -> bytes:
    """CSV data lines (no header) for ``records`` (st_waveforms fields).

    ``columns`` are the fixed columns before the samples, in file order (any of
    BOARD, CHANNEL, TIMETAG, ENERGY, ENERGYSHORT, FLAGS, PROBE_CODE); ``flags``
    is one FLAGS value for every row or one per row. ``samples=False``: list
    mode, no samples. ENERGY and ENERGYSHORT are the records' ``energy`` and
    ``energy_short`` (0 where NaN); CALIB_ENERGY (as CoMPASS writes the calibrated
    energy beside ENERGY) is ``energy * CALIB_KEV_PER_CHANNEL`` with 3 decimals.
    """
    n = len(records)
    try:
        kinds = np.array([_COLUMN_KIND[c.upper()] for c in columns], np.int64)
    except KeyError as exc:
        raise ConfigError(f"unknown CSV column {exc.args[0]!r}; use {', '.join(_COLUMN_KIND)}") from None
    if 2 not in kinds:
        raise ConfigError("the CSV columns must include TIMETAG")
    wave = np.ascontiguousarray(records["wave"])
    length = np.minimum(records["length"], wave.shape[1]).astype(np.int64)
    if not samples:
        length = np.zeros(n, np.int64)
    cap = int(n * (7 * (wave.shape[1] if samples else 0) + 150)) + 16
    out = np.empty(cap, np.uint8)
    names = records.dtype.names
    energy, energy_short = (
        np.nan_to_num(records[f]).astype(np.int64) if f in names else np.zeros(n, np.int64)
        for f in ("energy", "energy_short")
    )
    fl = np.broadcast_to(np.asarray(flags, np.int64), (n,)).copy()
    milli_kev = np.rint(energy * (CALIB_KEV_PER_CHANNEL * 1000)).astype(np.int64)
    used = _format_rows(
        kinds, records["board"], records["channel"], records["timestamp"], energy, energy_short,
        fl, bool(hex_flags), wave, length, out, milli_kev,
    )
    return out[:used].tobytes()


def _csv_name(layout, prefix, board, ch, seg, run_name, model, serial) -> str:
    """File name of one segment in ``layout`` (the first segment of CoMPASS has no number)."""
    tail = f"_{seg}" if seg else ""
    if layout == "compass2":
        return f"{prefix}_CH{ch}@{model or 'V1730'}_{serial + board}_{run_name}{tail}.CSV"
    if layout == "compass1":
        return f"{ch}@{model or 'DT5730'} #2-11-{serial + board}_Data_{run_name}{tail}.csv"
    return f"{prefix}_CH{ch}@V2730_{seg}.CSV"


def write_vx2730(
    raw: Path | str,
    records: np.ndarray,
    *,
    n_segments: int = 1,
    legacy_header: bool = False,
    hex_flags: bool = True,
    prefix: str = "DataR",
    layout: str = "generator",
    columns: tuple[str, ...] | None = None,
    run_name: str = "run",
    model: str | tuple[str, ...] | None = None,
    serial: int = 1463,
    flags: int | np.ndarray = 0x4000,
    samples: bool = True,
) -> list[Path]:
    """Write ``records`` as CoMPASS CSV files into the folder ``raw``.

    ``layout``: ``"generator"`` (default; one file set per channel,
    ``DataR_CH<ch>@V2730_<seg>.CSV``, every segment numbered), ``"compass2"``
    (one file set per (board, channel), ``DataR_CH<ch>@<model>_<serial>_<run_name>[_<seg>].CSV``)
    or ``"compass1"`` (``<ch>@<model> #2-11-<serial>_Data_<run_name>[_<seg>].csv``,
    to be put in an ``UNFILTERED`` folder). Board ``b`` has serial ``serial + b``.
    ``columns`` default to the CoMPASS 2.x header (1.x for ``"compass1"``, the
    legacy header's for ``legacy_header``); without a BOARD column the reader
    takes the board from the serial. ``flags``: one FLAGS value or one per record.
    The header line is written in the first segment only. ``samples=False``
    writes list mode (no PROBE_CODE, no SAMPLES column).
    """
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown CSV layout {layout!r}; use one of {', '.join(LAYOUTS)}")
    if columns is None:
        if legacy_header:
            columns = tuple(LEGACY_HEADER.splitlines()[-1].split(";")[:-1])
        else:
            columns = COLUMNS_1X if layout == "compass1" else COLUMNS_2X
    if not samples:
        columns = tuple(c for c in columns if c.upper() != "PROBE_CODE")
    header = ";".join(columns) + (";SAMPLES" if samples else "")
    if legacy_header:
        header = LEGACY_HEADER.splitlines()[0] + "\n" + header
    raw = Path(raw)
    raw.mkdir(parents=True, exist_ok=True)
    all_flags = np.broadcast_to(np.asarray(flags, np.int64), (len(records),))
    if layout == "generator":
        keys = [(None, int(ch)) for ch in np.unique(records["channel"])]
    else:
        keys = sorted({(int(b), int(c)) for b, c in zip(records["board"], records["channel"])})
    paths = []
    for board, ch in keys:
        sel = records["channel"] == ch
        if board is not None:
            sel &= records["board"] == board
        rows, row_flags = records[sel], all_flags[sel]
        parts = np.array_split(np.arange(len(rows)), max(1, n_segments))
        for seg, idx in enumerate(parts):
            one = model if model is None or isinstance(model, str) else model[board or 0]
            name = _csv_name(layout, prefix, board or 0, ch, seg, run_name, one, serial)
            body = format_vx2730_rows(
                rows[idx], hex_flags=hex_flags, flags=row_flags[idx], columns=columns,
                samples=samples,
            )
            with open(raw / name, "wb") as fh:
                if seg == 0:
                    fh.write((header + "\n").encode())
                fh.write(body)
            paths.append(raw / name)
    return paths


watch(globals(), uses=("..errors",))
