"""Load the numba kernels of the standard chain's processing before the first run needs them.

numba loads a cached kernel at its first call, per signature (the types of its
arguments: dtype, layout, read-only or not), not at import. :func:`warm_up`
calls each kernel the standard chain uses, through its wrapper where one
exists, on a few records built here, with the argument types a real run
passes, so that the first real call finds the machine code loaded. Nothing is
generated, written or read from disk, and no Context is made; the readers'
kernels are warmed the same way by :mod:`waveform_analysis.daq.warmup`.
``tests/test_warmup.py`` checks that a real run adds no signature afterwards.
"""

from __future__ import annotations

import time

import numpy as np

__all__ = ["warm_up"]

_N_SAMPLES = 32


def _records() -> np.ndarray:
    """Three records of two channels, one negative pulse each, as a reader stages them."""
    from ..dtypes import st_waveforms_dtype

    st = np.zeros(3, st_waveforms_dtype(_N_SAMPLES))
    st["channel"] = (0, 1, 0)
    st["time"] = (0, 10, 10_000)
    st["dt"] = 4.0
    st["length"] = _N_SAMPLES
    st["wave"] = 1000 + (np.arange(_N_SAMPLES) % 3)
    st["wave"][:, 16:19] = 900
    return st


def _processing() -> None:
    """Baselines, saturation, noise, hits, features and events, as the plugins call them."""
    from .baselines import channel_levels, end_window_stats, finish_baselines, store_baselines
    from .events import group_events
    from .features import basic_features
    from .hits import HIT_DEFAULTS, find_peaks
    from .noise import noise_from
    from .rows import channel_keys
    from .saturation import saturated

    st = _records()
    mean, rms, last, ends, tail = end_window_stats(st, cap=8)
    keys = channel_keys(st["board"], st["channel"])
    floor = channel_levels(keys, rms, last, mean)[1] + 1.0
    # -1: every row re-judged; caps past the ends and a floor: every window walked again
    finish_baselines(st, None, mean, rms, np.full(len(st), -1.0), ends, floor, ends + 1)
    store_baselines(st, mean, np.maximum(rms, 1.0), tail)  # as the plugin: float64 RMS
    store_baselines(st, mean, np.maximum(rms, 1.0).astype(np.float32), tail)  # as set_baselines
    st["saturated"] = saturated(st)
    st.flags.writeable = False  # later stages read the records from the cache, read-only
    # the plugin passes per-record settings (threshold, polarity), which reach the kernel
    # as a read-only array; a scalar would be a writable one: another signature
    n = len(st)
    noise_from(keys, st["baseline_rms"].copy(), st["baseline"].copy())  # the plugin's columns
    peaks = find_peaks(st, threshold=np.full(n, HIT_DEFAULTS.threshold), polarity=np.full(n, "negative"),
                       noise=noise_from(keys, st["baseline_rms"], st["baseline"]))
    basic_features(st, peaks, window=(0, _N_SAMPLES))
    group_events(peaks, 100)


def warm_up() -> float:
    """Load the kernels of the standard chain's processing (baselines to events); seconds taken.

    Cheap once done (numba keeps what it loaded). The readers' kernels are
    :func:`waveform_analysis.daq.warmup.warm_up_readers`'."""
    t0 = time.perf_counter()
    _processing()
    return time.perf_counter() - t0
