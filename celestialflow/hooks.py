"""Small lifecycle hooks that attach to a run: progress bars and anything a user adds.

``on_start``/``on_progress``/``on_end`` are called at most once per chunk, never
per task, so attaching a hook costs nothing in the hot loop; ``on_retry`` is
``on_retry`` and ``on_failure`` once per event, which only happens on the
failure path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .manager import TaskManager


class Hook:
    """Base hook: override what you need."""

    def on_start(self, manager: TaskManager, total: int | None) -> None:
        """A run of ``manager`` begins; ``total`` tasks if known."""

    def on_progress(self, manager: TaskManager, n: int) -> None:
        """``n`` more tasks reached their final state."""

    def on_retry(self, manager: TaskManager, task: Any, exc: BaseException, attempt: int) -> None:
        """``task`` failed with retryable ``exc`` and will be tried again (``attempt`` >= 1)."""

    def on_failure(self, manager: TaskManager, task: Any, exc: BaseException) -> None:
        """``task`` failed for good (no retry left, or not retryable)."""

    def on_end(self, manager: TaskManager) -> None:
        """The run ended (normally or not)."""


class ProgressHook(Hook):
    """A tqdm bar (a widget in Jupyter through ``tqdm.auto``) with the manager's description."""

    def __init__(self, position: int | None = None, leave: bool = True, **tqdm_kwargs: Any) -> None:
        self.position = position
        self.leave = leave
        self.kwargs = tqdm_kwargs
        self.bar: Any = None

    def on_start(self, manager: TaskManager, total: int | None) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=total,
            desc=manager.progress_desc,
            position=self.position,
            leave=self.leave,
            dynamic_ncols=True,
            **self.kwargs,
        )

    def on_progress(self, manager: TaskManager, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def on_end(self, manager: TaskManager) -> None:
        if self.bar is not None:
            c = manager.counts
            self.bar.set_postfix(ok=c["succeeded"], failed=c["failed"], refresh=False)
            self.bar.close()
            self.bar = None
