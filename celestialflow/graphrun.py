"""GraphRun: one run of a TaskGraph (mailboxes, trackers, feeders, stage threads, results).

:class:`~celestialflow.graph.TaskGraph` is the topology and the API;
``start_graph`` builds a ``GraphRun`` and calls :meth:`GraphRun.run`. Everything
a run creates lives here and is dropped with it; the graph keeps the last one
(``graph.last_run``) for its results, status and ``pending``.

Status snapshot, for a live view. ``graph.status()`` (or ``run.snapshot()`` on
``graph.last_run``) returns ``{stage name: StageStatus}``, safe to call from any
thread at any rate while the run goes on. It costs the run nothing per task: it
only reads counters the runner keeps anyway. A :class:`StageStatus` holds:

* ``state``: ``"pending"`` (not started), ``"running"``, ``"done"`` (ended, no
  task failed) or ``"failed"`` (ended with failed tasks, crashed, or stopped
  early); ``detail`` is the finer state of ``get_status_dict`` (idle, running,
  finished, failed, stopped, crashed);
* ``received``: items that arrived in the stage's mailbox; ``queued``: items
  waiting there now (its size); ``in_flight``: items submitted to workers and not
  accounted for yet;
* ``processed`` (taken from the mailbox), ``succeeded``, ``failed`` (for good),
  ``retried`` (retry attempts scheduled), ``duplicates`` (dropped by dedup);
* ``elapsed``: seconds since the stage started (its duration once ended).

Numbers read while the run goes on are each exact but not taken at one instant
(no lock is held), so they may disagree by a chunk. Events (stage started and
finished, tasks failed) go to ``graph.events``: see :mod:`celestialflow.events`.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx
from loguru import logger

from .backends import PriorityGate, ProcessPool
from .backends.parked import Running, spawn
from .errors import GraphError
from .events import FailureEvents, GraphFinished, StageFinished, StageStarted
from .failures import FailureLog
from .hooks import Hook, ProgressHook
from .logs import RunLog, default_log_dir, level_no
from .queues import Mailbox
from .runner import Runner
from .runstate import RunState
from .termination import Quiescence

if TYPE_CHECKING:
    from .graph import TaskGraph
    from .manager import TaskManager

FEED_BATCH = 1024
FEED_WAIT = 0.005  # seconds an iterator's items wait to be passed on together
CIRCULATION_WARN = 100  # warn when a cycle has carried this many times what entered it

_STATE = {"idle": "pending", "running": "running", "finished": "done"}  # the rest: failed


@dataclass(frozen=True, slots=True)
class StageStatus:
    """One stage in a status snapshot; see the module docstring for each field."""

    state: str
    detail: str
    received: int
    queued: int
    in_flight: int
    processed: int
    succeeded: int
    failed: int
    retried: int
    duplicates: int
    elapsed: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class GraphRun:
    """One ``start_graph`` of ``graph`` with ``feeds`` ({stage name: tasks}); :meth:`run` runs it once."""

    def __init__(self, graph: TaskGraph, feeds: Mapping[str, Iterable[Any]]) -> None:
        self.graph = graph
        self.name = graph.name
        self.stages = graph.stages
        self.modes = {n: graph.stage_mode(n) for n in self.stages}
        self.feeds = dict(feeds)
        self._g = graph.to_networkx()
        self.stop = threading.Event()
        capacity = None if graph.schedule == "layered" else graph.queue_capacity
        self.mailboxes = {n: Mailbox(capacity) for n in self.stages}
        self.state: dict[str, str] = dict.fromkeys(self.stages, "idle")
        self.runners: dict[str, Runner] = {}
        self.run_states: dict[str, RunState] = {}
        self.results: dict[str, list[Any]] = {}
        self.errors: list[tuple[str, Any, BaseException]] = []
        self.crashes: dict[str, BaseException] = {}
        self.pending: dict[str, list[Any]] = {}
        self.unfed: dict[str, list[Any]] = {}
        self.failure_log_path: Path | None = None
        self.log_path: Path | None = None
        self.started: float | None = None
        self.elapsed = 0.0
        self.tracker: dict[str, Quiescence] = {}
        self.scc_of: dict[str, int] = {}
        sccs = list(nx.strongly_connected_components(self._g))
        self.depth = _depths(self._g, sccs)
        for i, members in enumerate(sccs):
            sources = {u for m in members for u in self._g.predecessors(m) if u not in members}
            count = len(sources) + sum(1 for m in members if m in self.feeds)
            tracker = Quiescence(sorted(members), self.mailboxes, count)
            for m in members:
                self.tracker[m] = tracker
                self.scc_of[m] = i
        self.failure_log: FailureLog | None = None
        self.runlog: RunLog | None = None
        self.shared: PriorityGate | None = None

    def run(self) -> None:
        """Run to the end; raises the first stage crash after every stage stopped, and a
        KeyboardInterrupt after stopping every stage and collecting ``pending``."""
        graph = self.graph
        for name, stage in self.stages.items():
            if stage.emits == "route":
                stage.set_successors(frozenset(self._g.successors(name)))
        if graph.record_failures:
            self.failure_log = FailureLog(graph.failure_dir or default_log_dir(), self.name)
        self.started = t0 = time.perf_counter()
        threads: list[Running] = []
        self.runlog = self._open_log()
        given = graph.shared_workers is not None
        self.shared = graph.shared_workers if given else self._shared_workers()
        if self.runlog is not None:
            self.runlog.__enter__()
            self.log_path = self.runlog.path
        try:
            for name, tasks in self.feeds.items():
                threads.append(_spawn(f"feed-{name}", self._feed, name, tasks))
            for tracker in set(self.tracker.values()):
                tracker.check()
            if graph.schedule == "eager":
                layers = [list(self.stages)]
            else:
                layers = list(nx.topological_generations(self._g))
            for layer in layers:
                layer_threads = [_spawn(f"stage-{n}", self._run_stage, n) for n in layer]
                threads += layer_threads
                _join(layer_threads)
            _join(threads)
        except KeyboardInterrupt:
            self._interrupt(threads)
            raise
        finally:
            self.elapsed = time.perf_counter() - t0
            if self.shared is not None and not given:  # the caller's shared workers stay open
                cancel = bool(self.crashes) or self.stop.is_set()
                self.shared.shutdown(wait=not cancel, cancel_futures=cancel)
            if self.runlog is not None:
                self.runlog.__exit__(None, None, None)
            if self.failure_log is not None:
                self.failure_log.close()
                if self.failure_log.count:
                    self.failure_log_path = self.failure_log.path
            if graph.events:
                crash = next(iter(self.crashes.values()), None)
                error = f"{type(crash).__name__}: {crash}" if crash is not None else None
                graph.events.publish(GraphFinished(self.name, self.elapsed, error))
        if self.crashes:
            self._collect_pending()
            raise next(iter(self.crashes.values()))

    def abort(self, where: str, exc: BaseException) -> None:
        """Stop the run because of ``exc`` in ``where`` (a stage or a feeder): every mailbox is aborted."""
        self.crashes.setdefault(where, exc)
        self.stop.set()
        for mb in self.mailboxes.values():
            mb.abort()

    def snapshot(self) -> dict[str, StageStatus]:
        """The status of every stage now; see the module docstring. Reads counters only."""
        out = {}
        for name in self.stages:
            mb = self.mailboxes[name]
            detail = self.state[name]
            state = self.run_states.get(name)
            c = state.counts if state is not None else _ZERO
            runner = self.runners.get(name)
            out[name] = StageStatus(
                state=_STATE.get(detail, "failed"),
                detail=detail,
                received=mb.received,
                queued=mb.size,
                in_flight=runner.inflight_items if runner is not None else 0,
                processed=c["processed"],
                succeeded=c["succeeded"],
                failed=c["failed"],
                retried=c["retried"],
                duplicates=c["duplicated"],
                elapsed=state.elapsed_now() if state is not None else 0.0,
            )
        return out

    def elapsed_now(self) -> float:
        """Seconds since the run started (its duration once it ended)."""
        if self.elapsed or self.started is None:
            return self.elapsed
        return time.perf_counter() - self.started

    def _shared_for(self, stage: TaskManager) -> Any:
        """The shared workers ``stage`` may use: the graph's ``shared_workers`` for any mode,
        else the run's own process pool for process-mode stages."""
        if self.graph.shared_workers is not None or stage.execution_mode == "process":
            return self.shared
        return None

    def _shared_workers(self) -> PriorityGate | None:
        """One process pool, started once, for all process-mode stages without a pool of their own,
        behind a gate that serves deeper stages first and runs a suspect chunk alone."""
        users = [
            s
            for n, s in self.stages.items()
            if s.execution_mode == "process" and s.pool is None and not s.is_coroutine and self.modes[n] == "thread"
        ]
        if not users:
            return None
        contexts = {s.mp_context for s in users}
        workers = min(os.cpu_count() or 1, max(s.worker_limit for s in users))
        pool = ProcessPool(workers, contexts.pop() if len(contexts) == 1 else None)
        return PriorityGate(pool, 2 * workers)

    def _open_log(self) -> RunLog | None:
        """One log file for the whole run, when any stage logs to a file."""
        filing = [s for s in self.stages.values() if s.log_to_file]
        if not filing:
            return None
        level = min(level_no(s.log_level) for s in filing)
        log_dir = self.graph.log_dir or next((s.log_dir for s in filing if s.log_dir is not None), None)
        return RunLog(self.name, log_dir, level, True, self.graph.log_keep)

    def _feed(self, name: str, tasks: Iterable[Any]) -> None:
        tracker, mailbox = self.tracker[name], self.mailboxes[name]
        try:
            if isinstance(tasks, (list, tuple)):
                for i in range(0, len(tasks), FEED_BATCH):
                    batch = list(tasks[i : i + FEED_BATCH])
                    tracker.add(len(batch))
                    accepted = mailbox.put(batch)
                    if self.stop.is_set() or not accepted:  # the rest was never fed: say so
                        self.unfed[name] = list(tasks[i if not accepted else i + FEED_BATCH :])
                        return
            else:  # an iterator: pass on what it gave within FEED_WAIT, so a slow one streams
                batch = []
                since = time.monotonic()
                for task in tasks:
                    batch.append(task)
                    if len(batch) >= FEED_BATCH or time.monotonic() - since > FEED_WAIT:
                        tracker.add(len(batch))
                        accepted = mailbox.put(batch)
                        if self.stop.is_set() or not accepted:
                            self.unfed[name] = [] if accepted else batch
                            return
                        batch = []
                        since = time.monotonic()
                if batch:
                    tracker.add(len(batch))
                    mailbox.put(batch)
        except BaseException as exc:  # a failing task generator crashes the feed, not the process
            self.abort(f"feed-{name}", exc)
        finally:
            tracker.source_done()

    def _add(self, tracker: Quiescence, n: int, internal: bool) -> None:
        """Count ``n`` items sent to ``tracker``'s component; guard cycles that never end."""
        tracker.add(n, internal)
        if not internal:
            return
        max_items = self.graph.max_items
        if max_items is not None and tracker.circulated > max_items:
            raise GraphError(
                f"cycle {', '.join(tracker.members)} of graph {self.name!r} carried more than "
                f"max_items={max_items} items; stopping it"
            )
        if not tracker.warned and tracker.circulated > CIRCULATION_WARN * max(tracker.entered, 1):
            tracker.warned = True
            logger.warning(
                "cycle {} of graph {!r} has carried {} items for {} that entered it: does it have a way "
                "out? (TaskGraph(max_items=...) stops such a cycle)",
                ", ".join(tracker.members),
                self.name,
                tracker.circulated,
                tracker.entered,
            )

    def _emitter(self, name: str):
        succs = list(self._g.successors(name))
        mode = self.stages[name].emits
        own = self.scc_of[name]
        targets = [(s, self.mailboxes[s], self.tracker[s], self.scc_of[s] != own) for s in succs]
        by_name = {s: (mb, tr, bounded) for s, mb, tr, bounded in targets}
        if not succs:
            return self.results.setdefault(name, []).extend if self.graph.collect_results else None

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

        return {"each": emit_each, "split": emit_split, "route": emit_route}[mode]

    def _run_stage(self, name: str) -> None:
        stage, mailbox, tracker = self.stages[name], self.mailboxes[name], self.tracker[name]
        events = self.graph.events
        extra: list[Hook] = []
        if self.graph.show_progress:
            extra.append(ProgressHook(position=list(self.stages).index(name), leave=True))
        if events:
            extra.append(FailureEvents(events, self.name, name, stage.max_info))
        failure_log, errors = self.failure_log, self.errors

        def on_failure(task: Any, exc: BaseException) -> None:
            errors.append((name, task, exc))
            if failure_log is not None:
                failure_log.record(name, task, exc)

        self.state[name] = "running"
        if events:
            events.publish(StageStarted(self.name, name))
        try:
            backend = stage.make_backend(self.modes[name], self._shared_for(stage), self.depth[name])
            runner = stage.new_runner(
                backend,
                mailbox,
                extra_hooks=tuple(extra),
                emit=self._emitter(name),
                settled=tracker.settle,
                on_failure=on_failure,
                should_stop=self.stop.is_set,
            )
            self.run_states[name] = runner.state
            self.runners[name] = runner
            stage.execute(runner, None, self.runlog)
            stage.after_run()
            failed = runner.state.counts["failed"]
            self.state[name] = "stopped" if runner.stopped else ("failed" if failed else "finished")
        except BaseException as exc:
            self.state[name] = "crashed"
            logger.opt(exception=exc).error("stage {!r} of graph {!r} crashed", name, self.name)
            self.abort(name, exc)
        finally:
            own = self.scc_of[name]
            downstream = {id(self.tracker[s]): self.tracker[s] for s in self._g.successors(name) if self.scc_of[s] != own}
            for succ_tracker in downstream.values():
                succ_tracker.source_done()
            if events:
                state = self.run_states.get(name)
                counts = dict(state.counts) if state is not None else dict(_ZERO)
                elapsed = state.elapsed if state is not None else 0.0
                detail = self.state[name]
                events.publish(StageFinished(self.name, name, _STATE.get(detail, "failed"), counts, elapsed))

    def _interrupt(self, threads: list[Running]) -> None:
        self.stop.set()
        for mb in self.mailboxes.values():
            mb.abort()
        deadline = time.monotonic() + 10
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._collect_pending()

    def _collect_pending(self) -> None:
        pending: dict[str, list[Any]] = {}
        for name, mb in self.mailboxes.items():
            left = mb.drain()
            runner = self.runners.get(name)
            if runner is not None:
                left = runner.unfinished() + left
            left += self.unfed.get(name, [])
            if left:
                pending[name] = left
        self.pending = pending
        if pending:
            summary = ", ".join(f"{k}: {len(v)}" for k, v in pending.items())
            logger.warning("graph {!r} stopped with work still queued ({}); see graph.pending", self.name, summary)


_ZERO = {"processed": 0, "succeeded": 0, "failed": 0, "retried": 0, "duplicated": 0}


def _depths(g: nx.DiGraph, sccs: list[set[str]]) -> dict[str, int]:
    """Each stage's depth: the longest path to it from a source, a cycle's members sharing one."""
    cond = nx.condensation(g, sccs)
    depth: dict[int, int] = {}
    for c in nx.topological_sort(cond):
        depth[c] = max((depth[p] + 1 for p in cond.predecessors(c)), default=0)
    mapping = cond.graph["mapping"]
    return {n: depth[mapping[n]] for n in g.nodes}


def _spawn(name: str, target: Any, *args: Any) -> Running:
    """Run ``target(*args)`` in a thread of its own (kept from an earlier run if one is parked)."""
    return spawn(partial(target, *args), f"cf-{name}"[:60])


def _join(threads: list[Running]) -> None:
    for t in threads:
        while t.is_alive():
            t.join(0.2)
