"""Synthetic WaveDump output: binary (u16, or float32 as x742 boards write), ASCII, and its config.

Kept independent of the reader on purpose: a second implementation of the
layout is the tests' oracle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError

TTT_NS = {"x742": 8.5, "x724": 10.0, "x740": 16.0}  # the others tick every 8 ns
DRS4_MHZ = {5000: 0, 2500: 1, 1000: 2, 750: 3}


def ttt_ns(model: str) -> float:
    """The trigger time tag tick of ``model`` (``"V1730"``, ``"DT5742"``)."""
    digits = "".join(c for c in model if c.isdigit())
    return TTT_NS.get("x" + digits[-3:], 8.0)


def trigger_time_tags(timestamp_ps: np.ndarray, tick_ns: float) -> np.ndarray:
    """CAEN's 31-bit trigger time tag, roll-over flag in bit 31, of times in ps (whole ticks)."""
    ticks = np.rint(np.asarray(timestamp_ps, np.float64) / (tick_ns * 1000.0)).astype(np.int64)
    rolled = (ticks >> 31) > 0
    return ((ticks & 0x7FFFFFFF) | (rolled.astype(np.int64) << 31)).astype(np.uint32)


def write_wavedump(
    folder: Path | str,
    records: np.ndarray,
    *,
    kind: str = "binary",
    model: str = "V1730",
    underscore: bool = False,
    post_trigger: int = 50,
    polarity: str = "negative",
    drs4_frequency: int | None = None,
    config_name: str | None = None,
    float_offset: float = 0.25,
) -> list[Path]:
    """Write ``records`` as WaveDump would: one file per channel, plus the config file.

    ``kind`` is ``"binary"`` (``wave<c>.dat``, u16 samples; float32 when
    ``model`` is an x742, each sample plus ``float_offset`` so that the reader's
    rounding is exercised) or ``"ascii"`` (``wave<c>.txt``). ``underscore``
    names them ``wave_<c>``. The config is ``WaveDumpConfig_<model>.txt``
    unless ``config_name`` says otherwise. Returns the data files.
    """
    if kind not in ("binary", "ascii"):
        raise ConfigError(f"kind must be 'binary' or 'ascii', got {kind!r}")
    if np.unique(records["board"]).size > 1:
        raise ConfigError("WaveDump reads one board: records of several boards cannot be written")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    x742 = model.endswith("742")
    tick = ttt_ns(model)
    ns = records["wave"].shape[1]
    paths = []
    for ch in np.unique(records["channel"]):
        recs = records[records["channel"] == ch]
        recs = recs[np.argsort(recs["timestamp"], kind="stable")]
        ttt = trigger_time_tags(recs["timestamp"], tick)
        name = f"wave{'_' if underscore else ''}{int(ch)}"
        if kind == "binary":
            sample = np.dtype("<f4") if x742 else np.dtype("<u2")
            ev = np.zeros(len(recs), np.dtype(
                [("size", "<u4"), ("board", "<u4"), ("pattern", "<u4"), ("channel", "<u4"),
                 ("counter", "<u4"), ("ttt", "<u4"), ("wave", sample, (ns,))]
            ))  # fmt: skip
            ev["size"] = ev.dtype.itemsize
            ev["board"] = recs["board"]
            ev["channel"] = ch
            ev["counter"] = np.arange(len(recs))
            ev["ttt"] = ttt
            ev["wave"] = recs["wave"] + float_offset if x742 else recs["wave"].astype(np.uint16)
            path = folder / f"{name}.dat"
            ev.tofile(path)
        else:
            path = folder / f"{name}.txt"
            with open(path, "w") as fh:
                for i, r in enumerate(recs):
                    fh.write(
                        f"Record Length: {ns}\nBoardID: {int(r['board']):2d}\nChannel: {int(ch)}\n"
                        f"Event Number: {i}\nPattern: 0x0000\nTrigger Time Stamp: {int(ttt[i])}\n"
                        "DC offset (DAC): 0x1999\n"
                    )
                    fh.write("\n".join(map(str, r["wave"].tolist())) + "\n")
        paths.append(path)
    lines = [
        "# WaveDump configuration (synthetic)", "[COMMON]", "OPEN USB 0 0",
        f"RECORD_LENGTH  {ns}", f"POST_TRIGGER  {post_trigger}",
        f"PULSE_POLARITY  {polarity.upper()}",
        f"OUTPUT_FILE_FORMAT  {kind.upper()}", "OUTPUT_FILE_HEADER  YES",
    ]  # fmt: skip
    if drs4_frequency is not None:
        lines.append(f"DRS4_FREQUENCY  {DRS4_MHZ.get(drs4_frequency, drs4_frequency)}")
    for ch in np.unique(records["channel"]):
        lines += [f"[{int(ch)}]", "ENABLE_INPUT  YES"]
    (folder / (config_name or f"WaveDumpConfig_{model}.txt")).write_text("\n".join(lines) + "\n")
    return paths
