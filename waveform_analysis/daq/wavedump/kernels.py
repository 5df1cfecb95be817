"""numba kernels of the WaveDump readers: walk (pass 1) and copy (pass 2), binary and ASCII.

Their contract is :mod:`waveform_analysis.daq.blockscan`'s. Imported on the
first read, so that listing files does not import numba.
"""

from __future__ import annotations

import numba
import numpy as np

from ...kernel_cache import watch
from ..blockscan import BOARD, CHANNEL, ENERGY, ENERGY_SHORT, FLAGS, NSAMP, OFFSET, TICKS, TRUNCATED
from ..word_kernels import u32 as _u32
from .layout import (
    ASCII_KEY_BYTES,
    ASCII_KEY_STARTS,
    ERR_ASCII_KEY,
    ERR_ASCII_NUMBER,
    ERR_HEADER,
    ERR_SIZE,
    HEADER_BYTES,
    MAX_SAMPLES,
    SAMPLE_F32,
)


@numba.njit(cache=True, nogil=True)
def walk_binary(buf, n, eof, fill, base, meta, params):
    """Walk the WaveDump binary events in ``buf[:n]``; ``params[0]`` is the sample width."""
    width = params[0]
    pos = 0
    k = 0
    while pos < n:
        if pos + HEADER_BYTES > n:
            return (TRUNCATED if eof else 0), pos, k
        size = _u32(buf, pos)
        if size < HEADER_BYTES or (size - HEADER_BYTES) % width or size - HEADER_BYTES > (
            MAX_SAMPLES * width
        ):
            return ERR_SIZE, pos, k
        board = _u32(buf, pos + 4)
        channel = _u32(buf, pos + 12)
        if board > 31 or channel > 63:
            return ERR_HEADER, pos, k
        if pos + size > n:
            return (TRUNCATED if eof else 0), pos, k
        if fill:
            meta[k, BOARD] = board
            meta[k, CHANNEL] = channel
            meta[k, TICKS] = _u32(buf, pos + 20) & 0x7FFFFFFF
            meta[k, OFFSET] = base + pos + HEADER_BYTES
            meta[k, NSAMP] = (size - HEADER_BYTES) // width
            meta[k, FLAGS] = 0
            meta[k, ENERGY] = -1
            meta[k, ENERGY_SHORT] = -1
        k += 1
        pos += size
    return 0, pos, k


@numba.njit(cache=True, nogil=True)
def copy_binary(buf, base, meta, params, wave):
    """Samples of the ``meta`` rows into ``wave`` rows: u16 as int16, float32 rounded."""
    width = params[0]
    for i in range(meta.shape[0]):
        o = meta[i, OFFSET] - base
        ns = meta[i, NSAMP]
        if width == SAMPLE_F32:
            f = buf[o : o + 4 * ns].view(np.float32)
            for j in range(ns):
                wave[i, j] = np.int16(np.rint(f[j]))
        else:
            wave[i, :ns] = buf[o : o + 2 * ns].view(np.int16)
    return 0, 0


@numba.njit(cache=True, nogil=True, inline="always")
def _line_end(buf, p, n):
    """Offset of the ``\\n`` ending the line at ``p``, or ``n``."""
    while p < n and buf[p] != 10:
        p += 1
    return p


@numba.njit(cache=True, nogil=True)
def _number(buf, p, end):
    """The number in ``buf[p:end]`` (decimal, ``0x`` hex, or with a fraction, rounded) and
    whether one was found; leading blanks skipped."""
    while p < end and (buf[p] == 32 or buf[p] == 9):
        p += 1
    neg = False
    if p < end and buf[p] == 45:
        neg = True
        p += 1
    v = np.int64(0)
    digits = 0
    if p + 1 < end and buf[p] == 48 and (buf[p + 1] == 120 or buf[p + 1] == 88):
        p += 2
        while p < end:
            c = buf[p]
            if 48 <= c <= 57:
                d = c - 48
            elif 97 <= c <= 102:
                d = c - 87
            elif 65 <= c <= 70:
                d = c - 55
            else:
                break
            v = v * 16 + d
            digits += 1
            p += 1
    else:
        while p < end and 48 <= buf[p] <= 57:
            v = v * 10 + (buf[p] - 48)
            digits += 1
            p += 1
        if p < end and buf[p] == 46:  # a fraction (x742 floats): round half up
            if p + 1 < end and 48 <= buf[p + 1] <= 57:
                if buf[p + 1] >= 53:
                    v += 1
                digits += 1
    return (-v if neg else v), digits > 0


@numba.njit(cache=True, nogil=True)
def walk_ascii(buf, n, eof, fill, base, meta, params):
    """Walk the WaveDump ASCII events in ``buf[:n]``: seven header lines, then one line per sample."""
    pos = 0
    k = 0
    values = np.zeros(7, np.int64)
    while pos < n:
        p = pos
        for key in range(7):
            if p >= n:
                return (TRUNCATED if eof else 0), pos, k
            end = _line_end(buf, p, n)
            if end == n and not eof:
                return 0, pos, k
            a, b = ASCII_KEY_STARTS[key], ASCII_KEY_STARTS[key + 1]
            if end - p < b - a + 1:
                return ERR_ASCII_KEY, p, k
            for j in range(b - a):
                if buf[p + j] != ASCII_KEY_BYTES[a + j]:
                    return ERR_ASCII_KEY, p, k
            q = p + b - a
            while q < end and buf[q] != 58:
                q += 1
            v, ok = _number(buf, q + 1, end)
            if not ok or v < 0:
                return ERR_ASCII_KEY, p, k
            values[key] = v
            p = end + 1
        first = p
        ns = values[0]
        for _ in range(ns):
            if p >= n:
                return (TRUNCATED if eof else 0), pos, k
            end = _line_end(buf, p, n)
            if end == n and not eof:
                return 0, pos, k
            p = end + 1
        if fill:
            meta[k, BOARD] = values[1]
            meta[k, CHANNEL] = values[2]
            meta[k, TICKS] = values[5] & 0x7FFFFFFF
            meta[k, OFFSET] = base + first
            meta[k, NSAMP] = ns
            meta[k, FLAGS] = 0
            meta[k, ENERGY] = -1
            meta[k, ENERGY_SHORT] = -1
        k += 1
        pos = min(p, n)
    return 0, pos, k


@numba.njit(cache=True, nogil=True)
def copy_ascii(buf, base, meta, params, wave):
    """Parse the sample lines of the ``meta`` rows into ``wave`` rows."""
    n = buf.size
    for i in range(meta.shape[0]):
        p = meta[i, OFFSET] - base
        for j in range(meta[i, NSAMP]):
            end = _line_end(buf, p, n)
            v, ok = _number(buf, p, end)
            if not ok:
                return ERR_ASCII_NUMBER, base + p
            wave[i, j] = v
            p = end + 1
    return 0, 0


watch(globals(), uses=("..blockscan", "..word_kernels", ".layout"))
