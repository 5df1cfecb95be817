"""Adapter registry: maps a ``daq_adapter`` name to a :class:`DAQAdapter`, and recognises a run's format.

``"auto"`` (:data:`AUTO`) is not an adapter: :func:`resolve_adapter` asks each
registered adapter, in registration order, whether it reads the run
(:meth:`DAQAdapter.detect`) and takes the first that does.
"""

from __future__ import annotations

import threading
from pathlib import Path

from ..errors import ConfigError, NoDataError, UnknownAdapterError
from .base import DAQAdapter, run_dir

AUTO = "auto"

_ADAPTERS: dict[str, DAQAdapter] = {}  # by name, in registration order
_ALIASES: dict[str, str] = {}
_LOCK = threading.Lock()


def register_adapter(adapter: DAQAdapter, *, replace: bool = False) -> None:
    """Make ``adapter`` available under ``adapter.name`` (and its ``aliases``).

    A class is accepted too and instantiated without arguments. Registering a
    taken name raises :class:`ConfigError` unless ``replace=True``.
    """
    if isinstance(adapter, type) and issubclass(adapter, DAQAdapter):
        adapter = adapter()
    if not isinstance(adapter, DAQAdapter):
        raise ConfigError(f"register_adapter expects a DAQAdapter instance, got {adapter!r}")
    name = getattr(adapter, "name", "")
    if not isinstance(name, str) or not name or name == AUTO:
        raise ConfigError(f"adapter {adapter!r} has no usable name")
    with _LOCK:
        taken = _ADAPTERS.get(name)
        if taken is not None and not replace and taken is not adapter:
            raise ConfigError(
                f"an adapter named {name!r} is already registered; pass replace=True to override"
            )
        _ADAPTERS[name] = adapter
        _ALIASES.pop(name, None)
        for alias in getattr(adapter, "aliases", ()):
            if alias not in _ADAPTERS:
                _ALIASES[alias] = name


def get_adapter(name: str) -> DAQAdapter:
    """The adapter registered as ``name`` (or an alias of it); :class:`UnknownAdapterError` otherwise.

    ``"auto"`` names no one adapter: use :func:`resolve_adapter` with a run."""
    if isinstance(name, DAQAdapter):
        return name
    try:
        return _ADAPTERS[_ALIASES.get(name, name)]
    except (KeyError, TypeError):
        known = ", ".join(available_adapters()) or "none"
        hint = " ('auto' is resolved per run: resolve_adapter)" if name == AUTO else ""
        raise UnknownAdapterError(f"unknown DAQ adapter {name!r}; known adapters: {known}{hint}") from None


def available_adapters() -> list[str]:
    """Names (and aliases) of the registered adapters, sorted."""
    return sorted([*_ADAPTERS, *_ALIASES])


def detect_adapter(data_root: Path | str, run_id: str) -> tuple[DAQAdapter, str]:
    """The first registered adapter that recognises the run, and its description of the format.

    :class:`RunNotFoundError` when the run folder is missing; :class:`NoDataError`
    naming what each adapter looked for when none recognises it."""
    folder = run_dir(data_root, run_id)
    for adapter in list(_ADAPTERS.values()):
        found = adapter.detect(folder)
        if found:
            return adapter, found
    looked = "; ".join(f"{a.name}: {a.looks_for}" for a in _ADAPTERS.values() if a.looks_for)
    raise NoDataError(
        f"run {run_id!r}: no known digitizer format in {folder} (looked for {looked}); "
        "name the format with the daq_adapter option if it is one of these"
    )


def resolve_adapter(name: str, data_root: Path | str, run_id: str) -> DAQAdapter:
    """The adapter ``name`` names, or for ``"auto"`` the one that recognises the run."""
    if name == AUTO:
        return detect_adapter(data_root, run_id)[0]
    return get_adapter(name)
