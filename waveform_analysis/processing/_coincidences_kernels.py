"""The numba pass of :mod:`waveform_analysis.processing.coincidences`."""

from __future__ import annotations

import numba


@numba.njit(cache=True, nogil=True)
def pair_positions(t, key, is_ref, is_partner, window, all_pairs, out_ref, out_partner, fill):
    """Count (``fill`` False) or write the (reference, partner) positions of ``t``'s order."""
    n = t.size
    k = 0
    for i in range(n):
        if not is_ref[i]:
            continue
        j = i + 1  # with "all", each pair once: the later trigger is the partner
        if not all_pairs:  # partners before the reference too
            j = i
            while j > 0 and t[i] - t[j - 1] < window:
                j -= 1
        while j < n and t[j] - t[i] < window:
            if is_partner[j] and key[j] != key[i]:
                if fill:
                    out_ref[k] = i
                    out_partner[k] = j
                k += 1
            j += 1
    return k
