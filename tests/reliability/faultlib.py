"""Fault injection for the engine: picklable task behaviours, a reference model, a guarded run.

A :class:`GraphSpec` describes a graph (stages, edges, modes, dedup, feeds) and
each stage's :class:`Behaviour`: a frozen dataclass whose call picks what to do
with a task from a stable hash of (seed, stage, task), so the same task does
the same thing in every mode and in worker processes. :func:`expected` runs
the spec through a plain sequential model of the engine's rules (dedup per
stage, retries, forwarding); :func:`run_guarded` runs the real graph on a
watchdog and reports what it saw, including threads, child processes and file
descriptors left behind.

Cycle members are splitters over a counter: a task ``x > 0`` sends ``x - 1`` on,
``0`` sends nothing, so every loop ends.
"""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import multiprocessing
import os
import signal
import tempfile
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from celestialflow import TaskGraph, TaskManager, TaskSplitter, failures_by_stage, load_failures

MAX_RETRIES = 2
SLEEP = 0.002
#: Kinds of task behaviour; see Behaviour.act.
KINDS = ("ok", "none", "sleep", "retry", "fail", "twoarg", "gen", "kill")
#: The error type a failing kind must be reported with (its name is kept even across processes).
FAILING = {"fail": "ValueError", "twoarg": "TwoArgError", "kill": None}


