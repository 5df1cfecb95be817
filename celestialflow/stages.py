"""Stages with a special way of passing results on: splitters and routers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import UnknownSuccessorError
from .manager import TaskManager


def _identity(task: Any) -> Any:
    return task


class TaskSplitter(TaskManager):
    """Each item of the iterable ``func`` returns becomes one task of every successor.

    Without ``func`` the task itself is split. Generators are consumed exactly once
    (into a list, which is also what the success cache holds); an empty result
    sends nothing on.
    """

    emits = "split"

    def __init__(self, func: Callable[..., Any] | None = None, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("name", getattr(func, "__name__", None) or "splitter")
        super().__init__(func or _identity, *args, **kwargs)

    def process_result(self, task: Any, result: Any) -> Any:
        """The function's iterable as a list: each element goes downstream as a task of its own."""
        return result if type(result) is list else list(result)


class TaskRouter(TaskManager):
    """``func`` returns ``(successor_name, task)``; the task goes to that successor only.

    Without ``func`` each task must already be such a pair. A name that is not a
    successor of this stage makes that task fail with :class:`UnknownSuccessorError`.
    """

    emits = "route"

    def __init__(self, func: Callable[..., Any] | None = None, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("name", getattr(func, "__name__", None) or "router")
        super().__init__(func or _identity, *args, **kwargs)
        self.successor_names: frozenset[str] | None = None  # set_successors, by the graph

    def set_successors(self, names: frozenset[str]) -> None:
        """The stages this router may send to (checked per task in :meth:`process_result`)."""
        self.successor_names = names

    def process_result(self, task: Any, result: Any) -> Any:
        """Check that the function returned ``(successor name, item)``: ``item`` goes to that successor only."""
        try:
            target, item = result
        except (TypeError, ValueError):
            raise TypeError(
                f"router {self.name!r} must return (successor_name, task), got {result!r:.80}"
            ) from None
        names = self.successor_names
        if names is not None and target not in names:
            known = ", ".join(sorted(names)) or "none"
            raise UnknownSuccessorError(
                f"router {self.name!r} sent a task to {target!r}, which is not one of its successors ({known})"
            )
        return target, item
