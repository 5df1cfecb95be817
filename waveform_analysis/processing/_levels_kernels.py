"""numba kernel of :func:`waveform_analysis.processing.hits.start_levels`: the level a hit
starts beyond, per record, by the hit kernel's own noise rule (drawn on waveform plots)."""

from __future__ import annotations

import numba

from ..kernel_cache import watch
from ._pulse_kernels import _own_noise


@numba.njit(cache=True, nogil=True)
def start_levels(flat, stride, offset, ns, length, noise, rec_rms, tail, guard, g_margin, g_window, thresholds,
                 t_sigma, out):
    """Per record, the level beyond its baseline a hit starts at, as :func:`find_hits` takes
    it: ``max(thresholds[r], t_sigma * noise)``, the noise raised by :func:`_own_noise`
    (``tail``: the records' ``tail_rms``, 0 where not known)."""
    for r in range(length.size):
        L = min(length[r], ns)
        nz = noise[r]
        if guard > 0.0 and L > 0:
            row = flat[offset + r * stride : offset + r * stride + ns]
            nz = _own_noise(row, L, nz, rec_rms[r], guard, g_margin, g_window, tail[r])
        out[r] = max(thresholds[r], t_sigma * nz)


watch(globals(), uses=("._pulse_kernels",))