class TwoArgError(Exception):
    """Pickles, but unpickling calls ``__init__`` with one argument and fails."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"code {code}: {detail}")
        self.code = code

    def __reduce__(self):  # BaseException's own, spelled out: tblib (which dask installs) repairs only that one
        return type(self), self.args


class SimulatedDeath(Exception):
    """What a 'kill' task raises where killing the worker would kill the test itself."""


def stable_hash(*parts: Any) -> int:
    return zlib.crc32(repr(parts).encode())


@dataclass(frozen=True)
class Behaviour:
    """What stage ``stage`` does with each task; picklable, so process workers can run it."""

    stage: int
    seed: int
    kinds: tuple[str, ...]  # weighted: kinds[hash % len(kinds)]
    splitter: bool
    sink: bool  # no successors: only a sink may return a generator (no later stage meets it)
    attempts_dir: str
    parent_pid: int

    def kind_of(self, task: Any) -> str:
        kind = self.kinds[stable_hash(self.seed, self.stage, task) % len(self.kinds)]
        if (kind == "none" and self.splitter) or (kind == "gen" and (self.splitter or not self.sink)):
            return "ok"
        return kind

    def value(self, task: Any) -> Any:
        if self.splitter:
            return [task - 1] if type(task) is int and task > 0 else []
        if type(task) is int:
            return (task * 7 + self.stage + 1) % 40
        return self.stage + 100

    def attempt(self, task: Any) -> int:
        """How many times this stage has been called with ``task`` in this run (1 the first time)."""
        path = os.path.join(self.attempts_dir, f"{self.stage}-{stable_hash(task)}")
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, b".")
            return os.fstat(fd).st_size
        finally:
            os.close(fd)

    def act(self, task: Any) -> tuple[str, Any]:
        """('sleep', seconds) or ('return', value); raises for the failing kinds."""
        kind = self.kind_of(task)
        if kind == "none":
            return "return", None
        if kind == "sleep":
            return "sleep", SLEEP
        if kind == "retry" and self.attempt(task) == 1:
            raise ConnectionError(f"stage {self.stage}: transient failure on {task!r}")
        if kind == "fail":
            raise ValueError(f"stage {self.stage} refuses {task!r}")
        if kind == "twoarg":
            raise TwoArgError(self.stage, f"refuses {task!r}")
        if kind == "gen":
            return "return", (t for t in [task])
        if kind == "kill":
            if os.getpid() != self.parent_pid:
                os._exit(1)
            raise SimulatedDeath(f"stage {self.stage}: task {task!r} would kill its worker")
        return "return", self.value(task)

    def __call__(self, task: Any) -> Any:
        what, arg = self.act(task)
        if what == "sleep":
            time.sleep(arg)
            return self.value(task)
        return arg


@dataclass(frozen=True)
class AsyncBehaviour(Behaviour):
    """The same behaviour as a coroutine function, for execution_mode='async'."""

    async def __call__(self, task: Any) -> Any:  # type: ignore[override]
        what, arg = self.act(task)
        if what == "sleep":
            await asyncio.sleep(arg)
            return self.value(task)
        return arg


@dataclass(frozen=True)
class StageSpec:
    mode: str  # serial | thread | process | async
    own_process: bool  # stage_mode='process' (serial stages only)
    dedup: bool
    workers: int
    seed: int
    kinds: tuple[str, ...]


@dataclass(frozen=True)
class GraphSpec:
    stages: tuple[StageSpec, ...]
    edges: tuple[tuple[int, int], ...]
    feeds: tuple[tuple[int, tuple[Any, ...]], ...]
    generator_input: bool
    queue_capacity: int = 8192

    def shape(self) -> nx.DiGraph:
        g = nx.DiGraph(list(self.edges))
        g.add_nodes_from(range(len(self.stages)))
        return g

    def cyclic(self) -> set[int]:
        g = self.shape()
        return {v for comp in nx.strongly_connected_components(g) for v in comp if len(comp) > 1 or g.has_edge(v, v)}

    def with_modes(self, mode: str) -> GraphSpec:
        """The same graph with every stage in ``mode`` (own-process stages stay serial)."""
        stages = tuple(
            StageSpec("serial" if s.own_process else mode, s.own_process, s.dedup, s.workers, s.seed, s.kinds)
            for s in self.stages
        )
        return GraphSpec(stages, self.edges, self.feeds, self.generator_input, self.queue_capacity)


def name(i: int) -> str:
    return f"s{i}"


def behaviour(spec: GraphSpec, i: int, attempts_dir: str, parent_pid: int) -> Behaviour:
    s = spec.stages[i]
    cls = AsyncBehaviour if s.mode == "async" else Behaviour
    sink = spec.shape().out_degree(i) == 0
    return cls(i, s.seed, s.kinds, i in spec.cyclic(), sink, attempts_dir, parent_pid)


def in_worker_process(spec: GraphSpec, i: int) -> bool:
    s = spec.stages[i]
    return s.mode == "process" or s.own_process


@dataclass
class Outcome:
    """Per stage: counts and failed tasks; per sink: results (generators shown as '<generator>')."""

    counts: dict[str, Counter] = field(default_factory=dict)
    failed: dict[str, Counter] = field(default_factory=dict)
    error_types: dict[str, dict[Any, str]] = field(default_factory=dict)  # where the type is known
    results: dict[str, Counter] = field(default_factory=dict)


def shown(value: Any) -> Any:
    if type(value).__name__ == "generator":
        return "<generator>"
    if type(value) is list:
        return tuple(value)
    return value


def expected(spec: GraphSpec) -> Outcome:
    """What the engine's rules say each stage receives, does and emits (order-free)."""
    g = spec.shape()
    pid = os.getpid()
    behaviours = [behaviour(spec, i, "", pid) for i in range(len(spec.stages))]
    out = Outcome()
    seen: dict[int, set] = {i: set() for i in range(len(spec.stages))}
    for i in range(len(spec.stages)):
        out.counts[name(i)] = Counter(processed=0, succeeded=0, failed=0, duplicated=0)
        out.failed[name(i)] = Counter()
        out.error_types[name(i)] = {}
    work: list[tuple[int, Any]] = [(i, t) for i, tasks in spec.feeds for t in tasks]
    while work:
        i, task = work.pop()
        c, b = out.counts[name(i)], behaviours[i]
        c["processed"] += 1
        if spec.stages[i].dedup:
            if task in seen[i]:
                c["duplicated"] += 1
                continue
            seen[i].add(task)
        kind = b.kind_of(task)
        if kind in FAILING or (kind == "gen" and in_worker_process(spec, i)):
            c["failed"] += 1
            out.failed[name(i)][task] += 1
            known = "SimulatedDeath" if kind == "kill" and not in_worker_process(spec, i) else FAILING.get(kind)
            if known:
                out.error_types[name(i)][task] = known
            continue
        c["succeeded"] += 1
        value = None if kind == "none" else "<generator>" if kind == "gen" else b.value(task)
        succs = list(g.successors(i))
        if not succs:
            out.results.setdefault(name(i), Counter())[shown(value)] += 1
            continue
        items = value if b.splitter else [value]
        work.extend((j, item) for j in succs for item in items)
    return out


def open_fds() -> dict[int, str]:
    """This process's file descriptors and what each points to."""
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[int(fd)] = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the descriptor listdir itself used, closed again
            pass
    return out


