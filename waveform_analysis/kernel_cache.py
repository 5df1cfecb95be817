"""numba's on-disk cache of our kernels, kept in step with the modules the kernels use.

numba keys a cached kernel on its own source file only (its modification time
and size). A kernel that calls a jitted helper of another module, or reads
another module's constants (a column index, a flag bit), is compiled with that
code and those values frozen in; when only the other module changes (an edit,
a ``git pull`` in an editable install), numba loads the old machine code and
the kernel silently computes with the old helper or constant. Each kernel
module therefore ends with ``watch(globals(), uses=(...))``, naming the modules
of this package it imports from; a stamp of those files' times and sizes is
kept beside numba's cache, and when it changes the module's kernels are
flushed so that they compile again. ``tests/test_kernel_cache.py`` checks that
every kernel module names exactly the package modules it imports.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterable
from typing import Any

__all__ = ["watch"]


def _stamp(modules: Iterable[str]) -> str:
    """One line per used module: its name, modification time (ns) and size."""
    lines = []
    for name in sorted(modules):
        try:
            st = os.stat(sys.modules[name].__file__)
            lines.append(f"{name} {st.st_mtime_ns} {st.st_size}")
        except (KeyError, AttributeError, TypeError, OSError):  # not imported, no file
            lines.append(f"{name} ?")
    return "\n".join(lines) + "\n"


def _kernels(module_globals: dict[str, Any]) -> list[Any]:
    """The module's own numba dispatchers that have an on-disk cache."""
    name = module_globals["__name__"]
    found = []
    for value in module_globals.values():
        cache = getattr(value, "_cache", None)
        func = getattr(value, "py_func", None)
        if cache is None or func is None or getattr(func, "__module__", None) != name:
            continue
        if getattr(cache, "cache_path", None):
            found.append(value)
    return found


def watch(module_globals: dict[str, Any], uses: Iterable[str]) -> None:
    """Flush the cached kernels of the calling module when a module in ``uses`` changed.

    ``uses`` are module names, relative (``"._hits_kernels"``, ``"..word_kernels"``)
    or absolute; each must already be imported (the kernel module imports from it).
    A cache folder that cannot be written is left to numba (it then does not
    cache either).
    """
    from importlib.util import resolve_name

    package = module_globals.get("__package__") or ""
    resolved = [resolve_name(u, package) if u.startswith(".") else u for u in uses]
    kernels = _kernels(module_globals)
    if not kernels:
        return
    folder = kernels[0]._cache.cache_path
    stem = module_globals["__name__"].rsplit(".", 1)[-1]
    path = os.path.join(folder, f"{stem}.uses")
    stamp = _stamp(resolved)
    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read() == stamp:
                return
    except OSError:
        pass
    for kernel in kernels:
        try:
            kernel._cache.flush()
        except OSError:
            return
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(stamp)
        os.replace(tmp, path)
    except OSError:
        pass
