"""The CelestialFlow structures: TaskGraphs wired as their names say.

Each takes TaskManagers (names are made unique when two stages share one) and
offers ``start(tasks)``, which feeds the structure's entry stage(s).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .errors import GraphError
from .graph import TaskGraph
from .manager import TaskManager


def _stage_list(stages: Iterable[TaskManager], what: str) -> list[TaskManager]:
    stages = list(stages)
    if not stages:
        raise GraphError(f"{what} needs at least one stage")
    for s in stages:
        if not isinstance(s, TaskManager):
            raise GraphError(f"{what} takes TaskManagers, got {type(s).__name__}")
    return stages


class _Structure(TaskGraph):
    entry: list[TaskManager]

    def start(self, tasks: Iterable[Any], *, dashboard: bool | int | str = False) -> None:
        """Feed ``tasks`` to the entry stage(s) and run to completion (one entry streams them)."""
        if len(self.entry) > 1:
            tasks = list(tasks)
        self.start_graph({stage: tasks for stage in self.entry}, dashboard=dashboard)


class TaskChain(_Structure):
    """Stages one after another: ``s0 -> s1 -> ... -> sn``."""

    def __init__(self, stages: Sequence[TaskManager], name: str = "TaskChain", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        stages = _stage_list(stages, "TaskChain")
        for s in stages:
            self.add_stage(s)
        for a, b in zip(stages, stages[1:]):
            self.connect(a, b)
        self.entry = stages[:1]


class TaskLoop(_Structure):
    """A cycle: a chain whose last stage feeds the first (one stage feeds itself)."""

    def __init__(self, stages: Sequence[TaskManager], name: str = "TaskLoop", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        stages = _stage_list(stages, "TaskLoop")
        for s in stages:
            self.add_stage(s)
        for a, b in zip(stages, stages[1:] + stages[:1]):
            self.connect(a, b)
        self.entry = stages[:1]


class TaskCross(_Structure):
    """Layers of stages; every stage of a layer feeds every stage of the next."""

    def __init__(self, layers: Sequence[Sequence[TaskManager]], name: str = "TaskCross", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        layers = [_stage_list(layer, "each TaskCross layer") for layer in layers]
        if not layers:
            raise GraphError("TaskCross needs at least one layer")
        for layer in layers:
            for s in layer:
                self.add_stage(s)
        for a, b in zip(layers, layers[1:]):
            self.connect(a, b)
        self.entry = layers[0]


class TaskComplete(_Structure):
    """Every stage feeds every other stage (all ordered pairs)."""

    def __init__(self, stages: Sequence[TaskManager], name: str = "TaskComplete", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        stages = _stage_list(stages, "TaskComplete")
        for s in stages:
            self.add_stage(s)
        for a in stages:
            for b in stages:
                if a is not b:
                    self.connect(a, b)
        self.entry = stages[:1]


class TaskWheel(_Structure):
    """A center stage feeding every ring stage; the ring is a cycle."""

    def __init__(self, center: TaskManager, ring: Sequence[TaskManager], name: str = "TaskWheel", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        ring = _stage_list(ring, "TaskWheel ring")
        self.add_stage(_stage_list([center], "TaskWheel center")[0])
        for s in ring:
            self.add_stage(s)
        self.connect(center, ring)
        if len(ring) > 1:
            for a, b in zip(ring, ring[1:] + ring[:1]):
                self.connect(a, b)
        self.entry = [center]


class TaskGrid(_Structure):
    """A rectangular grid; each stage feeds its right and lower neighbours."""

    def __init__(self, grid: Sequence[Sequence[TaskManager]], name: str = "TaskGrid", **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        rows = [_stage_list(row, "each TaskGrid row") for row in grid]
        if not rows:
            raise GraphError("TaskGrid needs at least one row")
        widths = {len(r) for r in rows}
        if len(widths) != 1:
            raise GraphError(f"TaskGrid rows must have equal lengths, got {[len(r) for r in rows]}")
        for row in rows:
            for s in row:
                self.add_stage(s)
        for i, row in enumerate(rows):
            for j, s in enumerate(row):
                if j + 1 < len(row):
                    self.connect(s, row[j + 1])
                if i + 1 < len(rows):
                    self.connect(s, rows[i + 1][j])
        self.entry = [rows[0][0]]
