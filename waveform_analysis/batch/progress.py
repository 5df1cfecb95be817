"""Progress of a batch over runs: a terminal bar, a notebook bar, or the user's tracker."""

from __future__ import annotations

import sys
import time
from typing import Any


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


class BatchProgress:
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
