"""Synthetic CAEN readout dumps: standard firmware, DPP-ZLE and DPP-PSD events as a lab DAQ writes them.

Kept independent of the reader on purpose: a second implementation of the
layout is the tests' oracle. Events are whole 32-bit words, little-endian.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ConfigError
from .wavedump import trigger_time_tags

FIRMWARES = ("standard", "zle", "psd")


def _events(records: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Records grouped by trigger: (events x channels grid, channel numbers)."""
    chans = np.unique(records["channel"])
    recs = records[np.lexsort((records["channel"], records["timestamp"]))]
    if len(recs) % chans.size:
        raise ConfigError("every event must hold the same channels")
    grid = recs.reshape(-1, chans.size)
    if not np.all(grid["channel"] == chans[None, :]) or not np.all(
        grid["timestamp"] == grid["timestamp"][:, :1]
    ):
        raise ConfigError("every event must hold the same channels at one time")
    return grid, chans


def _header(size_words: int, mask: int, board: int, counter: int, ttt: int) -> list[int]:
    return [
        (0xA << 28) | size_words,
        ((board & 0x1F) << 27) | (mask & 0xFF),
        (((mask >> 8) & 0xFF) << 24) | (counter & 0xFFFFFF),
        int(ttt),
    ]


def _pairs(wave: np.ndarray) -> np.ndarray:
    w = wave.astype(np.int64) & 0x3FFF
    return (w[0::2] | (w[1::2] << 16)).astype(np.uint32)


def zle_suppressed(records: np.ndarray, threshold: int = 20) -> np.ndarray:
    """The records as a DPP-ZLE reader gives them back from :func:`write_caen_raw`:
    every sample pair within ``threshold`` of the record's baseline (the
    rounded mean of its first 16 samples) replaced by that baseline."""
    out = records.copy()
    wave = out["wave"]
    base = np.rint(wave[:, :16].mean(axis=1)).astype(np.int64)
    quiet = np.abs(wave.astype(np.int64) - base[:, None]) <= threshold
    pair = quiet[:, 0::2] & quiet[:, 1::2]
    keep = np.repeat(pair, 2, axis=1)
    wave[keep] = np.broadcast_to(base[:, None], wave.shape)[keep]
    return out


def write_caen_raw(
    folder: Path | str,
    records: np.ndarray,
    *,
    firmware: str = "standard",
    model: str = "V1730",
    board: int = 0,
    n_segments: int = 1,
    stem: str | None = None,
    zle_threshold: int = 20,
    sample_ns: float = 2.0,
) -> list[Path]:
    """Write ``records`` as a lab DAQ dumps ``CAEN_DGTZ_ReadData``'s buffer.

    One event per trigger time holding every channel of ``records`` (an even
    number of samples each, a multiple of 8 for PSD); one file set per board
    when ``records`` hold several (``board`` is then ignored). ``firmware``: ``"standard"``; ``"zle"`` (sample
    pairs near the baseline skipped, see :func:`zle_suppressed`); ``"psd"``
    (one board aggregate per trigger, one couple aggregate per channel pair,
    ``records["energy"]``/``["energy_short"]`` as Qlong/Qshort when present,
    else the baseline-subtracted sums over the record and its first quarter,
    time tags in ``sample_ns`` ticks with the 16-bit extension). Files are
    ``<stem>-Board_<board>-<seg:03d>.dat``, ``stem`` defaulting to
    ``<model>_<firmware>``.
    """
    if firmware not in FIRMWARES:
        raise ConfigError(f"firmware must be one of {FIRMWARES}, got {firmware!r}")
    boards = np.unique(records["board"])
    if boards.size > 1:
        return [p for b in boards for p in write_caen_raw(
            folder, records[records["board"] == b], firmware=firmware, model=model, board=int(b),
            n_segments=n_segments, stem=stem, zle_threshold=zle_threshold, sample_ns=sample_ns,
        )]  # fmt: skip
    ns = records["wave"].shape[1]
    if ns % (8 if firmware == "psd" else 2):
        raise ConfigError(f"{firmware} readout dumps need a multiple of "
                          f"{8 if firmware == 'psd' else 2} samples, got {ns}")  # fmt: skip
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    grid, chans = _events(records)
    mask = int(np.bitwise_or.reduce(1 << chans.astype(np.int64)))
    events: list[np.ndarray] = []
    if firmware == "psd":
        energies = _charges(grid)
        ticks = np.rint(grid["timestamp"][:, 0] / (sample_ns * 1000.0)).astype(np.int64)
        for i in range(len(grid)):
            events.append(_psd_event(grid[i], chans, energies[i], int(ticks[i]), board, i, ns))
    else:
        ttt = trigger_time_tags(grid["timestamp"][:, 0], 8.0)
        wave = zle_suppressed(grid.ravel(), zle_threshold).reshape(grid.shape)["wave"] if (
            firmware == "zle"
        ) else grid["wave"]
        for i in range(len(grid)):
            if firmware == "standard":
                body = np.concatenate([_pairs(w) for w in wave[i]])
            else:
                body = np.concatenate([_zle_channel(w) for w in wave[i]])
            head = _header(4 + body.size, mask, board, i, int(ttt[i]))
            events.append(np.concatenate([np.array(head, np.uint32), body]))
    paths = []
    stem = stem or f"{model}_{firmware}"
    for seg, idx in enumerate(np.array_split(np.arange(len(events)), max(1, n_segments))):
        path = folder / f"{stem}-Board_{board}-{seg + 1:03d}.dat"
        words = [events[i] for i in idx]
        (np.concatenate(words) if words else np.empty(0, np.uint32)).astype("<u4").tofile(path)
        paths.append(path)
    return paths


