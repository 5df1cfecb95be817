"""Wake-ups when a DAQ folder changes: inotify (and its kin) through ``watchdog``, else polling.

The watcher rescans the folder either way; events only make it look sooner. Polling
is the fallback where ``watchdog`` is not installed or cannot watch the folder (network
file systems deliver no change events to the client that did not write), and what
``poll=True`` asks for.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from loguru import logger


class FolderEvents:
    """Sets ``changed`` whenever anything under ``root`` is created, written, moved or
    deleted, and remembers the run folders (first path component) it happened in."""

    def __init__(self, root: Path, poll: bool = False) -> None:
        self.root = Path(root)
        self.changed = threading.Event()
        self.mode = "poll"
        self._observer: Any = None
        self._touched: set[str] = set()
        self._lock = threading.Lock()
        if not poll:
            self._start()

    def touch(self, path: str) -> None:
        """Note a change at ``path`` (an event's, absolute or under ``root``)."""
        try:
            rel = Path(path).relative_to(self.root)
        except ValueError:
            return
        if rel.parts:
            with self._lock:
                self._touched.add(rel.parts[0])
        self.changed.set()

    def take_touched(self) -> set[str]:
        """The run folders changed since the last call."""
        with self._lock:
            touched, self._touched = self._touched, set()
        return touched

    def _start(self) -> None:
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            logger.info("watchdog is not installed (extra 'watch'): polling the DAQ folder")
            return
        touch = self.touch

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                if event.event_type not in ("opened", "closed_no_write"):
                    touch(str(event.src_path))
                    if getattr(event, "dest_path", ""):
                        touch(str(event.dest_path))

        observer = Observer()
        try:
            observer.schedule(_Handler(), str(self.root), recursive=True)
            observer.start()
        except OSError as exc:  # e.g. the inotify watch limit, or a file system without events
            logger.warning(f"cannot watch {self.root} for changes ({exc}); polling it instead")
            return
        self._observer = observer
        self.mode = type(observer).__name__.removesuffix("Observer").lower() or "events"

    def wait(self, timeout: float) -> bool:
        """Block until a change (True) or ``timeout`` seconds (False); then clear the flag."""
        hit = self.changed.wait(timeout)
        self.changed.clear()
        return hit

    def close(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
