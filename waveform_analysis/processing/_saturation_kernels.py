"""numba kernel of :func:`waveform_analysis.processing.saturation.saturated`."""

from __future__ import annotations

import numba

from ..kernel_cache import watch
from ._pulse_kernels import _at


@numba.njit(cache=True, nogil=True, _nrt=False)
def at_limit(flat, stride, offset, ns, length, lo, hi, out, start, stop):
    """``out[i]``: a valid sample of record ``i`` (``start <= i < stop``) at or beyond ``lo``/``hi``;
    record ``i``'s ``ns`` samples are ``flat[offset + i * stride:]`` (:func:`.rows.flat_rows`).

    A min/max reduction per row (no early exit), which the compiler vectorises: most
    records are not saturated, so every sample is looked at anyway. It does so over a
    contiguous row read through :func:`~._pulse_kernels._at` (a row of a strided 2-D view,
    or a checked signed index, keeps it from vectorising), and the kernel, allocating
    nothing, runs without reference counting (each row's view would count references
    atomically on the one array the threads share)."""
    for i in range(start, stop):
        n = min(length[i], ns)
        if n <= 0:
            out[i] = False
            continue
        r0 = offset + i * stride
        row = flat[r0 : r0 + ns]
        mn = row[0]
        mx = row[0]
        for j in range(n):
            v = _at(row, j)
            mn = min(mn, v)
            mx = max(mx, v)
        out[i] = mn <= lo or mx >= hi


watch(globals(), uses=("._pulse_kernels",))
