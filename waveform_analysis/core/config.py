"""Context configuration: defaults, merging and per-plugin option resolution.

An option ``opt`` of the plugin providing ``name`` resolves, in this order, to
``config[name][opt]``, then ``config[opt]``, then the option's default, and is
type-checked against its :class:`~waveform_analysis.core.plugin.Option`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .plugin import Plugin

__all__ = [
    "DEFAULT_CONFIG",
    "STORAGE_ENV",
    "default_storage_dir",
    "merge_config",
    "resolve_option",
    "resolve_options",
]

DEFAULT_CONFIG: dict[str, Any] = {"data_root": "DAQ", "daq_adapter": "vx2730"}
STORAGE_ENV = "WAVEFORM_ANALYSIS_STORAGE_DIR"


def default_storage_dir() -> Path:
    """``$WAVEFORM_ANALYSIS_STORAGE_DIR`` if set, else ``~/.cache/waveform_analysis``."""
    env = os.environ.get(STORAGE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "waveform_analysis"


def merge_config(base: dict[str, Any], update: dict[str, Any] | None) -> dict[str, Any]:
    """A new dict: ``base`` updated by ``update``; nested dicts (per-plugin options) merge per key."""
    if update is None:
        return dict(base)
    if not isinstance(update, dict):
        raise ConfigError(f"config must be a dict, got {type(update).__name__}")
    out = dict(base)
    for k, v in update.items():
        if not isinstance(k, str):
            raise ConfigError(f"config keys must be strings, got {k!r}")
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **v}
        elif isinstance(v, dict):
            out[k] = dict(v)
        else:
            out[k] = v
    return out


def resolve_option(config: dict[str, Any], plugin: Plugin, name: str) -> Any:
    """The value of option ``name`` of ``plugin`` under ``config`` (checked)."""
    opt = plugin.options.get(name)
    if opt is None:
        known = ", ".join(sorted(plugin.options)) or "none"
        raise ConfigError(
            f"plugin {plugin.provides!r} has no option {name!r} (its options: {known})"
        )
    per_plugin = config.get(plugin.provides)
    if isinstance(per_plugin, dict) and name in per_plugin:
        value = per_plugin[name]
    elif name in config:
        value = config[name]
    else:
        value = opt.default
    return opt.coerce(value, plugin=plugin.provides, name=name)


def resolve_options(config: dict[str, Any], plugin: Plugin) -> dict[str, Any]:
    """All options of ``plugin`` resolved under ``config``, in declaration order."""
    return {name: resolve_option(config, plugin, name) for name in plugin.options}


def resolve_data_root(config: dict[str, Any]) -> Path:
    """``config['data_root']`` as an absolute path (relative paths against the current directory)."""
    root = config.get("data_root", DEFAULT_CONFIG["data_root"])
    if not isinstance(root, str | os.PathLike):
        raise ConfigError(f"config 'data_root' must be a path, got {root!r}")
    return Path(os.path.abspath(Path(root).expanduser()))


def check_storage_outside(storage_dir: Path, data_root: Path) -> bool:
    """Warn (and return False) when the cache folder lies inside the raw-data tree.

    The defaults never put it there; a user who does it on purpose is warned,
    not stopped: the adapters only read ``<data_root>/<run>/RAW``.
    """
    s = Path(os.path.abspath(storage_dir))
    d = Path(os.path.abspath(data_root))
    try:
        s = s.resolve()
        d = d.resolve()
    except OSError:
        pass
    if s == d or s.is_relative_to(d):
        from loguru import logger

        logger.warning(
            "storage_dir {} is inside data_root {}; keeping the cache outside the raw-data tree "
            "is safer (a shared or read-only data folder, backups of raw data)",
            s,
            d,
        )
        return False
    return True
