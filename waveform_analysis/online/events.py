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
    """Sets ``changed`` whenever anything under ``root`` is created, written, moved or deleted."""

    def __init__(self, root: Path, poll: bool = False) -> None:
        self.root = Path(root)
        self.changed = threading.Event()
        self.mode = "poll"
        self._observer: Any = None
        if not poll:
            self._start()

    def _start(self) -> None:
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            logger.info("watchdog is not installed (extra 'watch'): polling the DAQ folder")
            return
        changed = self.changed

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                if event.event_type != "opened" and event.event_type != "closed_no_write":
                    changed.set()

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
