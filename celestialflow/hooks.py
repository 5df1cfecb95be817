"""Small lifecycle hooks that attach to a run: progress bars and anything a user adds.

``on_start`` and ``on_end`` are called once per run; ``on_submit``,
``on_progress`` and ``on_results`` at most once per chunk, never per task; ``on_retry`` and
``on_failure`` once per event, which only happens on the failure path. A
:class:`HookSet` works out once per run which hooks override which method, so a
hook that only cares about failures costs nothing per chunk.

``on_submit`` and ``on_results`` take keyword-only arguments and ``**_``: arguments added later
will not break a hook written today. New hook points follow that rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .manager import TaskManager


class Hook:
    """Base hook: override what you need."""

    def on_start(self, manager: TaskManager, total: int | None) -> None:
        """A run of ``manager`` begins; ``total`` tasks if known."""

    def on_submit(self, manager: TaskManager, *, tasks: list[Any], **_: Any) -> None:
        """A chunk of ``tasks`` was handed to the workers (a retry too); once per chunk.
        With a shared :class:`~celestialflow.backends.PriorityGate` they may still wait there."""

    def on_progress(self, manager: TaskManager, n: int) -> None:
        """``n`` more tasks reached their final state."""

    def on_results(self, manager: TaskManager, *, tasks: list[Any], results: list[Any], **_: Any) -> None:
        """A chunk's ``tasks`` succeeded with ``results`` (processed, same order); once per chunk."""

    def on_retry(self, manager: TaskManager, task: Any, exc: BaseException, attempt: int) -> None:
        """``task`` failed with retryable ``exc`` and will be tried again (``attempt`` >= 1)."""

    def on_failure(self, manager: TaskManager, task: Any, exc: BaseException) -> None:
        """``task`` failed for good (no retry left, or not retryable)."""

    def on_end(self, manager: TaskManager) -> None:
        """The run ended (normally or not)."""


_METHODS = ("on_start", "on_submit", "on_progress", "on_results", "on_retry", "on_failure", "on_end")


class HookSet:
    """The hooks of one run of ``manager``, each method bound only on the hooks that override it."""

    __slots__ = ("manager", "hooks", *_METHODS)

    def __init__(self, manager: TaskManager, hooks: Iterable[Hook]) -> None:
        self.manager = manager
        self.hooks = tuple(hooks)
        for method in _METHODS:
            base = getattr(Hook, method)
            bound = tuple(
                getattr(h, method)
                for h in self.hooks
                if getattr(type(h), method, base) is not base
            )
            setattr(self, method, bound)

    def start(self, total: int | None) -> None:
        for call in self.on_start:
            call(self.manager, total)

    def submit(self, tasks: list[Any]) -> None:
        for call in self.on_submit:
            call(self.manager, tasks=tasks)

    def progress(self, n: int) -> None:
        for call in self.on_progress:
            call(self.manager, n)

    def results(self, tasks: list[Any], results: list[Any]) -> None:
        for call in self.on_results:
            call(self.manager, tasks=tasks, results=results)

    def retry(self, task: Any, exc: BaseException, attempt: int) -> None:
        for call in self.on_retry:
            call(self.manager, task, exc, attempt)

    def failure(self, task: Any, exc: BaseException) -> None:
        for call in self.on_failure:
            call(self.manager, task, exc)

    def end(self) -> None:
        for call in self.on_end:
            call(self.manager)


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