@dataclass
class Snapshot:
    threads: set[int]
    children: int
    fds: dict[int, str]

    @classmethod
    def take(cls) -> Snapshot:
        return cls(
            {t.ident for t in threading.enumerate()},
            len(multiprocessing.active_children()),
            open_fds(),
        )

    def leftovers(self, grace: float = 3.0) -> list[str]:
        """What is still around after ``grace`` seconds (and a garbage collection) that was not there before."""
        deadline = time.monotonic() + grace
        while True:
            gc.collect()  # a pool's result pipes close when its objects are collected: not left behind
            now = Snapshot.take()
            extra_threads = [t.name for t in threading.enumerate() if t.ident not in self.threads]
            problems = []
            if extra_threads:
                problems.append(f"threads left: {extra_threads}")
            if now.children > self.children:
                problems.append(f"child processes left: {multiprocessing.active_children()}")
            new_fds = {fd: target for fd, target in now.fds.items() if self.fds.get(fd) != target}
            if len(now.fds) > len(self.fds) and new_fds:
                problems.append(f"file descriptors: {len(self.fds)} before, {len(now.fds)} after; new: {new_fds}")
            if not problems or time.monotonic() > deadline:
                return problems
            time.sleep(0.05)


class Hang(AssertionError):
    pass


# A forked worker inherits this handler and file: on SIGUSR2 it writes its threads' stacks
# there, even when it is stuck on a lock (faulthandler needs neither the GIL nor a lock).
_CHILD_STACKS = tempfile.TemporaryFile()
if hasattr(signal, "SIGUSR2"):
    faulthandler.register(signal.SIGUSR2, file=_CHILD_STACKS, all_threads=True)


def _child_stacks(children: list) -> str:
    """The stacks of the forked ``children``, each asked for them with SIGUSR2."""
    if not hasattr(signal, "SIGUSR2"):
        return ""
    _CHILD_STACKS.seek(0)
    _CHILD_STACKS.truncate()
    for p in children:
        _CHILD_STACKS.write(f"--- child process {p.name} ({p.pid})\n".encode())
        _CHILD_STACKS.flush()
        try:
            os.kill(p.pid, signal.SIGUSR2)
        except OSError:
            continue
        time.sleep(0.3)
    _CHILD_STACKS.seek(0)
    return _CHILD_STACKS.read().decode(errors="replace")


def stacks() -> str:
    """Every thread's stack, the live child processes and, for forked ones, theirs: where a
    hung run waits."""
    import sys
    import traceback

    names = {t.ident: t.name for t in threading.enumerate()}
    children = multiprocessing.active_children()
    parts = [f"child processes: {[(p.name, p.pid, p.exitcode) for p in children]}"]
    for ident, frame in sys._current_frames().items():
        parts.append(f"--- thread {names.get(ident, ident)}\n" + "".join(traceback.format_stack(frame)))
    parts.append(_child_stacks(children))
    return "\n".join(parts)


def stop_hung_run(graph: TaskGraph, thread: threading.Thread, grace: float = 5.0) -> str:
    """Abort a hung run and terminate its worker processes, so that it does not outlive the
    test (a process pool's threads are joined when the interpreter exits: a run left hanging
    would keep the whole test session from ending). Says how it went."""
    run = graph.last_run
    if run is not None:
        run.abort("the test's watchdog", Hang("the run hung"))
    thread.join(grace)
    if not thread.is_alive():
        return "the run stopped when aborted"
    for child in multiprocessing.active_children():
        child.terminate()
    thread.join(grace)
    return "the run stopped once its worker processes were terminated" if not thread.is_alive() else (
        "the run did not stop, even with its worker processes terminated")


@dataclass
class Observed:
    status: dict[str, dict[str, Any]]
    results: dict[str, list[Any]]
    failures: dict[str, list[Any]]
    error_types: dict[str, dict[Any, set[str]]]  # stage -> task -> error types recorded
    error: BaseException | None
    leftovers: list[str]


def build(spec: GraphSpec, attempts_dir: str, failure_dir: Path) -> TaskGraph:
    g = TaskGraph("faults", queue_capacity=spec.queue_capacity, failure_dir=failure_dir)
    pid = os.getpid()
    cyclic = spec.cyclic()
    for i, s in enumerate(spec.stages):
        func = behaviour(spec, i, attempts_dir, pid)
        cls = TaskSplitter if i in cyclic else TaskManager
        stage = cls(
            func,
            execution_mode=s.mode,
            worker_limit=s.workers,
            max_retries=MAX_RETRIES,
            enable_duplicate_check=s.dedup,
            name=name(i),
            backoff_base=0.001,
            backoff_max=0.01,
            log_to_file=False,
        )
        g.add_stage(stage, stage_mode="process" if s.own_process else "thread")
    for a, b in spec.edges:
        g.connect(name(a), name(b))
    return g


