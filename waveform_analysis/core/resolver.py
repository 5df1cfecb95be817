"""How a Context gets one data name of one run: memory, then disk, then compute.

:meth:`Resolver.get` looks in this Context's memory, then in the disk cache,
then computes: the dependencies first (the same way, recursively), then the
plugin, whose pieces (:meth:`~waveform_analysis.core.plugin.Plugin.compute_chunks`)
are checked (a numpy array of plain data, of the plugin's declared ``dtype``)
and appended to a cache entry that is committed after the last
one (read-only: joined in memory). One lock per (run, data name) makes two
threads asking for the same entry compute it once; a thread-local stack of
the plugins being computed lets :meth:`current_plugin` tell a plugin's own
``get_data`` calls apart from the user's, and names the plugin an error comes
from. The :class:`~waveform_analysis.core.context.Context` declares (config,
plugins, keys) and delegates here.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from celestialflow.errors import annotate as annotate_error

from ..errors import PluginError
from .chunks import RunChunks
from .config import resolve_options
from .memory import trim_memory
from .plugin import Plugin, call_compute, dtype_mismatch
from .storage import check_array

if TYPE_CHECKING:
    from .context import Context

__all__ = ["Resolver", "annotate"]


class Resolver:
    """The data engine of one Context: its in-memory results, entry locks and plugin stack."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.memory: dict[str, dict[str, tuple[str, Any]]] = {}
        self.lock = threading.RLock()
        self._entry_locks: dict[tuple[str, str], threading.RLock] = {}
        self._local = threading.local()

    def _stack(self) -> list[Plugin]:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def current_plugin(self) -> Plugin | None:
        """The plugin whose code runs in this thread now (None: the user's own call)."""
        stack = self._stack()
        return stack[-1] if stack else None

    def in_memory(self, run_id: str, name: str, key: str) -> tuple[str, Any] | None:
        """``(key, data)`` held in memory for this key, or None."""
        hit = self.memory.get(run_id, {}).get(name)
        if hit is not None and hit[0] == key:
            return hit
        return None

    def status(self, run_id: str, name: str, key: str) -> str:
        """``"memory"``, ``"cached"`` (on disk) or ``"compute"``."""
        if self.in_memory(run_id, name, key) is not None:
            return "memory"
        p = self.context._plugins[name]
        if p.save_to_cache and self.context.storage.has(run_id, name, key):
            return "cached"
        return "compute"

    def forget(self, run_id: str | None = None, name: str | None = None) -> None:
        """Drop in-memory results: of one run (``name`` None: all of it), or of ``name`` in every run."""
        with self.lock:
            if run_id is None:
                for per_run in self.memory.values():
                    per_run.pop(name, None)
            elif name is None:
                self.memory.pop(run_id, None)
            else:
                self.memory.get(run_id, {}).pop(name, None)

    def release(self, run_id: str) -> None:
        """Drop the results and entry locks of ``run_id``."""
        with self.lock:
            self.memory.pop(run_id, None)
            for k in [k for k in self._entry_locks if k[0] == run_id]:
                del self._entry_locks[k]

    def _entry_lock(self, run_id: str, name: str) -> threading.RLock:
        with self.lock:
            lock = self._entry_locks.get((run_id, name))
            if lock is None:
                lock = self._entry_locks[(run_id, name)] = threading.RLock()
            return lock

    def _remember(self, run_id: str, name: str, key: str, data: Any) -> None:
        with self.lock:
            self.memory.setdefault(run_id, {})[name] = (key, data)

    def get(self, run_id: str, name: str, keys: dict[str, str]) -> Any:
        """``name`` of ``run_id`` under ``keys`` (every key of its lineage)."""
        key = keys[name]
        hit = self.in_memory(run_id, name, key)
        if hit is not None:
            return hit[1]
        with self._entry_lock(run_id, name):
            hit = self.in_memory(run_id, name, key)
            if hit is not None:
                return hit[1]
            plugin = self.context._plugins[name]
            if plugin.save_to_cache:
                data = self.context.storage.load(run_id, name, key)
                if data is not None:
                    self._remember(run_id, name, key, data)
                    return data
            inputs = {dep: self.get(run_id, dep, keys) for dep in plugin.depends_on}
            if plugin.save_to_cache:
                data = self._produce(plugin, run_id, keys, inputs)
            else:
                data = self._compute(plugin, run_id, inputs)
            self._remember(run_id, name, key, data)
            return data

    def _produce(self, plugin: Plugin, run_id: str, keys: dict[str, str], inputs: dict[str, Any]) -> Any:
        """Run ``plugin.compute_chunks`` and append its pieces to the cache entry (or, read-only, join them).

        One path for every run: a plugin that is not chunked, or a run within
        one chunk, is one piece. Nothing is visible until the last piece is in
        and the entry committed; an error or interruption leaves no entry."""
        context, storage = self.context, self.context.storage
        name, key = plugin.provides, keys[plugin.provides]
        npy, _ = storage.paths(run_id, name, key)
        chunks = RunChunks(
            name,
            inputs,
            plugin.depends_on[0] if plugin.chunked and plugin.depends_on else None,
            context.chunk_bytes,
            None if context.readonly else npy.with_name(f".{npy.name}"),
        )
        pieces = self._pieces(plugin, run_id, plugin.compute_chunks(context, run_id, chunks))
        if context.readonly:
            parts = list(pieces)
            if len(parts) == 1:
                return parts[0]
            return np.concatenate(parts) if parts else np.zeros(0)
        meta = {
            "plugin": f"{type(plugin).__module__}.{type(plugin).__qualname__}",
            "version": plugin.version,
            "options": resolve_options(context.config, plugin),
            "upstream": {d: keys[d] for d in plugin.depends_on},
        }
        with storage.writer(run_id, name, key, meta) as writer:
            chunks.slot = writer.slot  # a plugin may make its pieces in the entry's file
            for piece in pieces:
                writer.append(piece)
                del piece  # the writer's alone: freed once written (at most two chunks in memory)
                trim_memory()  # the chunk's freed arrays go back to the system, not to a heap
        return writer.result

    def _pieces(self, plugin: Plugin, run_id: str, pieces: Iterator[Any]) -> Iterator[np.ndarray]:
        """The pieces of ``plugin``, each checked; its code runs as the current plugin."""
        it = iter(pieces)
        while True:
            stack = self._stack()
            stack.append(plugin)
            try:
                piece = next(it)
            except StopIteration:
                return
            except Exception as exc:
                annotate(exc, plugin, run_id)
                raise
            finally:
                stack.pop()
            check_array(piece, f"plugin {type(plugin).__name__} ({plugin.provides!r}) returned")
            if plugin.dtype is not None:
                wrong = dtype_mismatch(plugin.dtype, piece.dtype)
                if wrong:
                    raise PluginError(
                        f"plugin {type(plugin).__name__} ({plugin.provides!r}) returned data for run "
                        f"{run_id!r} that does not have its declared dtype: {wrong}"
                    )
            yield piece
            del piece

    def _compute(self, plugin: Plugin, run_id: str, inputs: dict[str, Any]) -> Any:
        stack = self._stack()
        stack.append(plugin)
        try:
            return call_compute(plugin, self.context, run_id, inputs)
        except Exception as exc:
            annotate(exc, plugin, run_id)
            raise
        finally:
            stack.pop()


def annotate(exc: BaseException, plugin: Plugin, run_id: str) -> None:
    """Name the plugin an exception comes from (the innermost plugin is the one that failed)."""
    annotate_error(
        exc,
        f"raised by plugin {type(plugin).__name__} v{plugin.version} while computing "
        f"{plugin.provides!r} for run {run_id!r}",
        wa_plugin=plugin.provides,
    )
