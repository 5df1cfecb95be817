"""TaskGraph: TaskManagers as the nodes of a directed graph, streaming results.

Every stage runs at once in its own thread (or its own process, ``stage_mode``)
and owns one bounded :class:`~celestialflow.queues.Mailbox`. A stage's results
go into the mailbox of every successor (a router's into one), in batches; a full
mailbox blocks the sender, so a slow stage holds back a fast one instead of
filling memory. Stages finish by the counting rule of
:mod:`celestialflow.termination`: a chain drains stage by stage, a cycle ends
when nothing circulates in it.

With ``schedule="layered"`` a DAG runs layer by layer instead: a layer's
stages start once every stage of the previous layer has finished.

This module is the topology and the API; one run of it (mailboxes, threads,
results, the status snapshot) is a :class:`~celestialflow.graphrun.GraphRun`,
kept as ``graph.last_run``. ``graph.status()`` and ``graph.events`` are what a
live view reads.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import networkx as nx

from .backends import shared_mismatch
from .dot import dot_source, render_dot, svg_or_none
from .errors import ConfigurationError, GraphError, StageNotFoundError
from .events import EventChannel
from .failures import failures_by_stage
from .graphrun import GraphRun, StageStatus
from .manager import TaskManager
from .tasks import check_picklable, make_hashable

STAGE_MODES = ("thread", "process")
SCHEDULES = ("eager", "layered")

StageRef = TaskManager | str


class TaskGraph:
    """A graph of TaskManager stages; see the module docstring for how it runs.

    Example::

        >>> from celestialflow import TaskGraph, TaskManager
        >>> g = TaskGraph(name="demo")
        >>> a = g.add_stage(TaskManager(lambda x: x + 1, name="inc", log_to_file=False))
        >>> b = g.add_stage(TaskManager(lambda x: x * 2, name="dbl", log_to_file=False))
        >>> g.connect(a, b)
        >>> g.start_graph({a: [1, 2, 3]})
        >>> sorted(g.get_results()["dbl"])
        [4, 6, 8]
    """

    def __init__(
        self,
        name: str = "TaskGraph",
        *,
        schedule: str = "eager",
        queue_capacity: int = 8192,
        show_progress: bool = False,
        collect_results: bool = True,
        record_failures: bool = True,
        failure_dir: str | Path | None = None,
        log_dir: str | Path | None = None,
        log_keep: int | None = 20,
        max_items: int | None = None,
        shared_workers: Any = None,
    ) -> None:
        """``shared_workers``: workers that every thread-, process- or dask-mode stage without
        a ``pool`` (or Dask client) of its own runs on; their kind must match the stage's mode
        (a thread pool, a process pool or a Dask client, best behind a
        :class:`~celestialflow.backends.PriorityGate`, which serves deeper stages first).
        The caller owns them: a run neither starts nor closes them. Without them, the
        process-mode stages of a run share one process pool that the run starts and closes."""
        if schedule not in SCHEDULES:
            raise ConfigurationError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if not isinstance(queue_capacity, int) or queue_capacity < 1:
            raise ConfigurationError(f"queue_capacity must be a positive int, got {queue_capacity!r}")
        self.name = name
        self.schedule = schedule
        self.queue_capacity = queue_capacity
        self.show_progress = show_progress
        self.collect_results = collect_results
        self.record_failures = record_failures
        self.failure_dir = Path(failure_dir) if failure_dir is not None else None
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.log_keep = log_keep
        if max_items is not None and (not isinstance(max_items, int) or max_items < 1):
            raise ConfigurationError(f"max_items must be a positive int or None, got {max_items!r}")
        self.max_items = max_items
        if shared_workers is not None and not callable(getattr(shared_workers, "submit", None)):
            raise ConfigurationError(
                f"shared_workers must be an executor with submit() (a PriorityGate, a pool, a Dask client), "
                f"got {type(shared_workers).__name__}"
            )
        self.shared_workers = shared_workers
        self._g = nx.DiGraph()
        self._stages: dict[str, TaskManager] = {}
        self._names: dict[int, str] = {}
        self._stage_modes: dict[str, str] = {}
        self.events = EventChannel()
        self.last_run: GraphRun | None = None  # the run going on, or the last one
        self.dashboard: Any = None  # the dashboard server (celestialflow.dashboard), while one is open

    @property
    def pending(self) -> dict[str, list[Any]]:
        """Work left when the last run stopped early (Ctrl-C or a crash), by stage name."""
        return self.last_run.pending if self.last_run is not None else {}

    @property
    def failure_log_path(self) -> Path | None:
        """The failure file of the last run, when a task failed in it (else None)."""
        return self.last_run.failure_log_path if self.last_run is not None else None

    @property
    def log_path(self) -> Path | None:
        """The log file of the last run, when any stage logs to a file."""
        return self.last_run.log_path if self.last_run is not None else None

    @property
    def elapsed(self) -> float:
        """Seconds the last run took."""
        return self.last_run.elapsed if self.last_run is not None else 0.0

    def add_stage(self, stage: TaskManager, name: str | None = None, *, stage_mode: str = "thread") -> TaskManager:
        """Add ``stage`` (a TaskManager) under ``name`` (default: its name, made unique)."""
        if not isinstance(stage, TaskManager):
            raise GraphError(f"a stage must be a TaskManager, got {type(stage).__name__}")
        if id(stage) in self._names:
            raise GraphError(f"stage {self._names[id(stage)]!r} is already in graph {self.name!r}")
        other = stage._graph() if stage._graph is not None else None
        if other is not None and other is not self:
            raise GraphError(
                f"stage {stage.name!r} is already a stage of graph {other.name!r}; a TaskManager keeps "
                f"the counts and results of its runs, so it belongs to one graph: create another "
                f"TaskManager for graph {self.name!r}"
            )
        if stage_mode not in STAGE_MODES:
            raise ConfigurationError(f"unknown stage_mode {stage_mode!r}; choose one of {', '.join(STAGE_MODES)}")
        if stage_mode == "process" and stage.execution_mode != "serial":
            raise ConfigurationError(
                f"stage {stage.name!r}: stage_mode='process' runs the stage serially in its own "
                f"process; its execution_mode must be 'serial', not {stage.execution_mode!r}"
            )
        if name is None:
            base, n = stage.name, 2
            name = base
            while name in self._stages:
                name, n = f"{base}-{n}", n + 1
        elif name in self._stages:
            raise GraphError(f"graph {self.name!r} already has a stage named {name!r}")
        stage.name = name
        stage._graph = weakref.ref(self)
        self._stages[name] = stage
        self._names[id(stage)] = name
        self._stage_modes[name] = stage_mode
        self._g.add_node(name)
        return stage

    def _resolve(self, ref: StageRef) -> str:
        if isinstance(ref, str):
            if ref not in self._stages:
                raise StageNotFoundError(
                    f"graph {self.name!r} has no stage {ref!r}; stages: {', '.join(self._stages) or 'none'}"
                )
            return ref
        if isinstance(ref, TaskManager):
            try:
                return self._names[id(ref)]
            except KeyError:
                raise StageNotFoundError(
                    f"stage {ref.name!r} is not part of graph {self.name!r}; add it with add_stage first"
                ) from None
        raise StageNotFoundError(f"not a stage or stage name: {ref!r}")

    def _resolve_many(self, refs: StageRef | Iterable[StageRef]) -> list[str]:
        if isinstance(refs, (str, TaskManager)):
            return [self._resolve(refs)]
        if not isinstance(refs, Iterable):
            raise StageNotFoundError(f"not a stage, a stage name or a list of them: {refs!r}")
        return [self._resolve(r) for r in refs]

    def connect(self, upstream: StageRef | Iterable[StageRef], downstream: StageRef | Iterable[StageRef]) -> None:
        """Send the results of every upstream stage to every downstream stage."""
        for u in self._resolve_many(upstream):
            for d in self._resolve_many(downstream):
                self._g.add_edge(u, d)

    def stage(self, name: str) -> TaskManager:
        """The stage called ``name``."""
        return self._stages[self._resolve(name)]

    @property
    def stages(self) -> dict[str, TaskManager]:
        """The graph's stages by name, in the order they were added (a copy)."""
        return dict(self._stages)

    def stage_mode(self, name: str) -> str:
        """``"thread"`` or ``"process"``: where stage ``name``'s loop runs."""
        return self._stage_modes[self._resolve(name)]

    def start_graph(
        self, init_tasks: Mapping[StageRef, Iterable[Any]], *, dashboard: bool | int | str = False
    ) -> None:
        """Feed the given tasks to their stages and run until every stage has finished.

        Raises the first stage crash (an error outside task execution) after all
        stages stopped; on Ctrl-C stops every stage, keeps what was still queued in
        ``self.pending`` (and logs it), then re-raises. ``dashboard=True`` (or a
        port, or ``"host:port"``) serves a live view of the run in the browser
        (:mod:`celestialflow.dashboard`), which stays up after the run.
        """
        if not isinstance(init_tasks, Mapping):
            raise TypeError("start_graph takes a mapping {stage or stage name: tasks}")
        feeds: dict[str, Iterable[Any]] = {}
        for ref, tasks in init_tasks.items():
            name = self._resolve(ref)
            if name in feeds:
                raise GraphError(
                    f"stage {name!r} is given tasks twice in start_graph (as a stage and by name); "
                    f"merge them into one iterable"
                )
            feeds[name] = tasks
        self._check_stages()
        if dashboard is not False and dashboard is not None:
            self.open_dashboard(dashboard)
        if self.schedule == "layered" and not nx.is_directed_acyclic_graph(self._g):
            raise GraphError(f"graph {self.name!r} has a cycle; layered scheduling needs a DAG")
        self.last_run = GraphRun(self, feeds)
        self.last_run.run()

    def rerun_failed(self, path: str | Path | None = None) -> None:
        """Run the graph again, feeding each stage the tasks that failed there.

        ``path`` is a failure file (default: the last run's, ``failure_log_path``).
        Tasks go to the stage they failed at, so a task that failed in the third
        stage starts there, not from the beginning. Nothing is unpickled: the file
        holds tasks in a type-tagged JSON encoding."""
        if path is None:
            path = self.failure_log_path
            if path is None:
                raise GraphError(
                    f"graph {self.name!r} has no failure file to rerun: its last run recorded no failure"
                )
        feeds = failures_by_stage(path)
        unknown = [stage for stage in feeds if stage not in self._stages]
        if unknown:
            raise StageNotFoundError(
                f"the failure file {path} names stages that graph {self.name!r} does not have: "
                f"{', '.join(map(repr, unknown))}; stages: {', '.join(self._stages)}"
            )
        self.start_graph(feeds)

    def _check_stages(self) -> None:
        """Before anything runs: every stage bound for another process can be pickled, and
        every stage that runs on the shared workers can run on their kind."""
        for name, stage in self._stages.items():
            why = shared_mismatch(stage, self._stage_modes[name], self.shared_workers)
            if why is not None:
                raise ConfigurationError(why)
            if self._stage_modes[name] == "process":
                check_picklable(stage, f"stage {name!r} runs in its own process but it")
            else:
                stage.check_picklable()

    def open_dashboard(self, address: bool | int | str = True) -> str:
        """Serve the live view of this graph's runs; returns its URL (see :mod:`celestialflow.dashboard`)."""
        from .dashboard import open_dashboard

        return open_dashboard(self, address)

    @property
    def dashboard_url(self) -> str | None:
        """The address of this graph's dashboard, or None when none is open."""
        return self.dashboard.url if self.dashboard is not None else None

    def close_dashboard(self) -> None:
        """Stop serving the dashboard (it otherwise stays up after the run until the process exits)."""
        if self.dashboard is not None:
            self.dashboard.close()

    def live(self, interval: float = 1.0) -> Any:
        """A display that updates in place in Jupyter while the graph runs (drawing and counters)."""
        from .dashboard.jupyter import LiveDisplay

        return LiveDisplay(self, interval)

    def status(self) -> dict[str, StageStatus]:
        """A snapshot of every stage of the run going on (or the last one); see
        :mod:`celestialflow.graphrun`. Safe from any thread; reads counters only."""
        if self.last_run is not None:
            return self.last_run.snapshot()
        idle = StageStatus("pending", "idle", 0, 0, 0, 0, 0, 0, 0, 0, 0.0)
        return dict.fromkeys(self._stages, idle)

    def get_status_dict(self) -> dict[str, dict[str, Any]]:
        """Per stage: state, counts (processed, succeeded, failed, duplicated, retried), elapsed,
        items waiting in its input, items in flight (submitted, not finished) and items received."""
        out = {}
        for name, s in self.status().items():
            stage = self._stages[name]
            out[name] = {
                "state": s.detail,
                "processed": s.processed,
                "succeeded": s.succeeded,
                "failed": s.failed,
                "duplicated": s.duplicates,
                "retried": s.retried,
                "elapsed": s.elapsed,
                "waiting": s.queued,
                "in_flight": s.in_flight,
                "received": s.received,
                "execution_mode": stage.execution_mode,
                "stage_mode": self._stage_modes[name],
            }
        return out

    def get_error_dict(self) -> dict[tuple[str, Any], BaseException]:
        """``{(stage name, task): exception}`` over every stage of the last run."""
        errors = self.last_run.errors if self.last_run is not None else []
        return {(stage, make_hashable(task)): exc for stage, task, exc in errors}

    def get_results(self) -> dict[str, list[Any]]:
        """Outputs of the sink stages (stages without successors), by stage name."""
        results = self.last_run.results if self.last_run is not None else {}
        return {k: list(v) for k, v in results.items()}

    def to_networkx(self) -> nx.DiGraph:
        """A copy of the structure: one node per stage name (attributes: stage, modes)."""
        g = nx.DiGraph(name=self.name)
        for name, stage in self._stages.items():
            g.add_node(name, stage=stage, execution_mode=stage.execution_mode, stage_mode=self._stage_modes[name])
        g.add_edges_from(self._g.edges)
        return g

    def to_dot(self) -> str:
        """Graphviz DOT text: one node per stage (name, function, modes; counts after a run)."""
        node_attrs = {}
        for name, stage in self._stages.items():
            func = getattr(stage.func, "__qualname__", type(stage.func).__name__)
            label = f"{name}\n{func}()\n{stage.execution_mode} / {self._stage_modes[name]}"
            attrs: dict[str, object] = {}
            state = self.last_run.state.get(name, "idle") if self.last_run is not None else "idle"
            if state != "idle":
                c = stage.counts
                label += f"\nok {c['succeeded']}  failed {c['failed']}  dup {c['duplicated']}"
                if c["failed"] or state == "crashed":
                    attrs.update(color="red", fontcolor="red", penwidth="2")
            kind = stage.emits
            if kind != "each":
                attrs["shape"] = "diamond" if kind == "route" else "trapezium"
            attrs["label"] = label
            node_attrs[name] = attrs
        return dot_source(self._g, name=self.name, node_attrs=node_attrs)

    def render(self, path: str | Path, format: str | None = None) -> Path:
        """Write the drawing to ``path`` (SVG, PNG, PDF ... from the suffix or ``format``)."""
        return render_dot(self.to_dot(), path, format)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        bundle = {"text/plain": self.format_tree(), "text/vnd.graphviz": self.to_dot()}
        svg = svg_or_none(bundle["text/vnd.graphviz"])
        if svg is not None:
            bundle["image/svg+xml"] = svg
        return bundle

    def format_tree(self) -> str:
        """The graph as an indented text tree from its sources; a stage met again is marked ``(ref)``."""
        g = self._g
        roots = [n for n in g.nodes if g.in_degree(n) == 0] or list(g.nodes)[:1]
        lines = [f"{self.name}"]
        seen: set[str] = set()

        def walk(node: str, depth: int) -> None:
            stage = self._stages[node]
            if node in seen:
                lines.append("  " * depth + f"└─ {node} (ref)")
                return
            seen.add(node)
            lines.append("  " * depth + f"└─ {node} [{stage.execution_mode}]")
            for succ in g.successors(node):
                walk(succ, depth + 1)

        for root in roots:
            walk(root, 1)
        for node in g.nodes:  # parts not reachable from a source (pure cycles)
            if node not in seen:
                walk(node, 1)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, stages={list(self._stages)}, edges={self._g.number_of_edges()})"

