"""numba kernels of the CAEN readout-dump reader: walk and copy for standard, DPP-ZLE and DPP-PSD.

Their contract is :mod:`waveform_analysis.daq.blockscan`'s; the layouts are in
:mod:`.layout`. Imported on the first read, so that listing files does not
import numba.
"""

from __future__ import annotations

import numba
import numpy as np

from ...kernel_cache import watch
from ..blockscan import BOARD, CHANNEL, ENERGY, ENERGY_SHORT, FLAGS, NSAMP, OFFSET, TICKS, TRUNCATED
from ..word_kernels import u32 as _u32
from .layout import (
    BOARD_FAIL_BIT,
    ERR_CHANNEL,
    ERR_COUPLE,
    ERR_DUAL_TRACE,
    ERR_EVENT_SIZE,
    ERR_MARKER,
    ERR_MASK,
    EVENT_MARKER,
    FLAG_PILEUP,
    HEADER_BYTES,
    MAX_SAMPLES,
)


@numba.njit(cache=True, nogil=True)
def _event(buf, pos, n, eof):
    """(code, end) of the event header at ``pos``: code -1 means "continue in the next block"."""
    if pos + HEADER_BYTES > n:
        return (TRUNCATED if eof else -1), pos
    w0 = _u32(buf, pos)
    if (w0 >> 28) != EVENT_MARKER:
        return ERR_MARKER, pos
    size = (w0 & 0x0FFFFFFF) * 4
    if size < HEADER_BYTES:
        return ERR_EVENT_SIZE, pos
    if pos + size > n:
        return (TRUNCATED if eof else -1), pos
    return 0, pos + size


@numba.njit(cache=True, nogil=True, inline="always")
def _mask(buf, pos):
    return np.int64(buf[pos + 4]) | (np.int64(buf[pos + 11]) << 8)


@numba.njit(cache=True, nogil=True)
def walk_standard(buf, n, eof, fill, base, meta, params):
    """Standard-firmware events: one row per masked channel of each event."""
    pos = 0
    k = 0
    while pos < n:
        code, end = _event(buf, pos, n, eof)
        if code == -1:
            return 0, pos, k
        if code:
            return code, pos, k
        mask = _mask(buf, pos)
        nch = 0
        for ch in range(16):
            nch += (mask >> ch) & 1
        data = end - pos - HEADER_BYTES
        if (nch == 0 and data != 0) or (nch > 0 and data % (4 * nch)):
            return ERR_MASK, pos, k
        ns = data // (2 * nch) if nch else 0
        if fill:
            fail = (np.int64(buf[pos + 7]) >> 2) & 1
            p = pos + HEADER_BYTES
            for ch in range(16):
                if not (mask >> ch) & 1:
                    continue
                meta[k, BOARD] = np.int64(buf[pos + 7]) >> 3
                meta[k, CHANNEL] = ch
                meta[k, TICKS] = _u32(buf, pos + 12) & 0x7FFFFFFF
                meta[k, OFFSET] = base + p
                meta[k, NSAMP] = ns
                meta[k, FLAGS] = fail << BOARD_FAIL_BIT
                meta[k, ENERGY] = -1
                meta[k, ENERGY_SHORT] = -1
                k += 1
                p += 2 * ns
        else:
            k += nch
        pos = end
    return 0, pos, k


@numba.njit(cache=True, nogil=True)
def copy_standard(buf, base, meta, params, wave):
    """Samples of standard-firmware channel blocks (14 bits of each 16-bit half)."""
    for i in range(meta.shape[0]):
        o = meta[i, OFFSET] - base
        ns = meta[i, NSAMP]
        s = buf[o : o + 2 * ns].view(np.uint16)
        for j in range(ns):
            wave[i, j] = s[j] & 0x3FFF
    return 0, 0