def _zle_channel(wave: np.ndarray) -> np.ndarray:
    """One DPP-ZLE channel: header word, then sample pairs or skip words for baseline pairs."""
    base = int(np.rint(wave[:16].mean()))
    pairs = _pairs(wave)
    at_base = (wave[0::2] == base) & (wave[1::2] == base)
    words: list[int] = []
    i = 0
    while i < pairs.size:
        if at_base[i]:
            j = i
            while j < pairs.size and at_base[j]:
                j += 1
            words.append((0b1000 << 28) | (j - i))
            i = j
        else:
            words.append(int(pairs[i]))
            i += 1
    return np.array([(base << 16) | (len(words) + 1)] + words, np.uint32)


def _charges(grid: np.ndarray) -> np.ndarray:
    """(events, channels, 2) Qlong, Qshort: the records' energies, else sums above baseline."""
    if "energy" in (grid.dtype.names or ()) and np.all(np.isfinite(grid["energy"])):
        return np.stack([grid["energy"], grid["energy_short"]], axis=-1).astype(np.int64)
    w = grid["wave"].astype(np.float64)
    base = w[..., :16].mean(axis=-1, keepdims=True)
    q = np.abs(w - base)
    qlong = np.clip(np.rint(q.sum(axis=-1)), 0, 0xFFFF)
    qshort = np.clip(np.rint(q[..., : w.shape[-1] // 4].sum(axis=-1)), 0, 0x7FFF)
    return np.stack([qlong, qshort], axis=-1).astype(np.int64)


def _psd_event(recs, chans, charges, ticks: int, board: int, counter: int, ns: int) -> np.ndarray:
    """One DPP-PSD board aggregate: a couple aggregate per channel pair, one event per channel."""
    fmt = (ns // 8) | (1 << 27) | (1 << 28) | (1 << 29) | (1 << 30)
    couples: dict[int, list[np.ndarray]] = {}
    for j, ch in enumerate(chans):
        ev = [(int(ch) & 1) << 31 | (ticks & 0x7FFFFFFF)]
        extras = ((ticks >> 31) & 0xFFFF) << 16
        qlong, qshort = (int(x) for x in charges[j])
        couples.setdefault(int(ch) // 2, []).append(np.concatenate([
            np.array(ev, np.uint32), _pairs(recs[j]["wave"]),
            np.array([extras, (qlong << 16) | (qshort & 0x7FFF)], np.uint32),
        ]))  # fmt: skip
    body = []
    for couple in sorted(couples):
        events = np.concatenate(couples[couple])
        body.append(np.array([(1 << 31) | (2 + events.size), fmt], np.uint32))
        body.append(events)
    words = np.concatenate(body)
    mask = sum(1 << c for c in couples)
    head = _header(4 + words.size, mask, board, counter, ticks & 0x7FFFFFFF)
    return np.concatenate([np.array(head, np.uint32), words])
