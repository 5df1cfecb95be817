"""numba kernels of :mod:`waveform_analysis.processing.baselines`."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _window(row, p, m):
    """Mean and RMS (about the mean) of ``row[p:p + m]``."""
    s = 0.0
    for j in range(p, p + m):
        s += row[j]
    mu = s / m
    v = 0.0
    for j in range(p, p + m):
        d = row[j] - mu
        v += d * d
    return mu, np.sqrt(v / m)


@numba.njit(cache=True, nogil=True)
def end_windows(wave, length, nb, mean, rms, last_rms):
    """Mean and RMS of the first ``min(nb, length)`` samples of each record; RMS of the last."""
    ns = wave.shape[1]
    for r in range(wave.shape[0]):
        L = min(max(length[r], 1), ns)
        m = min(nb, L)
        mean[r], rms[r] = _window(wave[r], 0, m)
        last_rms[r] = _window(wave[r], L - m, m)[1]


@numba.njit(cache=True, nogil=True)
def recheck(wave, length, nb, rows, mean, contaminated):
    """Judge the first window of each record in ``rows`` against the record's quiet windows.

    The record is cut into windows of ``nb`` samples. The quiet windows are
    those whose RMS is at most ``1.5 x`` the smallest plus 0.5 ADC; their
    median RMS and median mean are the record's reference noise and level.
    The first window is contaminated when its RMS exceeds twice the
    reference noise, or when its mean is more than 3 reference noise from
    the reference level and its RMS 1.25 x above the reference noise (a slow
    tail shifts the mean more than the RMS); the ADC offsets keep quantised,
    nearly noiseless records from counting. A contaminated record's
    ``mean`` becomes the reference level.
    """
    ns = wave.shape[1]
    cap = ns // max(nb, 1) + 1
    w_mean = np.empty(cap)
    w_rms = np.empty(cap)
    q_mean = np.empty(cap)
    q_rms = np.empty(cap)
    for i in range(rows.size):
        r = rows[i]
        L = min(max(length[r], 1), ns)
        m = min(nb, L)
        nw = L // m
        if nw < 2:
            continue
        for w in range(nw):
            w_mean[w], w_rms[w] = _window(wave[r], w * m, m)
        lowest = w_rms[0]
        for w in range(1, nw):
            lowest = min(lowest, w_rms[w])
        cut = 1.5 * lowest + 0.5
        nq = 0
        for w in range(nw):
            if w_rms[w] <= cut:
                q_mean[nq] = w_mean[w]
                q_rms[nq] = w_rms[w]
                nq += 1
        level = np.median(q_mean[:nq])
        noise = np.median(q_rms[:nq])
        # the level test needs some excess RMS too: on a record covered by slow
        # tails the quiet windows' level can itself be off while the first is clean
        if w_rms[0] > 2.0 * noise + 0.5 or (
            abs(w_mean[0] - level) > 3.0 * noise + 0.5 and w_rms[0] > 1.25 * noise + 0.25
        ):
            contaminated[r] = True
            mean[r] = level
