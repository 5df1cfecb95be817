"""numba kernels of the CoMPASS CSV reader (imported by the reader on first use).

Kept apart from :mod:`.csv_reader` so that listing files and the adapter
registry do not import numba. The error codes are those of :mod:`.layout`.
"""

from __future__ import annotations

import numba
import numpy as np

from ...kernel_cache import watch
from .layout import (
    ERR_COUNT,
    ERR_NOT_NUMERIC,
    ERR_OK,
    ERR_RANGE,
    ERR_TOO_LONG,
    ERR_TRUNCATED,
    ERR_VALUE_RANGE,
)

_NL = 10
_CR = 13
_SEMI = 59
_MINUS = 45
_DOT = 46


@numba.njit(cache=True, nogil=True)
def _skip_header(buf):
    """Byte offset of the first data line and the number of header lines before it."""
    n = buf.size
    pos = 0
    lines = 0
    while pos < n:
        c = buf[pos]
        if 48 <= c <= 57:
            return pos, lines
        # a header or blank line: skip it
        while pos < n and buf[pos] != _NL:
            pos += 1
        pos += 1
        lines += 1
    return n, lines


@numba.njit(cache=True, nogil=True)
def _count_columns(buf, pos):
    n = buf.size
    cols = 1
    while pos < n:
        c = buf[pos]
        if c == _NL or c == _CR:
            break
        if c == _SEMI:
            cols += 1
        pos += 1
    return cols


@numba.njit(cache=True, nogil=True)
def _next_line(buf, pos):
    """Offset of the first line start at or after ``pos`` (``pos`` itself if it starts a line)."""
    n = buf.size
    if pos <= 0:
        return 0
    if pos >= n:
        return n
    if buf[pos - 1] == _NL:
        return pos
    while pos < n and buf[pos] != _NL:
        pos += 1
    return min(pos + 1, n)


@numba.njit(cache=True, nogil=True)
def _last_newline(buf, n):
    """Offset one past the last newline in ``buf[:n]`` (0 when there is none)."""
    for i in range(n - 1, -1, -1):
        if buf[i] == _NL:
            return i + 1
    return 0