def feeds_of(spec: GraphSpec) -> dict[str, Iterable[Any]]:
    merged: dict[str, list[Any]] = {}
    for i, tasks in spec.feeds:
        merged.setdefault(name(i), []).extend(tasks)
    if spec.generator_input:
        return {k: (t for t in v) for k, v in merged.items()}
    return merged


def run_guarded(spec: GraphSpec, workdir: Path, bound: float) -> Observed:
    """Run ``spec`` in a thread; a run that has not ended after ``bound`` seconds raises :class:`Hang`."""
    attempts = workdir / "attempts"
    attempts.mkdir(parents=True, exist_ok=True)
    g = build(spec, str(attempts), workdir / "failures")
    feeds = feeds_of(spec)
    before = Snapshot.take()
    box: list[BaseException] = []

    def target(graph: TaskGraph) -> None:
        try:
            graph.start_graph(feeds)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            box.append(exc)

    t = threading.Thread(target=target, args=(g,), name="fault-run", daemon=True)
    t.start()
    t.join(bound)
    if t.is_alive():
        status = {k: {c: v[c] for c in ("state", "processed", "succeeded", "failed")} for k, v in g.get_status_dict().items()}
        where = stacks()
        stopped = stop_hung_run(g, t)
        raise Hang(f"[hang] the run did not end within {bound} s; status: {status}; {stopped}\n{where}")
    path = g.failure_log_path
    failures = failures_by_stage(path) if path is not None else {}
    types: dict[str, dict[Any, set[str]]] = {}
    for rec in load_failures(path) if path is not None else []:
        types.setdefault(rec["stage"], {}).setdefault(rec["task"], set()).add(rec["error_type"])
    status, results = g.get_status_dict(), g.get_results()
    # Checked once the graph is dropped: the errors it keeps may hold worker tracebacks (with
    # tblib installed, as dask does) whose frames pin the pools' pipes while the graph lives.
    del g, t
    return Observed(status, results, failures, types, box[0] if box else None, before.leftovers())


def check(spec: GraphSpec, seen: Observed) -> None:
    """Every invariant of the harness; the message says which one broke."""
    if seen.error is not None:
        raise AssertionError(f"[raised] start_graph raised {type(seen.error).__name__}: {seen.error}") from seen.error
    want = expected(spec)
    for i in range(len(spec.stages)):
        s = seen.status[name(i)]
        got = {k: s[k] for k in ("processed", "succeeded", "failed", "duplicated")}
        assert got["processed"] == got["succeeded"] + got["failed"] + got["duplicated"], (
            f"[accounting] {name(i)}: received != succeeded + failed + duplicated: {got}"
        )
        assert s["state"] in ("finished", "failed"), f"[state] {name(i)} ended {s['state']!r}"
        assert got == dict(want.counts[name(i)]), (
            f"[model] {name(i)} ({spec.stages[i].mode}): counts {got}, the model says {dict(want.counts[name(i)])}"
        )
        for task, want_type in want.error_types[name(i)].items():
            got_types = seen.error_types.get(name(i), {}).get(task, set())
            assert got_types == {want_type}, (
                f"[error type] {name(i)} ({spec.stages[i].mode}): task {task!r} failed with {got_types or 'nothing'}, "
                f"not {want_type}"
            )
        failed_here = Counter(seen.failures.get(name(i), []))
        assert failed_here == want.failed[name(i)], (
            f"[failure file] {name(i)}: failure file holds {dict(failed_here)}, the model says {dict(want.failed[name(i)])}"
        )
    results = {k: Counter(shown(v) for v in vs) for k, vs in seen.results.items() if vs}
    want_results = {k: v for k, v in want.results.items() if v}
    assert results == want_results, f"[results] sink results {results}, the model says {want_results}"
    assert not seen.leftovers, "[leftovers] " + "; ".join(seen.leftovers)


def run_within(fn: Any, seconds: float, what: str = "the run") -> Any:
    """``fn()`` in a daemon thread; raises :class:`Hang` if it has not returned after ``seconds``.

    An exception of ``fn`` is re-raised here (KeyboardInterrupt and SystemExit too).
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc

    t = threading.Thread(target=target, name="fault-run", daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        raise Hang(f"[hang] {what} did not end within {seconds} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")
