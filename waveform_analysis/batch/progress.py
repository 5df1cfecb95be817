"""Progress of a batch over runs: a terminal bar, a notebook bar, or the user's tracker.

:class:`BatchProgress` is a celestialflow :class:`~celestialflow.Hook`: a stage's
results and failures wake it (an Event set in the stage thread, nothing more), and
:meth:`BatchProgress.follow`, in the calling thread, then shows the ledger's
counts (they are not polled). The bar and the tracker are only ever touched from the
calling thread, where Ctrl-C lands (a tracker may raise it, and a notebook's
widgets belong to it).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from celestialflow import Hook, TaskManager


def in_jupyter() -> bool:
    """Whether this process is a Jupyter kernel."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()  # type: ignore[attr-defined]
    except Exception:
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


class BatchProgress(Hook):
    """Shows runs done out of ``total`` with successes, failures, throughput and ETA.

    ``tracker`` may be any object with ``update(n)`` (a tqdm bar, say; also
    ``set_postfix`` if it has one) or a callable ``tracker(done, total)``; it is
    updated instead of a bar of our own and never closed here.
    """

    def __init__(
        self,
        total: int,
        desc: str,
        *,
        show: bool,
        jupyter_mode: bool | None,
        tracker: Any = None,
        update_interval: float = 0.5,
    ) -> None:
        self.total = total
        self.tracker = tracker
        self.interval = max(0.0, float(update_interval))
        self._shown = 0
        self._last = 0.0
        self._changed = threading.Event()
        self.bar: Any = None
        if tracker is None and show:
            notebook = in_jupyter() if jupyter_mode is None else bool(jupyter_mode)
            from tqdm import tqdm as bar_cls

            if notebook:
                try:
                    import tqdm.notebook as nb

                    if getattr(nb, "IProgress", None) is not None:
                        bar_cls = nb.tqdm
                except ImportError:  # without ipywidgets a text bar still works in a notebook
                    pass
            self.bar = bar_cls(total=total, desc=desc, unit="run", dynamic_ncols=True)

    def on_results(self, manager: TaskManager, *, tasks: list[Any], results: list[Any], **_: Any) -> None:
        self._changed.set()

    def on_failure(self, manager: TaskManager, task: Any, exc: BaseException) -> None:
        self._changed.set()

    def wake(self) -> None:
        """Make :meth:`follow` look again now (the batch ended)."""
        self._changed.set()

    def follow(self, ended: threading.Event, counts: Callable[[], tuple[int, int, int]], tick: float) -> None:
        """Until ``ended``: show ``counts()`` (done, ok, failed) each time a stage changed them, at
        most once per ``update_interval``. A wait lasts ``tick`` seconds at most, so that Ctrl-C
        lands even where a blocked wait cannot be interrupted."""
        tick = max(0.001, float(tick))
        while not ended.is_set():
            if not self._changed.wait(tick):
                continue
            wait = self._last + self.interval - time.monotonic()
            if wait > 0:  # shown a moment ago: show the change when the interval is over
                ended.wait(min(wait, tick))
                continue
            self._changed.clear()
            self.update(*counts(), force=True)

    def update(self, done: int, ok: int, failed: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        step = done - self._shown
        self._shown = done
        target = self.bar if self.bar is not None else self.tracker
        if target is None:
            return
        if callable(target) and not hasattr(target, "update"):
            target(done, self.total)
            return
        if step:
            target.update(step)
        if hasattr(target, "set_postfix"):
            target.set_postfix(ok=ok, failed=failed, refresh=False)

    def close(self, done: int, ok: int, failed: int) -> None:
        self.update(done, ok, failed, force=True)
        if self.bar is not None:
            self.bar.close()
            self.bar = None
