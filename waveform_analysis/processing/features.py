"""Per-waveform features: height and area over the whole record and over a window."""

from __future__ import annotations

import numpy as np

from ..dtypes import BASIC_FEATURES_DTYPE
from ..errors import ConfigError
from ._common import polarity_sign


def basic_features(
    st_waveforms: np.ndarray,
    peaks: np.ndarray | None = None,
    polarity: str = "negative",
    window: tuple[int, int] | None = None,
) -> np.ndarray:
    """One ``BASIC_FEATURES_DTYPE`` row per record of ``st_waveforms``.

    ``height``/``area``: largest excursion and sum above baseline (sign
    removed by ``polarity``) over the whole record; ``amplitude`` /
    ``window_area``: the same over ``window=(start, stop)`` samples (stop
    exclusive, clipped to the record; ``None`` = whole record); ``n_peaks``
    counts the rows of ``peaks`` per record (0 when ``peaks`` is None).
    Heights are never negative: a record with no excursion has height 0.
    """
    sgn = polarity_sign(polarity)
    n = len(st_waveforms)
    ns = st_waveforms["wave"].shape[1] if n else 0
    if window is None:
        w0, w1 = 0, ns
    else:
        try:
            w0, w1 = (int(window[0]), int(window[1]))
        except (TypeError, ValueError, IndexError):
            raise ConfigError(f"window must be (start, stop) samples, got {window!r}") from None
        if w0 < 0 or w1 < w0:
            raise ConfigError(f"window must satisfy 0 <= start <= stop, got {window!r}")
    out = np.zeros(n, dtype=BASIC_FEATURES_DTYPE)
    if n == 0:
        return out
    out["record_i"] = np.arange(n)
    out["timestamp"] = st_waveforms["timestamp"]
    out["time"] = st_waveforms["time"]
    out["channel"] = st_waveforms["channel"]
    height = np.zeros(n, np.float32)
    area = np.zeros(n, np.float32)
    amp = np.zeros(n, np.float32)
    warea = np.zeros(n, np.float32)
    from ._features_kernels import features

    features(
        st_waveforms["wave"],
        np.ascontiguousarray(st_waveforms["length"], dtype=np.int64),
        np.ascontiguousarray(st_waveforms["baseline"], dtype=np.float64),
        float(sgn), w0, w1, height, area, amp, warea,
    )
    out["height"] = height
    out["area"] = area
    out["amplitude"] = amp
    out["window_area"] = warea
    if peaks is not None and len(peaks):
        out["n_peaks"] = np.bincount(peaks["record_i"], minlength=n)[:n]
    return out
