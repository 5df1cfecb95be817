"""Energy calibration: the one polynomial ``c0 + c1 E + c2 E^2 + ...`` every energy goes through.

The readers (a run's settings.xml / run.info calibration applied to the
firmware energy), ``triggers`` and ``basic_features`` (their ``calibration``
option) all call :func:`calibrate`, so a calibrated energy means the same
wherever it is read.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import ConfigError

__all__ = ["calibrate", "calibration_rows"]


def calibrate(values: np.ndarray, calibration: np.ndarray | None) -> np.ndarray:
    """``c0 + c1 x + c2 x^2 + ...`` of ``values``; ``calibration`` is one coefficient list or
    one row per value (rows of NaN give NaN); ``values`` themselves without one."""
    x = np.asarray(values, np.float64)
    if calibration is None:
        return x.copy()
    c = np.asarray(calibration, np.float64)
    if c.ndim not in (1, 2) or c.shape[-1] == 0 or (c.ndim == 2 and c.shape[0] != x.size):
        raise ConfigError(
            f"calibration must be [c0, c1, ...] or one row per record, got shape {c.shape}"
        )
    out = np.zeros(x.shape)
    for k in range(c.shape[-1] - 1, -1, -1):  # Horner
        out = out * x + (c[..., k] if c.ndim == 2 else c[k])
    return out


def calibration_rows(
    channel: np.ndarray, coefficients: Callable[[int], tuple[float, ...] | None],
    uncalibrated: float | None = None,
) -> np.ndarray:
    """One coefficient row per record from ``coefficients(channel)`` (a channel's polynomial,
    None where it has none). A channel without one gets NaN rows (``uncalibrated=None``:
    its energies become NaN) or the identity (``uncalibrated=1.0``: left as they are)."""
    chans = [int(c) for c in np.unique(channel)]
    rows = {c: coefficients(c) for c in chans}
    width = max([len(r) for r in rows.values() if r is not None], default=2)
    table = np.full((len(channel), max(width, 2)), np.nan)
    for c, coeffs in rows.items():
        sel = channel == c
        if coeffs is not None:
            table[sel] = 0.0
            table[sel, : len(coeffs)] = coeffs
        elif uncalibrated is not None:
            table[sel] = 0.0
            table[sel, 1] = uncalibrated
    return table
