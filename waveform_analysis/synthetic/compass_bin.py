"""CoMPASS BIN writer of the synthetic runs: 2.x (header word ``0xCAE0 | bits``) and 1.x.

Independent of the reader in :mod:`waveform_analysis.daq.compass` on purpose (a
second implementation of the format is the test oracle): the events are numpy
structured arrays with packed little-endian fields.

2.x event: ``board u16, channel u16, timetag u64 [ps], [energy u16],
[energy_cal f64], [energy_short u16], flags u32, [code u8, n u32, n x u16]``;
1.x event: ``board u16, channel u16, timetag u64, energy u16, energy_short u16,
flags u32, n u32, n x u16`` (24 + 2n bytes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError

BIT_ENERGY, BIT_ENERGY_CAL, BIT_ENERGY_SHORT, BIT_WAVEFORM = 0x1, 0x2, 0x4, 0x8
CALIBRATION_GAIN = 2.5  # energy_cal written = energy x this (when the records have none)


def header_bits(samples: bool = True, energy: bool = True, calibrated: bool = False,
                energy_short: bool = True) -> int:
    """The low bits of the 2.x file header word for these fields."""
    return ((BIT_ENERGY if energy else 0) | (BIT_ENERGY_CAL if calibrated else 0)
            | (BIT_ENERGY_SHORT if energy_short else 0) | (BIT_WAVEFORM if samples else 0))


def event_dtype(bits: int | None, n_samples: int) -> np.dtype:
    """The packed event of a 2.x file with header ``bits`` (None: a 1.x event)."""
    fields = [("board", "<u2"), ("channel", "<u2"), ("timetag", "<u8")]
    if bits is None:
        fields += [("energy", "<u2"), ("energy_short", "<u2"), ("flags", "<u4"), ("n", "<u4")]
    else:
        if bits & BIT_ENERGY:
            fields.append(("energy", "<u2"))
        if bits & BIT_ENERGY_CAL:
            fields.append(("energy_cal", "<f8"))
        if bits & BIT_ENERGY_SHORT:
            fields.append(("energy_short", "<u2"))
        fields.append(("flags", "<u4"))
        if bits & BIT_WAVEFORM:
            fields += [("code", "u1"), ("n", "<u4")]
    if n_samples and (bits is None or bits & BIT_WAVEFORM):
        fields.append(("wave", "<u2", (n_samples,)))
    return np.dtype(fields)


def encode_events(records: np.ndarray, bits: int | None, flags, samples: bool) -> np.ndarray:
    """``records`` (st_waveforms fields) as packed events."""
    n_samples = records["wave"].shape[1] if samples else 0
    ev = np.zeros(len(records), event_dtype(bits, n_samples))
    ev["board"] = records["board"]
    ev["channel"] = records["channel"]
    ev["timetag"] = records["timestamp"]
    names = ev.dtype.names
    for f in ("energy", "energy_short"):
        if f in names:
            ev[f] = np.nan_to_num(records[f]).astype(np.uint16)
    if "energy_cal" in names:
        cal = records["energy_calibrated"]
        ev["energy_cal"] = np.where(np.isfinite(cal), cal, records["energy"] * CALIBRATION_GAIN)
    ev["flags"] = np.broadcast_to(np.asarray(flags, np.int64), (len(records),))
    if "code" in names:
        ev["code"] = 1  # CoMPASS's probe code of the input signal
    if "n" in names:
        ev["n"] = n_samples
    if n_samples:
        ev["wave"] = records["wave"].astype(np.uint16)
    return ev


def write_compass_bin(
    raw: Path | str,
    records: np.ndarray,
    *,
    n_segments: int = 1,
    run_name: str = "run",
    flags: int | np.ndarray = 0x4000,
    samples: bool = True,
    version: str = "2.x",
    single_file: bool = False,
    calibrated: bool = False,
    model: str | tuple[str, ...] = "DT5730",
    serial: int = 1463,
    prefix: str = "DataR",
    continuation_header: bool = True,
) -> list[Path]:
    """Write ``records`` as CoMPASS BIN files into ``raw``; returns the paths.

    2.x names ``<prefix>_CH<ch>@<model>_<serial+board>_<run_name>[_<seg>].BIN``,
    1.x names ``CH<ch>@<model>_<serial+board>_Data_<run_name>[_<seg>].bin``.
    ``single_file``: one file per board holding all its channels in time order
    (named for its first channel). ``samples=False``: list mode (2.x: no
    waveform bit; 1.x: n_samples 0). ``calibrated``: the 2.x calibrated energy
    field (``energy_calibrated``, else ``energy`` x :data:`CALIBRATION_GAIN`).
    ``continuation_header=False`` leaves the header word out of the ``_1``,
    ``_2`` ... files, as some CoMPASS versions do. ``model``: one, or one per board.
    """
    if version not in ("2.x", "1.x"):
        raise ConfigError(f"unknown CoMPASS BIN version {version!r}; use '2.x' or '1.x'")
    raw = Path(raw)
    raw.mkdir(parents=True, exist_ok=True)
    bits = header_bits(samples, calibrated=calibrated) if version == "2.x" else None
    all_flags = np.broadcast_to(np.asarray(flags, np.int64), (len(records),))
    order = np.lexsort((records["channel"], records["board"], records["timestamp"]))
    records, all_flags = records[order], all_flags[order]
    groups = []
    for board in np.unique(records["board"]):
        on_board = records["board"] == board
        channels = np.unique(records["channel"][on_board])
        if single_file:
            groups.append((int(board), int(channels[0]), on_board))
        else:
            groups += [(int(board), int(ch), on_board & (records["channel"] == ch)) for ch in channels]
    paths = []
    models = model
    for board, ch, sel in groups:
        model = models if isinstance(models, str) else models[board]
        ev = encode_events(records[sel], bits, all_flags[sel], samples)
        for seg, idx in enumerate(np.array_split(np.arange(len(ev)), max(1, n_segments))):
            tail = f"_{seg}" if seg else ""
            if version == "2.x":
                name = f"{prefix}_CH{ch}@{model}_{serial + board}_{run_name}{tail}.BIN"
            else:
                name = f"CH{ch}@{model}_{serial + board}_Data_{run_name}{tail}.bin"
            with open(raw / name, "wb") as fh:
                if bits is not None and (seg == 0 or continuation_header):
                    fh.write((0xCAE0 | bits).to_bytes(2, "little"))
                fh.write(ev[idx].tobytes())
            paths.append(raw / name)
    return paths
