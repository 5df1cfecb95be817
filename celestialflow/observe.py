"""Watching a TaskGraph run: status snapshots at the watcher's pace, and events.

A :class:`GraphObserver` attached to a graph reads the run's status snapshot
(``graph.status()`` / ``get_status_dict()``: counters the runner keeps anyway,
read without a lock) when *it* wants to, never per task: a sampler thread takes
one every ``interval`` seconds while a run is on and keeps a short history, from
which it derives each stage's throughput over the last ``window`` seconds and an
ETA where the input size is known. Events come from the graph's event channel
(:mod:`celestialflow.events`: stage started and finished, tasks failed once per
chunk), so the hot path pays nothing for them. Only the first ``MAX_FAILURES``
failures of a run are kept in detail; the counts go on.

Example::

    >>> obs = GraphObserver(graph)               # doctest: +SKIP
    >>> graph.start_graph({"parse": files})       # doctest: +SKIP
    >>> obs.snapshot()["stages"]["parse"]["succeeded"]  # doctest: +SKIP
    >>> [e["kind"] for e in obs.events_since(0)]  # doctest: +SKIP
    ['run_started', 'stage_started', ..., 'run_finished']
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .errors import traceback_text
from .events import MAX_TRACEBACK, GraphFinished, StageFinished, StageStarted, TasksFailed

if TYPE_CHECKING:
    from .graph import TaskGraph

INTERVAL = 0.5  # seconds between two snapshots of the sampler
WINDOW = 5.0  # seconds over which throughput is measured
HISTORY = 1200  # snapshots kept for the chart (10 minutes at the default interval)
MAX_FAILURES = 1000  # failures kept in detail (the counts keep counting past it)


def _done(counts: Mapping[str, Any]) -> int:
    """Inputs of a stage that reached their final state."""
    return int(counts.get("succeeded", 0)) + int(counts.get("failed", 0)) + int(counts.get("duplicated", 0))


class GraphObserver:
    """Snapshots and events of the runs of ``graph`` (see the module docstring).

    ``interval`` is the sampler's period in seconds; ``window`` the span over
    which throughput is measured. ``close()`` detaches it from the graph."""

    def __init__(self, graph: TaskGraph, *, interval: float = INTERVAL, window: float = WINDOW) -> None:
        self.graph = graph
        self.interval = interval
        self.window = window
        self.run = 0  # runs seen since attaching
        self.state = "idle"  # idle | running | finished | failed | crashed | stopped
        self.started_at: float | None = None  # wall clock (time.time()) of the run's start
        self._run: Any = None  # the GraphRun being watched
        self._fed: dict[str, int] = {}  # stage -> inputs given to start_graph, when sized
        self._lock = threading.Lock()
        self._begin_lock = threading.Lock()
        self._seq = itertools.count(1)
        self._events: deque[dict[str, Any]] = deque(maxlen=MAX_FAILURES + 1000)
        self._failures = 0
        # (seconds since the start, {stage: done}, {stage: throughput}) per sample
        self._history: deque[tuple[float, dict[str, int], dict[str, float]]] = deque(maxlen=HISTORY)
        self._wake = threading.Event()
        self._closed = False
        self._sampler: threading.Thread | None = None
        self._unsubscribe = graph.events.subscribe(self._on_event)
        current = graph.last_run
        if current is not None:  # attached during or after a run: show it, with its failures so far
            with self._begin_lock:
                self._begin(current)
                self._backfill(current)
            if not any(s.detail == "running" for s in graph.status().values()):
                self._finish(None)

    def close(self) -> None:
        """Stop sampling and stop listening to the graph's events."""
        self._closed = True
        self._wake.set()
        self._unsubscribe()

    def _on_event(self, event: Any) -> None:
        """Called by the graph's event channel, in the thread of the stage concerned."""
        with self._begin_lock:  # stage threads send their first events at once: one of them begins the run
            if self.graph.last_run is not self._run:
                self._begin(self.graph.last_run)
        if isinstance(event, StageStarted):
            self._event("stage_started", stage=event.stage)
        elif isinstance(event, TasksFailed):
            with self._lock:
                room = max(MAX_FAILURES - self._failures, 0)
                self._failures += len(event.failures)
            for f in event.failures[:room]:
                self._event("task_failed", stage=event.stage, task=f.task, error=f.error_type,
                            message=f.message[:2000], traceback=f.traceback)
        elif isinstance(event, StageFinished):
            self._event("stage_finished", stage=event.stage, state=event.state, counts=dict(event.counts))
        elif isinstance(event, GraphFinished):
            self._finish(event.error)

    def _begin(self, run: Any) -> None:
        """A new run of the graph: counters, history and events start afresh."""
        with self._lock:
            self._run = run
            self.run += 1
            self.state = "running"
            self.started_at = time.time()
            self._fed = {}
            for name, tasks in run.feeds.items():
                try:
                    self._fed[name] = len(tasks)
                except TypeError:
                    pass  # an iterator: size unknown, no ETA
            self._history.clear()
            self._failures = 0
            self._events.clear()
        self._event("run_started", run=self.run, stages=list(self.graph.stages))
        self._sample()
        if self._sampler is None or not self._sampler.is_alive():
            self._sampler = threading.Thread(target=self._sample_loop, name="cf-observer", daemon=True)
            self._sampler.start()

    def _backfill(self, run: Any) -> None:
        """The failures ``run`` recorded before the observer was attached, as events.

        Stages already running when the observer is attached publish no failure
        events for the rest of that run (their hooks are set when they start): their
        later failures show in the counts only."""
        errors = list(run.errors)
        with self._lock:
            self._failures = len(errors)
        for stage, task, exc in errors[:MAX_FAILURES]:
            tb = traceback_text(exc, MAX_TRACEBACK)
            self._event("task_failed", stage=stage, task=repr(task)[:200], error=type(exc).__name__,
                        message=str(exc)[:2000], traceback=tb)

    def _finish(self, error: str | None) -> None:
        self._sample()
        details = {s["state"] for s in self.graph.get_status_dict().values()}
        self.state = next((bad for bad in ("crashed", "stopped", "failed") if bad in details), "finished")
        if error is not None and self.state == "finished":
            self.state = "crashed"  # a feeder's crash: no stage shows it
        self._event("run_finished", run=self.run, state=self.state, error=error)
        self._wake.set()

    def _sample_loop(self) -> None:
        while not self._closed and self.state == "running":
            self._wake.wait(self.interval)
            self._wake.clear()
            if self.state == "running":
                self._sample()

    def _elapsed(self) -> float:
        return self._run.elapsed_now() if self._run is not None else 0.0

    def _sample(self) -> None:
        """One snapshot of the counters into the history, with each stage's throughput."""
        status = self.graph.get_status_dict()
        now = self._elapsed()
        done = {name: _done(s) for name, s in status.items()}
        with self._lock:
            past = next(((t, d) for t, d, _ in self._history if now - t <= self.window), None)
            span = now - past[0] if past is not None else 0.0
            rates = {
                name: (max(n - past[1].get(name, 0), 0) / span if past is not None and span > 1e-3 else 0.0)
                for name, n in done.items()
            }
            self._history.append((now, done, rates))

    def _event(self, kind: str, **fields: Any) -> None:
        with self._lock:
            self._events.append({"seq": next(self._seq), "time": time.time(), "kind": kind, **fields})

    def events_since(self, seq: int = 0) -> list[dict[str, Any]]:
        """Events with a sequence number above ``seq``, oldest first, as plain data.

        Kinds: ``run_started``, ``stage_started``, ``stage_finished`` (``state``,
        ``counts``), ``task_failed`` (``stage``, ``task``, ``error``, ``message``,
        ``traceback``) and ``run_finished`` (``state``, ``error``)."""
        with self._lock:
            return [dict(e) for e in self._events if e["seq"] > seq]

    def history(self) -> dict[str, Any]:
        """The throughput of every stage over time: ``{"t": [s, ...], "stages": {name: [per s, ...]}}``."""
        with self._lock:
            samples = list(self._history)
        names = list(self.graph.stages)
        return {
            "t": [round(t, 3) for t, _, _ in samples],
            "stages": {n: [round(r.get(n, 0.0), 2) for _, _, r in samples] for n in names},
        }

    def snapshot(self) -> dict[str, Any]:
        """The graph's state now: per stage counters, throughput and ETA, and totals.

        Per stage: every field of ``get_status_dict()`` plus ``received`` (inputs
        taken or queued), ``queued`` (waiting in its mailbox), ``done``
        (succeeded + failed + duplicated), ``throughput`` (done per second over
        the last ``window`` seconds, from the sampler), ``total`` (inputs
        expected, or None) and ``eta`` (seconds, or None)."""
        status = self.graph.get_status_dict()
        running = self.state == "running"
        with self._lock:
            last_rates = self._history[-1][2] if self._history and running else {}
            fed = dict(self._fed)
            failures = self._failures
        stages: dict[str, dict[str, Any]] = {}
        for name, s in status.items():
            stages[name] = {
                **s,
                "received": int(s.get("received", 0)),
                "queued": int(s.get("waiting", 0)),
                "done": _done(s),
                "throughput": last_rates.get(name, 0.0),
            }
        expected = self._expected(stages, fed)
        etas = []
        for name, s in stages.items():
            s["total"] = expected.get(name)
            s["eta"] = None
            if s["total"] is not None and running:
                left = max(s["total"] - s["done"], 0)
                s["eta"] = 0.0 if left == 0 else (left / s["throughput"] if s["throughput"] > 0 else None)
                etas.append(s["eta"])
        keys = ("received", "succeeded", "failed", "retried", "duplicated", "in_flight", "queued")
        return {
            "graph": self.graph.name,
            "run": self.run,
            "state": self.state,
            "started_at": self.started_at,
            "elapsed": self._elapsed(),
            "eta": max(etas) if etas and None not in etas else None,
            "failures": failures,
            "totals": {k: sum(int(s.get(k, 0)) for s in stages.values()) for k in keys},
            "stages": stages,
        }

    def _expected(self, stages: Mapping[str, Mapping[str, Any]], fed: Mapping[str, int]) -> dict[str, int | None]:
        """Each stage's expected input count, where the topology makes it knowable.

        A stage fed a sized list expects that many; a stage whose upstreams all
        pass on one output per input (``emits == "each"``) and are not in a cycle
        expects, on top, what they will pass on: their inputs less failures and
        duplicates. Anything else (iterators, splitters, routers, cycles): None."""
        import networkx as nx

        g = self.graph.to_networkx()
        try:
            order = list(nx.topological_sort(g))
        except nx.NetworkXUnfeasible:
            return {name: (fed.get(name) if not any(True for _ in g.predecessors(name)) else None) for name in g}
        known: dict[str, int | None] = {}
        for name in order:
            total: int | None = fed.get(name, 0) if name in fed or g.in_degree(name) else None
            for p in g.predecessors(name):
                if total is None or known.get(p) is None or getattr(g.nodes[p]["stage"], "emits", "each") != "each":
                    total = None
                    break
                up = stages[p]
                total += max(int(known[p] or 0) - int(up["failed"]) - int(up["duplicated"]), 0)
            known[name] = total
        return known
