"""numba kernels of the V1725 binary reader (imported by the reader on first use).

Kept apart from the reader so that listing files and the adapter registry do
not import numba; the layout constants and error codes come from :mod:`.layout`,
which the reader imports too.
"""

from __future__ import annotations

import numba
import numpy as np

from ...kernel_cache import watch
from ..word_kernels import u32 as _u32
from .layout import (
    BOARD_FAIL_BIT,
    CHANNEL_HEADER_BYTES,
    ERR_CHANNEL_SIZE,
    ERR_EVENT_SIZE,
    ERR_MARKER,
    ERR_MASK,
    ERR_TRAILING,
    EVENT_HEADER_BYTES,
    EVENT_MARKER,
)


@numba.njit(cache=True, nogil=True)
def _walk(buf, n, eof, fill, base, board, channel, ticks, offset, nsamp, flags):
    """Walk the whole events in ``buf[:n]``; with ``fill`` write one row per channel record.

    ``base`` is the file offset of ``buf[0]`` (``offset`` gets file offsets of
    the samples). Without ``eof`` an event running past ``n`` ends the walk
    without error (it is read with the next block). Returns (error code,
    offset where the walk stopped or of the bad header, records, events with
    the Board Fail bit, offset of the first of them or -1).
    """
    pos = 0
    k = 0
    n_fail = 0
    first_fail = -1
    while pos < n:
        if pos + EVENT_HEADER_BYTES > n:
            if not eof:
                return 0, pos, k, n_fail, first_fail
            return ERR_TRAILING, pos, k, n_fail, first_fail
        w0 = _u32(buf, pos)
        if (w0 >> 28) != EVENT_MARKER:
            return ERR_MARKER, pos, k, n_fail, first_fail
        size = w0 & 0x0FFFFFFF
        end = pos + size * 4
        if size < EVENT_HEADER_BYTES // 4:
            return ERR_EVENT_SIZE, pos, k, n_fail, first_fail
        if end > n:
            if not eof:
                return 0, pos, k, n_fail, first_fail
            return ERR_EVENT_SIZE, pos, k, n_fail, first_fail
        mask = np.int64(buf[pos + 4]) | (np.int64(buf[pos + 11]) << 8)
        bid = np.int64(buf[pos + 7]) >> 3
        fail = (np.int64(buf[pos + 7]) >> 2) & 1  # bit 26 of word 1
        if fail:
            if first_fail < 0:
                first_fail = base + pos
            n_fail += 1
        p = pos + EVENT_HEADER_BYTES
        for ch in range(16):
            if not (mask >> ch) & 1:
                continue
            if p + CHANNEL_HEADER_BYTES > end:
                return ERR_MASK, pos, k, n_fail, first_fail
            cw = _u32(buf, p)
            csize = cw & 0x3FFFFF
            if csize < CHANNEL_HEADER_BYTES // 4 or p + csize * 4 > end:
                return ERR_CHANNEL_SIZE, p, k, n_fail, first_fail
            if fill:
                t = np.int64(0)
                for b in range(6):
                    t |= np.int64(buf[p + 4 + b]) << (8 * b)
                board[k] = bid
                channel[k] = ch
                ticks[k] = t
                offset[k] = base + p + CHANNEL_HEADER_BYTES
                nsamp[k] = 2 * csize - CHANNEL_HEADER_BYTES // 2
                flags[k] = fail << BOARD_FAIL_BIT
            k += 1
            p += csize * 4
        if p != end:
            return ERR_MASK, pos, k, n_fail, first_fail
        pos = end
    return 0, pos, k, n_fail, first_fail


@numba.njit(cache=True, nogil=True)
def _copy_waves(buf16, base16, offset, nsamp, dest, lo, hi, wave):
    """Copy records ``lo..hi`` (samples at file offsets ``offset``) from a block
    starting at int16 index ``base16`` of the file into their rows ``dest``."""
    for i in range(lo, hi):
        o = (offset[i] >> 1) - base16
        r = dest[i]
        for j in range(nsamp[i]):
            wave[r, j] = buf16[o + j]


@numba.njit(cache=True, nogil=True)
def _unwrap(group_start, ticks, period, slack):
    """Undo the counter's roll-overs in place: within each group (rows in file
    order, groups starting at ``group_start``), a drop by more than ``slack``
    ticks adds one period to all later rows (``slack`` 0: rows in acquisition
    order, so that any drop is a roll-over)."""
    wraps = np.int64(0)
    prev = np.int64(0)
    for i in range(ticks.size):
        if group_start[i]:
            wraps = 0
            prev = ticks[i]
        elif ticks[i] < prev - slack:
            wraps += 1
        if not group_start[i]:
            prev = ticks[i]
        ticks[i] += wraps * period


watch(globals(), uses=("..word_kernels", ".layout"))
