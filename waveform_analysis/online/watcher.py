"""The watcher: processes a DAQ folder's runs as the digitizer finishes them.

One loop, in the thread that calls :meth:`Watcher.run`: wait for a change (or the poll
interval), scan the folder, process what is ready, repeat. Ready means

* a complete run (``run.info`` with a stop time, or ``settle`` seconds without a change
  in its files): the target of the whole run, through the :class:`BatchProcessor` (so
  ``workers`` and ``executor`` apply), exactly the entry a batch over the finished
  folder makes;
* with ``segments=True``, a closed segment of a run still being written: the target of
  that segment alone (see :mod:`.segments`), one segment at a time, in order.

The cache is the only record of what was done: a unit whose entry exists is not
computed again, so a watcher started again continues where the last one stopped.
Stopping (:meth:`Watcher.stop`, or a first Ctrl-C) lets the unit in hand finish; a
second Ctrl-C interrupts it, and its cache entry is then never written (entries are
committed whole or not at all).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger

from ..core.cancellation import CancellationToken
from ..errors import NoDataError, RunNotFoundError
from ..plugins.raw_files import files_digest
from .events import FolderEvents
from .folder import Settling, closed_segments, run_folders, run_stopped
from .segments import join_segments, segment_context
from .state import DONE, FAILED, PROCESSING, WAITING, StateTable

__all__ = ["Watcher"]

#: ``on_update(run_id, message)``: called after each unit (and on failures), for a log line;
#: without it the message is logged (loguru, INFO)
OnUpdate = Callable[[str, str], None]


@dataclass
class _Run:
    """What the watcher keeps about one run between scans."""

    settling: Settling = field(default_factory=Settling)
    failed_digest: str = ""
    done_digest: str = ""
    records: dict[int, int] = field(default_factory=dict)  # segment -> records
    keys: dict[int, dict[str, str]] = field(default_factory=dict)  # segment -> {data name: key}
    counts: dict[str, int] = field(default_factory=dict)  # "board:channel" -> records
    span: dict[str, tuple[int, int]] = field(default_factory=dict)  # first, last time [ns]


class Watcher:
    """Processes the runs of ``context``'s ``data_root`` as they are written.

    ``target``: the data name computed per run (and per segment); ``segments``: also
    process each closed segment of a run still being written; ``settle``: seconds without
    a change after which a run without a ``run.info`` stop time counts as complete;
    ``poll``: never use file-system events; ``interval``: seconds between scans without
    events; ``recheck``: seconds after which runs already done are listed again (at once
    when an event names them), and processed again if their files changed;
    ``workers``/``executor``: as for :meth:`BatchProcessor.process_runs`;
    ``context_for(run_id)``: the Context of a run when runs of several formats share
    the folder (default: ``context``); ``on_update``: see :data:`OnUpdate`.
    """

    def __init__(
        self,
        context: Any,
        target: str = "peaks",
        *,
        segments: bool = False,
        settle: float = 30.0,
        poll: bool = False,
        interval: float = 1.0,
        recheck: float = 60.0,
        workers: int | None = None,
        executor: str = "thread",
        context_for: Callable[[str], Any] | None = None,
        on_update: OnUpdate | None = None,
    ) -> None:
        if settle < 0 or interval <= 0:
            raise ValueError(f"settle must be >= 0 and interval > 0, got {settle} and {interval}")
        context.lineage(target)  # an unknown target fails here, not in the loop
        self.context = context
        self.target = target
        self.segments = bool(segments)
        self.settle = float(settle)
        self.poll = bool(poll)
        self.interval = float(interval)
        self.recheck = float(recheck)
        self.workers = workers
        self.executor = executor
        self.root = Path(context.data_root)
        self._context_for = context_for or (lambda run_id: context)
        self._on_update = on_update
        self._table = StateTable()
        self._runs: dict[str, _Run] = {}
        self._segment_contexts: dict[tuple[int, int], Any] = {}
        self._token = CancellationToken()
        self._last_activity = time.monotonic()
        self._recheck_at = time.monotonic() + self.recheck
        self._events: FolderEvents | None = None
        self.mode = "poll" if poll else "events"
        self.dashboard: Any = None  # the live page's server, when one was asked for (Context.watch)

    def __repr__(self) -> str:
        return f"<Watcher {self.root} target={self.target!r} segments={self.segments} runs={len(self._runs)}>"

    def status(self) -> dict[str, dict[str, Any]]:
        """Every run seen so far: ``{run_id: {"state", "reason", "segments", "records", ...}}``.

        ``state`` is ``"waiting"`` (being written, or no data yet: ``reason`` says which),
        ``"processing"``, ``"done"`` or ``"failed"`` (``reason``: the error). Safe to call
        from any thread while the watcher runs; see :class:`~.state.RunStatus`.
        """
        return self._table.snapshot()

    def stop(self) -> None:
        """Stop after the unit in hand (from any thread, or a signal handler)."""
        self._token.cancel("watcher stopped")

    @property
    def stopped(self) -> bool:
        return self._token.cancelled

    def live_data(self, run_id: str, data_name: str | None = None) -> np.ndarray:
        """``data_name`` (default: the target) of ``run_id`` as far as it is processed.

        The whole run's entry once the run is done; before that the run's processed
        segments joined in order (``record_i`` counts from the first segment's first
        record); an empty array when nothing is processed yet.
        """
        name = data_name or self.target
        ctx = self._context_for(run_id)
        if self._table.get(run_id).state == DONE:
            return ctx.get_data(run_id, name)
        info = self._runs.get(run_id)
        done = sorted(info.records) if info else []
        parts = []
        for k in done:
            # the key the entry was written under (a settings file rewritten since, such as
            # run.info, changes the key a fresh listing gives, not the entry)
            key = info.keys[k].get(name)
            data = None if key is None else ctx.storage.load(run_id, name, key)
            if data is None:
                break  # not a cached data name, or the entry was deleted: the prefix before
            parts.append(data)
        return join_segments(parts, [info.records[k] for k in done[: len(parts)]])

    def spectra(
        self, run_id: str, field: str = "area", bins: int = 100, range: tuple[float, float] | None = None
    ) -> dict[str, Any]:
        """Histograms of ``field`` of the live target per ``"board:channel"`` (JSON-ready).

        ``{"field", "edges": [...], "counts": {"0:1": [...], ...}}``, one set of edges
        for all channels (``range``, else the data's); what a live view draws."""
        data = self.live_data(run_id)
        names = data.dtype.names or ()
        if field not in names or "channel" not in names:
            raise KeyError(f"{self.target!r} of run {run_id!r} has no field {field!r} (fields: {names})")
        values = np.asarray(data[field], np.float64)
        edges = np.histogram_bin_edges(values, bins=bins, range=range) if len(values) else np.zeros(0)
        board = np.asarray(data["board"], np.int64) if "board" in names else np.zeros(len(data), np.int64)
        channel = np.asarray(data["channel"], np.int64)
        counts = {}
        for b, c in sorted(set(zip(board.tolist(), channel.tolist(), strict=True))):
            sel = (board == b) & (channel == c)
            counts[f"{b}:{c}"] = np.histogram(values[sel], bins=edges)[0].tolist()
        return {"field": field, "edges": edges.tolist(), "counts": counts}

    def run(self, idle_exit: float | None = None) -> dict[str, dict[str, Any]]:
        """Watch until :meth:`stop` (or Ctrl-C); returns :meth:`status`.

        ``idle_exit``: also return once every run seen is done or failed and nothing
        happened for that many seconds (for scripts that process a night's runs and end).
        """
        events = self._events = FolderEvents(self.root, poll=self.poll)
        self.mode = events.mode
        restore = _stop_on_sigint(self)
        try:
            while not self.stopped:
                self.step()
                if idle_exit is not None and self._idle_for() >= idle_exit:
                    break
                if self.stopped:
                    break
                events.wait(self.interval)
        finally:
            events.close()
            self._events = None
            restore()
        return self.status()

    def start(self, idle_exit: float | None = None) -> threading.Thread:
        """:meth:`run` in a daemon thread (Ctrl-C is then the caller's: use :meth:`stop`)."""
        thread = threading.Thread(
            target=self.run, kwargs={"idle_exit": idle_exit}, name="watcher", daemon=True
        )
        thread.start()
        return thread

    def step(self) -> int:
        """One scan of the folder and the processing of what is ready; returns units computed."""
        computed = 0
        complete: list[str] = []
        touched = self._events.take_touched() if self._events is not None else set()
        if time.monotonic() >= self._recheck_at:
            self._recheck_at = time.monotonic() + self.recheck
            touched = None  # every run
        for run_id in run_folders(self.root):
            if self.stopped:
                break
            done = self._table.get(run_id).state == DONE
            if done and touched is not None and run_id not in touched:
                continue
            files = self._listing(run_id)
            if files is None:
                continue
            info = self._runs.setdefault(run_id, _Run())
            digest = files_digest(files)
            if done:
                if digest == info.done_digest:
                    continue
                info = self._runs[run_id] = _Run()  # rewritten since: a run like a new one
                self._table.set(run_id, state=WAITING, reason="changed after it was done")
            if self._table.get(run_id).state == FAILED and digest == info.failed_digest:
                continue  # failed on these very files: wait for them to change
            quiet = info.settling.quiet_for(digest, files)
            stopped = run_stopped(self.root / run_id)
            if stopped or (stopped is None and quiet >= self.settle):
                self._table.set(run_id, complete=True)
                complete.append(run_id)
                continue
            reason = "being written" if stopped is None else "being taken (run.info has no stop time)"
            self._table.set(run_id, state=WAITING, reason=reason, complete=False)
            self._last_activity = time.monotonic()
            if self.segments:
                for k in closed_segments(files):
                    if self.stopped:
                        break
                    if k not in info.records:
                        computed += self._segment(run_id, k, digest)
        if complete and not self.stopped:
            computed += self._complete_runs(complete)
        return computed

    def _idle_for(self) -> float:
        states = [s["state"] for s in self._table.snapshot().values()]
        if any(s not in (DONE, FAILED) for s in states):
            self._last_activity = time.monotonic()
        return time.monotonic() - self._last_activity

    def _note(self, run_id: str, message: str) -> None:
        self._last_activity = time.monotonic()
        if self._on_update is not None:
            self._on_update(run_id, message)
        else:
            logger.info(f"run {run_id!r}: {message}")

    def _listing(self, run_id: str) -> np.ndarray | None:
        ctx = self._context_for(run_id)
        try:
            return ctx.plugins["raw_files"].listing(ctx, run_id)
        except (RunNotFoundError, NoDataError, FileNotFoundError):
            self._table.set(run_id, state=WAITING, reason="no data files yet")
            return None
        except Exception as exc:  # noqa: BLE001 - one bad run never stops the others
            self._table.set(run_id, state=FAILED, reason=f"{type(exc).__name__}: {exc}")
            return None

    def _segment_context(self, ctx: Any, k: int) -> Any:
        key = (id(ctx), k)
        seg = self._segment_contexts.get(key)
        if seg is None:
            seg = self._segment_contexts[key] = segment_context(ctx, k)
        return seg

    def _segment(self, run_id: str, k: int, digest: str) -> int:
        """Compute (or find in the cache) segment ``k`` of ``run_id``; 1 if it was computed."""
        info = self._runs[run_id]
        seg = self._segment_context(self._context_for(run_id), k)
        self._table.set(run_id, state=PROCESSING, reason=f"segment {k}")
        t0 = time.perf_counter()
        try:
            plan = seg.explain(run_id, self.target)
            cached = not plan.rows[-1].will_run
            result = seg.get_data(run_id, self.target)
            st = seg.get_data(run_id, "st_waveforms") if self._has_records(seg) else None
        except Exception as exc:  # noqa: BLE001 - the run fails, the watcher goes on
            info.failed_digest = digest
            reason = f"segment {k}: {type(exc).__name__}: {exc}"
            self._table.set(run_id, state=FAILED, reason=reason)
            self._note(run_id, f"failed: {reason}")
            return 0
        info.records[k] = len(st) if st is not None else len(result)
        info.keys[k] = {row.data_name: row.key for row in plan.rows}
        if st is not None:
            _add_rates(info, st)
        status = self._table.get(run_id)
        self._table.set(
            run_id,
            state=WAITING,
            reason="being written",
            segments=sorted(info.records),
            computed=status.computed + (not cached),
            from_cache=status.from_cache + cached,
            records=sum(info.records.values()),
            results=status.results + len(result),
            rate_hz=_rates(info),
        )
        seg.release(run_id)
        how = "in cache" if cached else f"computed in {time.perf_counter() - t0:.2f} s"
        self._note(run_id, f"segment {k} {how}: {info.records[k]} records, {len(result)} {self.target}")
        return int(not cached)

    def _has_records(self, ctx: Any) -> bool:
        return "st_waveforms" in ctx.lineage(self.target).nodes

    def _complete_runs(self, run_ids: list[str]) -> int:
        """The whole-run target of complete runs: cached ones noted, the rest in one batch per Context."""
        from .. import BatchProcessor  # the public name: the batch package may move beneath it

        groups: dict[int, tuple[Any, list[str]]] = {}
        for run_id in run_ids:
            ctx = self._context_for(run_id)
            try:
                cached = ctx.is_cached(run_id, self.target)
            except Exception:  # noqa: BLE001 - the batch reports it with its reason
                cached = False
            if cached:
                self._done(run_id, ctx, computed=False)
            else:
                groups.setdefault(id(ctx), (ctx, []))[1].append(run_id)
        computed = 0
        for ctx, todo in groups.values():
            if self.stopped:
                break
            for run_id in todo:
                self._table.set(run_id, state=PROCESSING, reason="whole run")
            out = BatchProcessor(ctx).process_runs(
                todo, self.target, max_workers=self.workers, executor_type=self.executor,
                show_progress=False, cancellation_token=self._token,
            )  # fmt: skip
            for run_id in todo:
                meta = out["meta"][run_id]
                if meta["status"] == "success":
                    computed += 1
                    self._done(run_id, ctx, computed=True, elapsed=meta["elapsed"])
                elif meta["status"] == "failed":
                    err = out["errors"][run_id]
                    info = self._runs[run_id]
                    info.failed_digest = info.settling.digest
                    reason = f"{err['plugin']}: {err['type']}: {err['message']}"
                    self._table.set(run_id, state=FAILED, reason=reason)
                    self._note(run_id, f"failed: {reason}")
                else:  # stopped before it ran: the next watcher takes it
                    self._table.set(run_id, state=WAITING, reason="stopped before it ran")
        return computed

    def _done(self, run_id: str, ctx: Any, computed: bool, elapsed: float = 0.0) -> None:
        result = ctx.get_data(run_id, self.target)
        info = _Run()
        records = len(result)
        if self._has_records(ctx):
            st = ctx.get_data(run_id, "st_waveforms")
            records = len(st)
            _add_rates(info, st)
        status = self._table.get(run_id)
        self._table.set(
            run_id, state=DONE, reason="", complete=True, records=records, results=len(result),
            computed=status.computed + computed, from_cache=status.from_cache + (not computed),
            rate_hz=_rates(info),
        )  # fmt: skip
        ctx.release(run_id)
        self._runs.setdefault(run_id, _Run()).done_digest = self._runs[run_id].settling.digest
        how = f"computed in {elapsed:.2f} s" if computed else "in cache"
        self._note(run_id, f"run {how}: {records} records, {len(result)} {self.target}")


def _add_rates(info: _Run, st: np.ndarray) -> None:
    """Count records and their time span per (board, channel) into ``info``."""
    if len(st) == 0:
        return
    board = np.asarray(st["board"], np.int64)
    channel = np.asarray(st["channel"], np.int64)
    t = np.asarray(st["time"], np.int64)
    keys = board * 65536 + channel
    for key in np.unique(keys):
        sel = keys == key
        name = f"{int(key) // 65536}:{int(key) % 65536}"
        info.counts[name] = info.counts.get(name, 0) + int(sel.sum())
        lo, hi = int(t[sel].min()), int(t[sel].max())
        old = info.span.get(name)
        info.span[name] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))


def _rates(info: _Run) -> dict[str, float]:
    """Triggers per second per ``"board:channel"`` (records over first-to-last time)."""
    out = {}
    for name, n in sorted(info.counts.items()):
        lo, hi = info.span[name]
        out[name] = round(n / ((hi - lo) * 1e-9), 3) if hi > lo else 0.0
    return out


def _stop_on_sigint(watcher: Watcher) -> Callable[[], None]:
    """In the main thread: a first Ctrl-C stops the watcher after the unit in hand, a
    second one interrupts (the default handler is back). Returns the undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        watcher.stop()
        logger.warning("stopping after the segment or run in hand (Ctrl-C again to interrupt it)")
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, handler)
    return lambda: signal.signal(signal.SIGINT, previous)
