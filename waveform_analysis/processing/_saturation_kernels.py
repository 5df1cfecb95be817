"""numba kernel of :func:`waveform_analysis.processing.saturation.saturated`."""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True)
def at_limit(wave, length, lo, hi, out, start, stop):
    """``out[i]``: a valid sample of record ``i`` (``start <= i < stop``) at or beyond ``lo``/``hi``.

    A min/max reduction per row (no early exit), which the compiler vectorises:
    most records are not saturated, so every sample is looked at anyway."""
    for i in range(start, stop):
        n = min(length[i], wave.shape[1])
        row = wave[i]
        mn = row[0] if n > 0 else hi
        mx = row[0] if n > 0 else lo
        for j in range(n):
            v = row[j]
            mn = min(mn, v)
            mx = max(mx, v)
        out[i] = n > 0 and (mn <= lo or mx >= hi)
