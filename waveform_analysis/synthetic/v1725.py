"""V1725 DAW binary writer of the synthetic runs (independent of the reader: the test oracle)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .model import TICK_PS


def _v1725_event_dtype(n_channels: int, n_samples: int) -> np.dtype:
    ch = np.dtype(
        [("size", "<u4"), ("ts_lo", "<u4"), ("ts_hi", "<u2"), ("baseline", "<u2"),
         ("wave", "<i2", (n_samples,))]
    )
    return np.dtype(
        [("w0", "<u4"), ("w1", "<u4"), ("w2", "<u4"), ("w3", "<u4"), ("ch", ch, (n_channels,))]
    )


def write_v1725(
    raw: Path | str,
    records: np.ndarray,
    *,
    n_segments: int = 1,
    board: int | None = 0,
    prefix: str = "raw",
    board_fail: np.ndarray | None = None,
) -> list[Path]:
    """Write ``records`` as V1725 DAW events: one event per trigger time, all channels.

    Records sharing a timestamp form one event; every event must hold the same
    set of channels and ``n_samples`` must be even. ``board=None`` writes one
    file set per ``records["board"]``. The event's trigger time tag is the
    31-bit counter with CAEN's roll-over flag in bit 31; ``board_fail`` (one
    bool per event) sets the Board Fail bit (26 of header word 1).
    """
    if board is None:
        paths = []
        for b in np.unique(records["board"]):
            paths += write_v1725(raw, records[records["board"] == b], n_segments=n_segments,
                                 board=int(b), prefix=prefix)
        return paths
    raw = Path(raw)
    raw.mkdir(parents=True, exist_ok=True)
    ns = records["wave"].shape[1]
    if ns % 2:
        raise ConfigError(f"V1725 records need an even number of samples, got {ns}")
    chans = np.unique(records["channel"])
    n_ch = chans.size
    order = np.lexsort((records["channel"], records["timestamp"]))
    recs = records[order]
    if len(recs) % n_ch:
        raise ConfigError("every event must hold the same channels")
    n_ev = len(recs) // n_ch
    grid = recs.reshape(n_ev, n_ch)
    if not np.all(grid["channel"] == chans[None, :]) or not np.all(
        grid["timestamp"] == grid["timestamp"][:, :1]
    ):
        raise ConfigError("every event must hold the same channels at one time")
    ev_dtype = _v1725_event_dtype(n_ch, ns)
    ev_words = ev_dtype.itemsize // 4
    ch_words = 3 + ns // 2
    mask = int(np.bitwise_or.reduce(1 << chans.astype(np.int64)))
    ev = np.zeros(n_ev, dtype=ev_dtype)
    ticks = grid["timestamp"][:, 0] // TICK_PS
    ev["w0"] = (0xA << 28) | ev_words
    fail = np.zeros(n_ev, bool) if board_fail is None else np.asarray(board_fail, bool)
    ev["w1"] = (mask & 0xFF) | ((board & 0x1F) << 27) | (fail.astype(np.int64) << 26)
    ev["w2"] = (np.arange(n_ev, dtype=np.uint32) & 0xFFFFFF) | (((mask >> 8) & 0xFF) << 24)
    rolled = (ticks >> 31) > 0  # the 31-bit counter has rolled over
    ev["w3"] = ((ticks & 0x7FFFFFFF) | (rolled.astype(np.int64) << 31)).astype(np.uint32)
    chd = ev["ch"]
    chd["size"] = ch_words
    t = grid["timestamp"] // TICK_PS
    chd["ts_lo"] = (t & 0xFFFFFFFF).astype(np.uint32)
    chd["ts_hi"] = ((t >> 32) & 0xFFFF).astype(np.uint16)
    chd["baseline"] = np.clip(grid["wave"][:, :, :16].mean(axis=2), 0, 65535).astype(np.uint16)
    chd["wave"] = grid["wave"]
    paths = []
    for seg, idx in enumerate(np.array_split(np.arange(n_ev), max(1, n_segments))):
        path = raw / f"{prefix}_b{board}_seg{seg}.bin"
        ev[idx].tofile(path)
        paths.append(path)
    return paths
