"""numba kernel of :func:`waveform_analysis.saturation.saturated` (kept apart so that
importing the package does not import numba)."""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True)
def at_limit(wave, length, lo, hi, out):
    for i in range(wave.shape[0]):
        hit = False
        for j in range(min(length[i], wave.shape[1])):
            v = wave[i, j]
            if v <= lo or v >= hi:
                hit = True
                break
        out[i] = hit
