"""How a Context's run is resolved to its reader: the adapter (``"auto"``: the one that
recognises the run's files), the files it lists and the run's :class:`~.base.RunInfo`.

The options come from the ``raw_files`` plugin's configuration when the Context has
it, else from the flat config, else from :data:`RUN_OPTION_DEFAULTS`. The functions
take any object with ``get_config``, ``config`` and ``data_root`` (a Context), so the
Context, the plugins and the watcher share them without importing one another.
"""

from __future__ import annotations

import copy
import inspect
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from . import DEFAULT_ADAPTER, get_adapter, resolve_adapter
from .models import FAMILIES, family

__all__ = ["RUN_OPTION_DEFAULTS", "adapter_for", "list_files", "run_info_for"]

#: Defaults of the options every reader of a run shares (the ``raw_files`` options).
RUN_OPTION_DEFAULTS: dict[str, Any] = {
    "daq_adapter": DEFAULT_ADAPTER, "daq_folder": "auto", "dt_ns": None,
    "wavedump_config": None, "board_model": None,
}


def adapter_for(context: Any, run_id: str | None = None):
    """The DAQ adapter configured for ``raw_files`` in ``context``; for ``"auto"`` the one that
    recognises ``run_id``'s files."""
    try:
        name = context.get_config("raw_files", "daq_adapter")
    except Exception:  # noqa: BLE001 - a context without the raw_files plugin
        name = context.config.get("daq_adapter", DEFAULT_ADAPTER)
    if run_id is None:
        return _configured(get_adapter(name), context, None)
    return _configured(resolve_adapter(name, context.data_root, run_id), context, run_id)


def _configured(adapter: Any, context: Any, run_id: str | None) -> Any:
    """``adapter``, or a copy of it with the ``wavedump_config`` and ``board_model`` options
    (the WaveDump config file the run's adapter reads; the board model of adapters that take
    one, for CoMPASS the model of runs whose names and settings name none)."""
    model = _option(context, "board_model")
    config = _option(context, "wavedump_config")
    if model is not None and family(str(model)) is None:
        known = ", ".join(f.name for f in FAMILIES.values())
        raise ConfigError(f"option board_model={model!r}: not a CAEN digitizer model known here "
                          f"(families {known}; e.g. 'DT5730', 'V1725', 'VX2730')")
    changes = {}
    if config is not None and hasattr(adapter, "config"):
        changes["config"] = _config_path(context, run_id, str(config))
    if model is not None:
        for attr in ("model", "default_model"):
            if hasattr(adapter, attr):
                changes[attr] = str(model)
                break
    if not changes:
        return adapter
    adapter = copy.copy(adapter)
    for attr, value in changes.items():
        setattr(adapter, attr, value)
    return adapter


def _config_path(context: Any, run_id: str | None, config: str) -> Path:
    """The ``wavedump_config`` file: absolute, else in the run's folder, else under data_root."""
    path = Path(config).expanduser()
    if path.is_absolute():
        looked = [path]
    else:
        root = Path(context.data_root)
        looked = ([root / str(run_id) / path] if run_id is not None else []) + [root / path]
    for candidate in looked:
        if candidate.is_file():
            return candidate
    raise ConfigError(f"option wavedump_config={config!r}: no such file (looked for "
                      f"{', '.join(str(c) for c in looked)})")


def _option(context: Any, name: str) -> Any:
    try:
        return context.get_config("raw_files", name)
    except Exception:  # noqa: BLE001 - a context without the raw_files plugin
        return context.config.get(name, RUN_OPTION_DEFAULTS[name])


def list_files(context: Any, run_id: str, adapter: Any = None) -> np.ndarray:
    """The run's files, as ``raw_files`` lists them."""
    adapter = adapter or adapter_for(context, run_id)
    folder = _option(context, "daq_folder")
    takes_folder = "folder" in inspect.signature(adapter.list_files).parameters
    if folder == "auto" or (folder == "raw" and not takes_folder):
        return adapter.list_files(context.data_root, run_id)
    if not takes_folder:
        raise ConfigError(
            f"option daq_folder={folder!r}: the {adapter.name!r} adapter reads one folder only"
        )
    return adapter.list_files(context.data_root, run_id, folder=folder)


def run_info_for(context: Any, run_id: str, files: np.ndarray | None = None):
    """``(adapter, RunInfo)`` of ``run_id``: what its files and settings say, ``dt_ns`` resolved."""
    adapter = adapter_for(context, run_id)
    if files is None:
        files = list_files(context, run_id, adapter)
    dt_ns = _option(context, "dt_ns")
    if dt_ns is None:  # the channels table's default entry gives every channel one
        dt_ns = ((context.config.get("channels") or {}).get("default") or {}).get("dt_ns")
    info = adapter.run_info(context.data_root, run_id, files, dt_ns=dt_ns)
    return adapter, info
