"""numba kernels of the CoMPASS BIN reader (imported by the reader on first use).

Kept apart from :mod:`.bin_reader` so that listing files does not import
numba; layout constants and error codes are those of :mod:`.layout`.
"""

from __future__ import annotations

import numba
import numpy as np

from ...kernel_cache import watch
from ..word_kernels import u16 as _u16
from ..word_kernels import u32 as _u32
from .layout import (
    BIN1_EVENT_BYTES,
    BIN_ENERGY,
    BIN_ENERGY_CAL,
    BIN_ENERGY_SHORT,
    BIN_FIXED_BYTES,
    BIN_WAVEFORM,
    ERR_BIN_CHANNEL,
    ERR_BIN_SIZE,
    ERR_BIN_TRUNCATED,
    MAX_CHANNEL,
    MAX_SAMPLES,
)


@numba.njit(cache=True, nogil=True, inline="never")
def _samples(buf, p, row, m):
    """``m`` little-endian u16 samples at ``buf[p]`` into ``row``: a view of the bytes (at an
    odd offset too; 3x the byte-by-byte loop), in a function of its own (the loop inlined in
    :func:`fill` ran at a third of the speed)."""
    row[:m] = buf[p : p + 2 * m].view(np.int16)


@numba.njit(cache=True, nogil=True, inline="never")
def _zeros(row, m):
    """Zeros in ``row`` from ``m`` on (a record shorter than the run's longest)."""
    for j in range(m, row.size):
        row[j] = 0


@numba.njit(cache=True, nogil=True)
def fixed_bytes(v1, bits):
    """Bytes of an event before its samples: 1.x, or 2.x with header ``bits``."""
    if v1:
        return BIN1_EVENT_BYTES
    size = BIN_FIXED_BYTES
    if bits & BIN_ENERGY:
        size += 2
    if bits & BIN_ENERGY_CAL:
        size += 8
    if bits & BIN_ENERGY_SHORT:
        size += 2
    if bits & BIN_WAVEFORM:
        size += 5
    return size


@numba.njit(cache=True, nogil=True)
def _samples_of(buf, pos, v1, bits, fixed):
    """The sample count of the event at ``buf[pos]`` (0 in list mode)."""
    if v1:
        return np.int64(_u32(buf, pos + 20))
    if bits & BIN_WAVEFORM:
        return np.int64(_u32(buf, pos + fixed - 4))
    return np.int64(0)


@numba.njit(cache=True, nogil=True)
def walk(buf, n, eof, v1, bits):
    """Walk the whole events in ``buf[:n]``, checking each one's sizes.

    Without ``eof`` an event running past ``n`` ends the walk without error (it
    is read with the next block). Returns (error code, offset where the walk
    stopped or of the bad event, events, most samples in an event, the bad value).
    """
    fixed = fixed_bytes(v1, bits)
    pos = 0
    k = 0
    most = 0
    while pos < n:
        if pos + fixed > n:
            if not eof:
                return 0, pos, k, most, 0
            return ERR_BIN_TRUNCATED, pos, k, most, n - pos
        ch = _u16(buf, pos + 2)
        if ch > MAX_CHANNEL:
            return ERR_BIN_CHANNEL, pos, k, most, ch
        ns = _samples_of(buf, pos, v1, bits, fixed)
        if ns > MAX_SAMPLES:
            return ERR_BIN_SIZE, pos, k, most, ns
        end = pos + fixed + 2 * ns
        if end > n:
            if not eof:
                return 0, pos, k, most, 0
            return ERR_BIN_TRUNCATED, pos, k, most, n - pos
        k += 1
        most = max(most, ns)
        pos = end
    return 0, pos, k, most, 0


@numba.njit(cache=True, nogil=True)
def keys(buf, n, v1, bits, base, offset, stamp, board, channel):
    """For each event of ``buf[:n]`` (walked before: whole, checked) its file offset (``base``:
    that of ``buf[0]``), time tag, board and channel: what orders the run before it is filled."""
    fixed = fixed_bytes(v1, bits)
    pos = 0
    k = 0
    while pos < n:
        ns = _samples_of(buf, pos, v1, bits, fixed)
        t = np.int64(0)
        for b in range(8):
            t |= np.int64(buf[pos + 4 + b]) << (8 * b)
        offset[k] = base + pos
        stamp[k] = t
        board[k] = _u16(buf, pos)
        channel[k] = _u16(buf, pos + 2)
        k += 1
        pos += fixed + 2 * ns
    return k


@numba.njit(cache=True, nogil=True)
def fill(buf, n, v1, bits, t0, dt, board, channel, stamp, time, energy, energy_cal, energy_short,
         flags, length, dt_out, wave, dest):
    """Write the events of ``buf[:n]`` (walked before: whole, checked) into rows ``dest[0]``,
    ``dest[1]``, ... of the output fields (``dest`` empty: rows 0, 1, ...), each row's fields
    at once (one pass over the rows); absent energies are NaN, samples past an event's length
    0. ``length`` and ``dt_out`` with 0 rows: list mode (trigger rows). Returns the number of
    events."""
    tmp = np.empty(8, np.uint8)
    as_f64 = tmp.view(np.float64)
    width = wave.shape[1]
    records = length.shape[0] > 0
    pos = 0
    k = 0
    while pos < n:
        p = pos + 12
        e = np.nan
        es = np.nan
        ec = np.nan
        if v1:
            e = _u16(buf, p)
            es = _u16(buf, p + 2)
            fl = _u32(buf, p + 4)
            ns = _u32(buf, p + 8)
            p += 12
        else:
            if bits & BIN_ENERGY:
                e = _u16(buf, p)
                p += 2
            if bits & BIN_ENERGY_CAL:
                for b in range(8):
                    tmp[b] = buf[p + b]
                ec = as_f64[0]
                p += 8
            if bits & BIN_ENERGY_SHORT:
                es = _u16(buf, p)
                p += 2
            fl = _u32(buf, p)
            p += 4
            ns = np.int64(0)
            if bits & BIN_WAVEFORM:
                ns = _u32(buf, p + 1)
                p += 5
        t = np.int64(0)
        for b in range(8):
            t |= np.int64(buf[pos + 4 + b]) << (8 * b)
        r = dest[k] if dest.size else k
        board[r] = _u16(buf, pos)
        channel[r] = _u16(buf, pos + 2)
        stamp[r] = t
        time[r] = t // 1000 + t0
        energy[r] = e
        energy_short[r] = es
        energy_cal[r] = ec
        flags[r] = fl
        if records:
            m = min(ns, width)
            length[r] = m
            dt_out[r] = dt
            _samples(buf, p, wave[r], m)
            if m < width:
                _zeros(wave[r], m)
        k += 1
        pos = p + 2 * ns
    return k


watch(globals(), uses=("..word_kernels", ".layout"))
