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
"""

from __future__ import annotations

import os
import pickle
import threading
import time
import weakref
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import networkx as nx
from loguru import logger

from .dot import dot_source, render_dot, svg_or_none
from .errors import ConfigurationError, GraphError, NotPicklableError, StageNotFoundError
from .executors import ProcessPool
from .failures import FailureLog, failures_by_stage
from .hooks import ProgressHook
from .logs import RunLog, default_log_dir, level_no
from .manager import TaskManager
from .queues import Mailbox
from .runner import Runner
from .termination import Quiescence

STAGE_MODES = ("thread", "process")
SCHEDULES = ("eager", "layered")
FEED_BATCH = 1024
FEED_WAIT = 0.005  # seconds an iterator's items wait to be passed on together
CIRCULATION_WARN = 100  # warn when a cycle has carried this many times what entered it

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
    ) -> None:
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
        self._g = nx.DiGraph()
        self._stages: dict[str, TaskManager] = {}
        self._names: dict[int, str] = {}
        self._stage_modes: dict[str, str] = {}
        self._observers: list[Any] = []  # celestialflow.observe.GraphObserver instances
        self.dashboard: Any = None  # the dashboard server, while one is open
        self._reset_run_state()

    def _reset_run_state(self) -> None:
        self._state: dict[str, str] = dict.fromkeys(self._stages, "idle")
        self._mailboxes: dict[str, Mailbox] = {}
        self._runners: dict[str, Runner] = {}
        self._results: dict[str, list[Any]] = {}
        self._errors: list[tuple[str, Any, BaseException]] = []
        self._crashes: dict[str, BaseException] = {}
        self._elapsed: dict[str, float] = {}
        self._started: dict[str, float] = {}
        self.pending: dict[str, list[Any]] = {}
        self._unfed: dict[str, list[Any]] = {}
        self.failure_log_path: Path | None = None
        self.log_path: Path | None = None
        self.elapsed = 0.0

    # -- building ------------------------------------------------------------------
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
        self._state[name] = "idle"
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

    # -- running --------------------------------------------------------------------
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
        self._reset_run_state()
        self._stop = threading.Event()
        capacity = None if self.schedule == "layered" else self.queue_capacity
        self._mailboxes = {n: Mailbox(capacity) for n in self._stages}
        self._build_trackers(feeds)
        for name, stage in self._stages.items():
            if getattr(stage, "emits", "each") == "route":
                stage.successor_names = frozenset(self._g.successors(name))  # type: ignore[attr-defined]
        self._failure_log = None
        if self.record_failures:
            self._failure_log = FailureLog(self.failure_dir or default_log_dir(), self.name)
        t0 = time.perf_counter()
        threads: list[threading.Thread] = []
        self._runlog = self._open_log()
        self._process_pool = self._shared_process_pool()
        if self._runlog is not None:
            self._runlog.__enter__()
            self.log_path = self._runlog.path
        for observer in self._observers:
            observer.run_started(feeds)
        try:
            for name, tasks in feeds.items():
                threads.append(self._spawn(f"feed-{name}", self._feed, name, tasks))
            for tracker in set(self._tracker.values()):
                tracker.check()
            layers = [list(self._stages)] if self.schedule == "eager" else list(nx.topological_generations(self._g))
            for layer in layers:
                layer_threads = [self._spawn(f"stage-{n}", self._run_stage, n) for n in layer]
                threads += layer_threads
                self._join(layer_threads)
            self._join(threads)
        except KeyboardInterrupt:
            self._interrupt(threads)
            raise
        finally:
            self.elapsed = time.perf_counter() - t0
            if self._process_pool is not None:
                self._process_pool.close(cancel=bool(self._crashes) or self._stop.is_set())
            if self._runlog is not None:
                self._runlog.__exit__(None, None, None)
            if self._failure_log is not None:
                self._failure_log.close()
                if self._failure_log.count:
                    self.failure_log_path = self._failure_log.path
            for observer in self._observers:
                observer.run_finished()
        if self._crashes:
            self._collect_pending()
            raise next(iter(self._crashes.values()))

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
        """Before anything runs: every stage bound for another process can be pickled."""
        for name, stage in self._stages.items():
            if self._stage_modes[name] == "process":
                try:
                    pickle.dumps(stage)
                except Exception as exc:
                    raise NotPicklableError(
                        f"stage {name!r} runs in its own process but cannot be pickled: {exc}"
                    ) from exc
            else:
                stage._check_picklable()

    def _shared_process_pool(self) -> ProcessPool | None:
        """One process pool, started once, for all process-mode stages without a pool of their own."""
        users = [
            s for n, s in self._stages.items()
            if s.execution_mode == "process" and s.pool is None and not s._is_coro
            and self._stage_modes[n] == "thread"
        ]
        if not users:
            return None
        contexts = {s.mp_context for s in users}
        workers = min(os.cpu_count() or 1, max(s.worker_limit for s in users))
        return ProcessPool(workers, contexts.pop() if len(contexts) == 1 else None)

    def _open_log(self) -> RunLog | None:
        """One log file for the whole run, when any stage logs to a file."""
        filing = [s for s in self._stages.values() if s.log_to_file]
        if not filing:
            return None
        level = min(level_no(s.log_level) for s in filing)
        log_dir = self.log_dir or next((s.log_dir for s in filing if s.log_dir is not None), None)
        return RunLog(self.name, log_dir, level, True, self.log_keep)

    def _build_trackers(self, feeds: Mapping[str, Any]) -> None:
        self._tracker: dict[str, Quiescence] = {}
        self._scc_of: dict[str, int] = {}
        for i, members in enumerate(nx.strongly_connected_components(self._g)):
            sources = {u for m in members for u in self._g.predecessors(m) if u not in members}
            pending = len(sources) + sum(1 for m in members if m in feeds)
            tracker = Quiescence(sorted(members), self._mailboxes, pending)
            for m in members:
                self._tracker[m] = tracker
                self._scc_of[m] = i

    @staticmethod
    def _spawn(name: str, target: Any, *args: Any) -> threading.Thread:
        t = threading.Thread(target=target, args=args, name=f"cf-{name}"[:60], daemon=True)
        t.start()
        return t

    @staticmethod
    def _join(threads: list[threading.Thread]) -> None:
        for t in threads:
            while t.is_alive():
                t.join(0.2)

    def _feed(self, name: str, tasks: Iterable[Any]) -> None:
        tracker, mailbox = self._tracker[name], self._mailboxes[name]
        try:
            if isinstance(tasks, (list, tuple)):
                for i in range(0, len(tasks), FEED_BATCH):
                    batch = list(tasks[i : i + FEED_BATCH])
                    tracker.add(len(batch))
                    accepted = mailbox.put(batch)
                    if self._stop.is_set() or not accepted:  # the rest was never fed: say so
                        self._unfed[name] = list(tasks[i if not accepted else i + FEED_BATCH :])
                        return
            else:  # an iterator: pass on what it gave within FEED_WAIT, so a slow one streams
                it, batch = iter(tasks), []
                since = time.monotonic()
                for task in it:
                    batch.append(task)
                    if len(batch) >= FEED_BATCH or time.monotonic() - since > FEED_WAIT:
                        tracker.add(len(batch))
                        accepted = mailbox.put(batch)
                        if self._stop.is_set() or not accepted:
                            self._unfed[name] = [] if accepted else batch
                            return
                        batch = []
                        since = time.monotonic()
                if batch:
                    tracker.add(len(batch))
                    mailbox.put(batch)
        except BaseException as exc:  # a failing task generator crashes the feed, not the process
            self._crashes.setdefault(f"feed-{name}", exc)
            self._stop.set()
            for mb in self._mailboxes.values():
                mb.abort()
        finally:
            tracker.source_done()

    def _add(self, tracker: Quiescence, n: int, internal: bool) -> None:
        """Count ``n`` items sent to ``tracker``'s component; guard cycles that never end."""
        tracker.add(n, internal)
        if not internal:
            return
        if self.max_items is not None and tracker.circulated > self.max_items:
            raise GraphError(
                f"cycle {', '.join(tracker.members)} of graph {self.name!r} carried more than "
                f"max_items={self.max_items} items; stopping it"
            )
        if not tracker.warned and tracker.circulated > CIRCULATION_WARN * max(tracker.entered, 1):
            tracker.warned = True
            logger.warning(
                "cycle {} of graph {!r} has carried {} items for {} that entered it: does it have a way "
                "out? (TaskGraph(max_items=...) stops such a cycle)",
                ", ".join(tracker.members), self.name, tracker.circulated, tracker.entered,
            )

    def _emitter(self, name: str):
        succs = list(self._g.successors(name))
        mode = getattr(self._stages[name], "emits", "each")
        own = self._scc_of[name]
        targets = [(s, self._mailboxes[s], self._tracker[s], self._scc_of[s] != own) for s in succs]
        by_name = {s: (mb, tr, bounded) for s, mb, tr, bounded in targets}
        sink = self._results.setdefault(name, []) if (not succs and self.collect_results) else None

        def emit_each(out: list[Any]) -> None:
            for _, mb, tracker, bounded in targets:
                self._add(tracker, len(out), not bounded)
                mb.put(out, bounded)

        def emit_split(out: list[Any]) -> None:
            items = [x for parts in out for x in parts]
            if items:
                emit_each(items)

        def emit_route(out: list[Any]) -> None:
            groups: dict[str, list[Any]] = {}
            for target, item in out:
                groups.setdefault(target, []).append(item)
            for target, items in groups.items():
                mb, tracker, bounded = by_name[target]
                self._add(tracker, len(items), not bounded)
                mb.put(items, bounded)

        if sink is not None:
            return sink.extend
        if not succs:
            return None
        return {"each": emit_each, "split": emit_split, "route": emit_route}[mode]

    def _run_stage(self, name: str) -> None:
        stage, mailbox, tracker = self._stages[name], self._mailboxes[name], self._tracker[name]
        self._state[name] = "running"
        self._started[name] = time.perf_counter()
        progress = None
        if self.show_progress:
            progress = ProgressHook(position=list(self._stages).index(name), leave=True)
            stage.hooks.append(progress)
        failure_log = self._failure_log
        errors = self._errors

        def on_failure(task: Any, exc: BaseException) -> None:
            errors.append((name, task, exc))
            if failure_log is not None:
                failure_log.record(name, task, exc)

        try:
            stage._begin()
            backend = stage._make_backend(self._stage_modes[name], self._process_pool)
            runner = Runner(
                stage,
                backend,
                mailbox,
                emit=self._emitter(name),
                settled=tracker.settle,
                on_failure=on_failure,
                should_stop=self._stop.is_set,
                chunk_size=stage.chunk_size,
            )
            self._runners[name] = runner
            stage._execute(runner, None, self._runlog)
            stage._after_run()
            self._state[name] = "stopped" if runner.stopped else ("failed" if stage.counts["failed"] else "finished")
        except BaseException as exc:
            self._state[name] = "crashed"
            self._crashes.setdefault(name, exc)
            logger.opt(exception=exc).error("stage {!r} of graph {!r} crashed", name, self.name)
            self._stop.set()
            for mb in self._mailboxes.values():
                mb.abort()
        finally:
            if progress is not None:
                stage.hooks.remove(progress)
            self._elapsed[name] = stage.elapsed
            own = self._scc_of[name]
            for succ_tracker in {id(self._tracker[s]): self._tracker[s] for s in self._g.successors(name) if self._scc_of[s] != own}.values():
                succ_tracker.source_done()

    def _interrupt(self, threads: list[threading.Thread]) -> None:
        self._stop.set()
        for mb in self._mailboxes.values():
            mb.abort()
        deadline = time.monotonic() + 10
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._collect_pending()

    def _collect_pending(self) -> None:
        pending: dict[str, list[Any]] = {}
        for name, mb in self._mailboxes.items():
            left = mb.drain()
            runner = self._runners.get(name)
            if runner is not None:
                left = runner.unfinished() + left
            left += self._unfed.get(name, [])
            if left:
                pending[name] = left
        self.pending = pending
        if pending:
            summary = ", ".join(f"{k}: {len(v)}" for k, v in pending.items())
            logger.warning("graph {!r} stopped with work still queued ({}); see graph.pending", self.name, summary)

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

    # -- results ------------------------------------------------------------------------
    def get_status_dict(self) -> dict[str, dict[str, Any]]:
        """Per stage: state, counts (processed, succeeded, failed, duplicated, retried), elapsed,
        items waiting in its input and items in flight (submitted, not finished)."""
        out = {}
        for name, stage in self._stages.items():
            mb = self._mailboxes.get(name)
            out[name] = {
                "state": self._state.get(name, "idle"),
                **stage.get_counts(),
                "elapsed": self._elapsed_of(name),
                "waiting": mb.size if mb is not None else 0,
                "in_flight": runner.inflight_items if (runner := self._runners.get(name)) else 0,
                "execution_mode": stage.execution_mode,
                "stage_mode": self._stage_modes[name],
            }
        return out

    def _elapsed_of(self, name: str) -> float:
        if name in self._elapsed:
            return self._elapsed[name]
        started = self._started.get(name)
        return time.perf_counter() - started if started is not None else 0.0

    def get_error_dict(self) -> dict[tuple[str, Any], BaseException]:
        """``{(stage name, task): exception}`` over every stage of the last run."""
        from .hashable import make_hashable

        return {(stage, make_hashable(task)): exc for stage, task, exc in self._errors}

    def get_results(self) -> dict[str, list[Any]]:
        """Outputs of the sink stages (stages without successors), by stage name."""
        return {k: list(v) for k, v in self._results.items()}

    # -- drawing ----------------------------------------------------------------------------
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
            state = self._state.get(name, "idle")
            if state != "idle":
                c = stage.counts
                label += f"\nok {c['succeeded']}  failed {c['failed']}  dup {c['duplicated']}"
                if c["failed"] or state == "crashed":
                    attrs.update(color="red", fontcolor="red", penwidth="2")
            kind = getattr(stage, "emits", "each")
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

