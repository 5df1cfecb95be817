"""numba kernels of the CoMPASS BIN reader (imported by the reader on first use).

Kept apart from :mod:`.bin_reader` so that listing files does not import
numba; layout constants and error codes are those of :mod:`.layout`.
"""

from __future__ import annotations

import numba
import numpy as np

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


@numba.njit(cache=True, nogil=True, inline="always")
def _u16(buf, p):
    return np.int64(buf[p]) | (np.int64(buf[p + 1]) << 8)


@numba.njit(cache=True, nogil=True, inline="always")
def _u32(buf, p):
    return _u16(buf, p) | (_u16(buf, p + 2) << 16)


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
def walk(buf, n, eof, v1, bits, fill, board, channel, stamp, energy, energy_cal, energy_short,
         flags, length, wave):
    """Walk the whole events in ``buf[:n]``; with ``fill`` write event k into row k.

    Without ``eof`` an event running past ``n`` ends the walk without error (it
    is read with the next block). ``wave`` has 0 columns in list mode.
    Returns (error code, offset where the walk stopped or of the bad event,
    events, most samples in an event, the bad value).
    """
    fixed = fixed_bytes(v1, bits)
    tmp = np.empty(8, np.uint8)
    as_f64 = tmp.view(np.float64)
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
        p = pos + 12
        e = np.int64(-1)
        es = np.int64(-1)
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
        if ns > MAX_SAMPLES:
            return ERR_BIN_SIZE, pos, k, most, ns
        end = p + 2 * ns
        if end > n:
            if not eof:
                return 0, pos, k, most, 0
            return ERR_BIN_TRUNCATED, pos, k, most, n - pos
        if fill:
            board[k] = _u16(buf, pos)
            channel[k] = ch
            t = np.int64(0)
            for b in range(8):
                t |= np.int64(buf[pos + 4 + b]) << (8 * b)
            stamp[k] = t
            if e >= 0:
                energy[k] = e
            if es >= 0:
                energy_short[k] = es
            energy_cal[k] = ec
            flags[k] = fl
            m = min(ns, wave.shape[1])
            length[k] = m
            for j in range(m):
                wave[k, j] = np.int16(_u16(buf, p + 2 * j))
        k += 1
        most = max(most, ns)
        pos = end
    return 0, pos, k, most, 0