@numba.njit(cache=True, nogil=True)
def walk_zle(buf, n, eof, fill, base, meta, params):
    """DPP-ZLE events: one row per masked channel, its length with the skipped samples."""
    pos = 0
    k = 0
    while pos < n:
        code, end = _event(buf, pos, n, eof)
        if code == -1:
            return 0, pos, k
        if code:
            return code, pos, k
        mask = _mask(buf, pos)
        p = pos + HEADER_BYTES
        for ch in range(16):
            if not (mask >> ch) & 1:
                continue
            if p + 4 > end:
                return ERR_MASK, pos, k
            csize = (_u32(buf, p) & 0xFFFF) * 4
            if csize < 4 or p + csize > end:
                return ERR_CHANNEL, p, k
            ns = np.int64(0)
            for q in range(p + 4, p + csize, 4):
                w = _u32(buf, q)
                ns += 2 * (w & 0x0FFFFFFF) if (w >> 28) == 0b1000 else 2
            if ns > MAX_SAMPLES:
                return ERR_CHANNEL, p, k
            if fill:
                meta[k, BOARD] = np.int64(buf[pos + 7]) >> 3
                meta[k, CHANNEL] = ch
                meta[k, TICKS] = _u32(buf, pos + 12) & 0x7FFFFFFF
                meta[k, OFFSET] = base + p
                meta[k, NSAMP] = ns
                meta[k, FLAGS] = 0
                meta[k, ENERGY] = -1
                meta[k, ENERGY_SHORT] = -1
            k += 1
            p += csize
        if p != end:
            return ERR_MASK, pos, k
        pos = end
    return 0, pos, k


@numba.njit(cache=True, nogil=True)
def copy_zle(buf, base, meta, params, wave):
    """Samples of DPP-ZLE channels, skipped words filled with the channel's baseline."""
    for i in range(meta.shape[0]):
        p = meta[i, OFFSET] - base
        head = _u32(buf, p)
        baseline = head >> 16
        end = p + (head & 0xFFFF) * 4
        j = 0
        for q in range(p + 4, end, 4):
            w = _u32(buf, q)
            if (w >> 28) == 0b1000:
                for _ in range(2 * (w & 0x0FFFFFFF)):
                    wave[i, j] = baseline
                    j += 1
            else:
                wave[i, j] = w & 0x3FFF
                wave[i, j + 1] = (w >> 16) & 0x3FFF
                j += 2
    return 0, 0


@numba.njit(cache=True, nogil=True)
def walk_psd(buf, n, eof, fill, base, meta, params):
    """DPP-PSD board aggregates: one row per event of each couple aggregate."""
    pos = 0
    k = 0
    while pos < n:
        code, end = _event(buf, pos, n, eof)
        if code == -1:
            return 0, pos, k
        if code:
            return code, pos, k
        mask = np.int64(buf[pos + 4])
        board = np.int64(buf[pos + 7]) >> 3
        p = pos + HEADER_BYTES
        for couple in range(8):
            if not (mask >> couple) & 1:
                continue
            if p + 8 > end:
                return ERR_MASK, pos, k
            a0 = _u32(buf, p)
            asize = (a0 & 0x3FFFFF) * 4
            if not (a0 >> 31) or asize < 8 or p + asize > end:
                return ERR_COUPLE, p, k
            fw = _u32(buf, p + 4)
            if (fw >> 31) & 1:
                return ERR_DUAL_TRACE, p + 4, k
            ns = (fw & 0xFFFF) * 8 if (fw >> 27) & 1 else 0
            eq, et, ee = (fw >> 30) & 1, (fw >> 29) & 1, (fw >> 28) & 1
            extended = ee and ((fw >> 24) & 7) <= 2
            words = et + ns // 2 + ee + eq
            if words == 0:
                return ERR_COUPLE, p, k
            q = p + 8
            while q < p + asize:
                if q + 4 * words > p + asize:
                    return ERR_COUPLE, q, k
                if fill:
                    tw = _u32(buf, q) if et else 0
                    ticks = tw & 0x7FFFFFFF
                    r = q + 4 * et + 2 * ns
                    if extended:
                        ticks |= (_u32(buf, r) >> 16) << 31
                    r += 4 * ee
                    meta[k, BOARD] = board
                    meta[k, CHANNEL] = 2 * couple + (tw >> 31)
                    meta[k, TICKS] = ticks
                    meta[k, OFFSET] = base + q + 4 * et
                    meta[k, NSAMP] = ns
                    if eq:
                        charge = _u32(buf, r)
                        meta[k, ENERGY] = charge >> 16
                        meta[k, ENERGY_SHORT] = charge & 0x7FFF
                        meta[k, FLAGS] = FLAG_PILEUP if (charge >> 15) & 1 else 0
                    else:
                        meta[k, ENERGY] = -1
                        meta[k, ENERGY_SHORT] = -1
                        meta[k, FLAGS] = 0
                k += 1
                q += 4 * words
            p += asize
        if p != end:
            return ERR_MASK, pos, k
        pos = end
    return 0, pos, k


watch(globals(), uses=("..blockscan", "..word_kernels", ".layout"))
