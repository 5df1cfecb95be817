"""Helpers shared by the processing kernels."""

from __future__ import annotations

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