@numba.njit(cache=True, nogil=True)
def _parse_rows(
    buf, start, end, ncols, nfix, cb, cc, ct, cf, ce, cs, cl, board, channel, timetag, flags,
    energy, energy_short, energy_cal, wave, row0, max_rows,
):
    """Parse the lines in [start, end) into rows ``row0...`` of the output columns.

    ``nfix`` columns precede the samples (``ncols == nfix``: list mode, no
    samples); ``cb``, ``cc``, ``ct``, ``cf``, ``ce``, ``cs``, ``cl`` are the 0-based
    columns of BOARD, CHANNEL, TIMETAG, FLAGS, ENERGY, ENERGYSHORT and CALIB_ENERGY
    (-1: absent). FLAGS may be hex (``0x...``); the energies decimals (``661.66``). Returns (error code, newlines before
    the bad line, 0-based column, rows parsed).
    """
    n = buf.size
    pos = start
    row = row0
    line = 0
    nsamp = ncols - nfix
    while pos < end:
        c = buf[pos]
        if c == _NL:
            pos += 1
            line += 1
            continue
        if c == _CR:
            pos += 1
            continue
        if row - row0 >= max_rows:
            return ERR_COUNT, line, 0, row - row0
        for col in range(nfix):
            # the buffer ends with a newline sentinel: the digit loops need no bound check
            neg = buf[pos] == _MINUS
            if neg:
                pos += 1
            first = pos
            v = np.int64(0)
            hexed = False
            if col == cf and buf[pos] == 48 and (buf[pos + 1] == 120 or buf[pos + 1] == 88):
                pos += 2
                first = pos
                hexed = True
                while True:
                    d = np.int64(buf[pos])
                    if 48 <= d <= 57:
                        d -= 48
                    elif 97 <= d <= 102:
                        d -= 87
                    elif 65 <= d <= 70:
                        d -= 55
                    else:
                        break
                    v = v * 16 + d
                    pos += 1
            else:
                d = np.int64(buf[pos]) - 48
                while d >= 0 and d <= 9:
                    v = v * 10 + d  # 19 digits < 2**64: a wrap shows as v < 0
                    pos += 1
                    d = np.int64(buf[pos]) - 48
            nd = pos - first
            frac = 0.0
            if (col == ce or col == cs or col == cl) and nd > 0 and buf[pos] == _DOT:
                pos += 1
                scale = 1.0
                d = np.int64(buf[pos]) - 48
                while d >= 0 and d <= 9:
                    scale *= 0.1
                    frac += d * scale
                    pos += 1
                    d = np.int64(buf[pos]) - 48
            if pos >= n:
                cc_ = _NL
            else:
                cc_ = buf[pos]
            if nsamp == 0 and col == nfix - 1:  # list mode: the last column ends the line
                if cc_ == _SEMI:
                    return ERR_TOO_LONG, line, col + 1, row - row0
                if cc_ != _NL and cc_ != _CR:
                    return ERR_NOT_NUMERIC, line, col, row - row0
            elif cc_ != _SEMI:
                if cc_ == _NL or cc_ == _CR:
                    return ERR_TRUNCATED, line, col, row - row0
                return ERR_NOT_NUMERIC, line, col, row - row0
            if nd == 0:
                return ERR_NOT_NUMERIC, line, col, row - row0
            if nd > 19 or v < 0 or (hexed and nd > 15):
                return ERR_VALUE_RANGE, line, col, row - row0
            if neg:
                v = -v
            if col == cb:
                board[row] = v
            elif col == cc:
                channel[row] = v
            elif col == ct:
                timetag[row] = v
            elif col == cf:
                if v < 0 or v > 4294967295:
                    return ERR_VALUE_RANGE, line, col, row - row0
                flags[row] = v
            elif col == ce:
                energy[row] = v - frac if neg else v + frac
            elif col == cs:
                energy_short[row] = v - frac if neg else v + frac
            elif col == cl:
                energy_cal[row] = v - frac if neg else v + frac
            pos += 1  # the ';' (in list mode the line end)
        # samples: the buffer ends with a newline sentinel, so digit loops need no bound check
        last = nsamp - 1
        for j in range(nsamp):
            neg = buf[pos] == _MINUS
            if neg:
                pos += 1
            first = pos
            v = np.int64(0)
            d = np.int64(buf[pos]) - 48
            while d >= 0 and d <= 9:
                v = v * 10 + d
                pos += 1
                d = np.int64(buf[pos]) - 48
            nd = pos - first
            cc_ = buf[pos]
            if j < last:
                if cc_ != _SEMI or nd == 0 or nd > 6:
                    if nd > 6:
                        return ERR_RANGE, line, nfix + j, row - row0
                    if nd > 0 and (cc_ == _NL or cc_ == _CR):
                        return ERR_TRUNCATED, line, nfix + j + 1, row - row0
                    if nd == 0 and (cc_ == _NL or cc_ == _CR) and not neg:
                        return ERR_TRUNCATED, line, nfix + j, row - row0
                    return ERR_NOT_NUMERIC, line, nfix + j, row - row0
            else:
                if (cc_ != _NL and cc_ != _CR) or nd == 0 or nd > 6:
                    if nd > 6:
                        return ERR_RANGE, line, nfix + j, row - row0
                    if cc_ == _SEMI and nd > 0:
                        return ERR_TOO_LONG, line, nfix + j + 1, row - row0
                    return ERR_NOT_NUMERIC, line, nfix + j, row - row0
            if neg:
                v = -v
            if v > 32767 or v < -32768:
                return ERR_RANGE, line, nfix + j, row - row0
            wave[row, j] = v
            pos += 1
        # line end: pos is one past \n or \r
        if buf[pos - 1] == _CR and pos < n and buf[pos] == _NL:
            pos += 1
        line += 1
        row += 1
    return ERR_OK, line, 0, row - row0


watch(globals(), uses=(".layout",))
