"""numba kernels of the VX2730 CSV reader (imported by :meth:`VX2730Adapter.read` on first use).

Kept apart from :mod:`waveform_analysis.daq.vx2730` so that listing files and the
adapter registry do not import numba. The error codes returned match the
``ERR_*`` constants of that module.
"""

from __future__ import annotations

import numba
import numpy as np

_NL = 10
_CR = 13
_SEMI = 59
_MINUS = 45


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
def _count_newlines(buf, start, end):
    """Number of newline bytes in [start, end)."""
    k = 0
    for i in range(start, end):
        k += buf[i] == _NL
    return k


@numba.njit(cache=True, nogil=True)
def _parse_rows(buf, start, end, ncols, board, channel, timetag, wave, row0, max_rows):
    """Parse the lines in [start, end) into rows ``row0...`` of the output columns.

    Returns (error code, newlines before the bad line, 0-based column, rows parsed).
    """
    n = buf.size
    pos = start
    row = row0
    line = 0
    nsamp = ncols - 7
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
            return 5, line, 0, row - row0
        # seven fixed columns
        for col in range(7):
            neg = False
            if pos < n and buf[pos] == _MINUS:
                neg = True
                pos += 1
            v = np.int64(0)
            nd = 0
            if (
                col == 5
                and pos + 1 < n
                and buf[pos] == 48
                and (buf[pos + 1] == 120 or buf[pos + 1] == 88)
            ):
                pos += 2
                while pos < n:
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
                    nd += 1
                    pos += 1
            else:
                while pos < n:
                    d = np.int64(buf[pos]) - 48
                    if d < 0 or d > 9:
                        break
                    v = v * 10 + d
                    nd += 1
                    pos += 1
            if pos >= n:
                cc = _NL
            else:
                cc = buf[pos]
            if cc != _SEMI:
                if (cc == _NL or cc == _CR) and nd > 0 or (nd == 0 and (cc == _NL or cc == _CR)):
                    return 1, line, col, row - row0
                return 3, line, col, row - row0
            if nd == 0 or nd > 18:
                return 3, line, col, row - row0
            if neg:
                v = -v
            if col == 0:
                board[row] = v
            elif col == 1:
                channel[row] = v
            elif col == 2:
                timetag[row] = v
            pos += 1  # the ';'
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
            cc = buf[pos]
            if j < last:
                if cc != _SEMI or nd == 0 or nd > 6:
                    if nd > 6:
                        return 4, line, 7 + j, row - row0
                    if nd > 0 and (cc == _NL or cc == _CR):
                        return 1, line, 7 + j + 1, row - row0
                    if nd == 0 and (cc == _NL or cc == _CR) and not neg:
                        return 1, line, 7 + j, row - row0
                    return 3, line, 7 + j, row - row0
            else:
                if (cc != _NL and cc != _CR) or nd == 0 or nd > 6:
                    if nd > 6:
                        return 4, line, 7 + j, row - row0
                    if cc == _SEMI and nd > 0:
                        return 2, line, 7 + j + 1, row - row0
                    return 3, line, 7 + j, row - row0
            if neg:
                v = -v
            if v > 32767 or v < -32768:
                return 4, line, 7 + j, row - row0
            wave[row, j] = v
            pos += 1
        # line end: pos is one past \n or \r
        if buf[pos - 1] == _CR and pos < n and buf[pos] == _NL:
            pos += 1
        line += 1
        row += 1
    return 0, line, 0, row - row0
