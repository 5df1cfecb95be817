"""Turn list and dict tasks into hashable keys for dedup and result dicts."""

from __future__ import annotations

from typing import Any


def make_hashable(value: Any) -> Any:
    """A hashable stand-in for ``value``: lists/tuples become tuples, dicts tuples of items,
    sets frozensets, recursively. Hashable values come back unchanged."""
    try:
        hash(value)
        return value
    except TypeError:
        pass
    if isinstance(value, dict):
        items = [(make_hashable(k), make_hashable(v)) for k, v in value.items()]
        try:
            items.sort()
        except TypeError:  # keys of mixed types keep insertion order
            pass
        return tuple(items)
    if isinstance(value, (list, tuple)):
        return tuple(make_hashable(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(make_hashable(v) for v in value)
    if hasattr(value, "tobytes") and hasattr(value, "shape"):  # numpy arrays
        return (type(value).__name__, value.shape, str(getattr(value, "dtype", "")), value.tobytes())
    raise TypeError(f"task of type {type(value).__name__} cannot be made hashable: {value!r:.80}")
