"""Helpers shared by the processing kernels."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ConfigError

POLARITIES = {"negative": -1, "positive": 1}


def polarity_sign(polarity: str) -> int:
    """-1 for negative pulses, +1 for positive ones; :class:`ConfigError` otherwise."""
    try:
        return POLARITIES[polarity]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown polarity {polarity!r}; use one of {sorted(POLARITIES)}"
        ) from None


def negative_rows(polarity: Any, n: int) -> np.ndarray:
    """One bool per record, true for negative pulses: ``polarity`` is one name for all
    records or one name per record (per-channel settings); ConfigError for an unknown name."""
    if isinstance(polarity, str):
        return np.full(n, polarity_sign(polarity) < 0)
    names = np.asarray(polarity)
    if names.shape != (n,):
        raise ConfigError(f"polarity must be one name or one per record ({n}), got shape {names.shape}")
    negative = names == "negative"
    known = negative | (names == "positive")
    if not known.all():  # (two compares: a sort of the names cost 3 ms per 40k records)
        polarity_sign(str(names[np.argmin(known)]))
    return negative


def per_row(value: Any, n: int, name: str) -> np.ndarray:
    """``value`` (a number, or one per record) as a contiguous float64 array of ``n``."""
    out = np.ascontiguousarray(np.broadcast_to(np.asarray(value, np.float64), (n,)))
    if not np.all(out >= 0):
        raise ConfigError(f"{name} must be >= 0, got {value!r}")
    return out
