"""numba kernels of the V1725 binary reader (imported by :meth:`V1725Adapter.read` on first use).

Kept apart from :mod:`waveform_analysis.daq.v1725` so that listing files and the
adapter registry do not import numba; the layout constants and error codes come
from that module (imported first, so importing it from here is no cycle).
"""

from __future__ import annotations

import numba
import numpy as np

from .v1725 import (
    CHANNEL_HEADER_BYTES,
    ERR_CHANNEL_SIZE,
    ERR_EVENT_SIZE,
    ERR_MARKER,
    ERR_MASK,
    ERR_TRAILING,
    EVENT_HEADER_BYTES,
    EVENT_MARKER,
)


@numba.njit(cache=True, nogil=True, inline="always")
def _u32(buf, p):
    return (
        np.int64(buf[p])
        | (np.int64(buf[p + 1]) << 8)
        | (np.int64(buf[p + 2]) << 16)
        | (np.int64(buf[p + 3]) << 24)
    )


@numba.njit(cache=True, nogil=True)
def _walk(buf, fill, board, channel, ticks, offset, nsamp):
    """Walk every event; with ``fill`` write one row per channel record.

    Returns (error code, byte offset of the bad header, number of records).
    """
    n = buf.size
    pos = 0
    k = 0
    while pos < n:
        if pos + EVENT_HEADER_BYTES > n:
            return ERR_TRAILING, pos, k
        w0 = _u32(buf, pos)
        if (w0 >> 28) != EVENT_MARKER:
            return ERR_MARKER, pos, k
        size = w0 & 0x0FFFFFFF
        end = pos + size * 4
        if size < EVENT_HEADER_BYTES // 4 or end > n:
            return ERR_EVENT_SIZE, pos, k
        mask = np.int64(buf[pos + 4]) | (np.int64(buf[pos + 11]) << 8)
        bid = np.int64(buf[pos + 7]) >> 3
        p = pos + EVENT_HEADER_BYTES
        for ch in range(16):
            if not (mask >> ch) & 1:
                continue
            if p + CHANNEL_HEADER_BYTES > end:
                return ERR_MASK, pos, k
            cw = _u32(buf, p)
            csize = cw & 0x3FFFFF
            if csize < CHANNEL_HEADER_BYTES // 4 or p + csize * 4 > end:
                return ERR_CHANNEL_SIZE, p, k
            if fill:
                t = np.int64(0)
                for b in range(6):
                    t |= np.int64(buf[p + 4 + b]) << (8 * b)
                board[k] = bid
                channel[k] = ch
                ticks[k] = t
                offset[k] = p + CHANNEL_HEADER_BYTES
                nsamp[k] = 2 * csize - CHANNEL_HEADER_BYTES // 2
            k += 1
            p += csize * 4
        if p != end:
            return ERR_MASK, pos, k
        pos = end
    return 0, pos, k


@numba.njit(cache=True, nogil=True)
def _copy_waves(buf16, offset, nsamp, dest, lo, hi, wave):
    for i in range(lo, hi):
        o = offset[i] >> 1
        r = dest[i]
        for j in range(nsamp[i]):
            wave[r, j] = buf16[o + j]
