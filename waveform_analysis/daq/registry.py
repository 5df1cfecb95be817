"""Adapter registry: maps a ``daq_adapter`` name to a :class:`DAQAdapter` instance."""

from __future__ import annotations

import threading

from ..errors import ConfigError, UnknownAdapterError
from .base import DAQAdapter

_ADAPTERS: dict[str, DAQAdapter] = {}
_LOCK = threading.Lock()


def register_adapter(adapter: DAQAdapter, *, replace: bool = False) -> None:
    """Make ``adapter`` available under ``adapter.name``.

    A class is accepted too and instantiated without arguments. Registering a
    taken name raises :class:`ConfigError` unless ``replace=True``.
    """
    if isinstance(adapter, type) and issubclass(adapter, DAQAdapter):
        adapter = adapter()
    if not isinstance(adapter, DAQAdapter):
        raise ConfigError(f"register_adapter expects a DAQAdapter instance, got {adapter!r}")
    name = getattr(adapter, "name", "")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"adapter {adapter!r} has no name")
    with _LOCK:
        if name in _ADAPTERS and not replace and _ADAPTERS[name] is not adapter:
            raise ConfigError(
                f"an adapter named {name!r} is already registered; pass replace=True to override"
            )
        _ADAPTERS[name] = adapter


def get_adapter(name: str) -> DAQAdapter:
    """The adapter registered as ``name``; :class:`UnknownAdapterError` otherwise."""
    if isinstance(name, DAQAdapter):
        return name
    try:
        return _ADAPTERS[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(_ADAPTERS)) or "none"
        raise UnknownAdapterError(
            f"unknown DAQ adapter {name!r}; known adapters: {known}"
        ) from None


def available_adapters() -> list[str]:
    """Names of the registered adapters, sorted."""
    return sorted(_ADAPTERS)
