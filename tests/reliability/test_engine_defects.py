"""One regression test per engine defect of issue 8 (1-15 and 17), from the reproducers there.

Each uses the public API only and is guarded by a timeout, so a defect that hangs
fails instead of blocking the suite. Each failed on the engine before the fix
(see docs/reliability.md). Nothing here asserts on timing: where a defect is about timing, the test asserts the structure
behind it (which worker ran what, what had finished when).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections import OrderedDict, defaultdict
from pathlib import Path

import pytest
from loguru import logger

from celestialflow import (
    ConfigurationError,
    GraphError,
    Hook,
    NotPicklableError,
    StageNotFoundError,
    TaskChain,
    TaskGraph,
    TaskLoop,
    TaskManager,
)

from .faultlib import Hang, TwoArgError, run_within

PARENT_PID = os.getpid()  # a forked worker keeps this value: its own pid differs
GUARD = 8.0  # seconds before a run counts as hung



def manager(func, mode="serial", **kw):
    kw.setdefault("log_to_file", False)
    kw.setdefault("enable_success_cache", True)
    kw.setdefault("enable_error_cache", True)
    kw.setdefault("backoff_base", 0.001)
    kw.setdefault("backoff_max", 0.01)
    return TaskManager(func, execution_mode=mode, **kw)


def start(tm, tasks, seconds=GUARD):
    run_within(lambda: tm.start(tasks), seconds, f"{tm.execution_mode} start()")
    return tm


def identity(x):
    return x


def raise_two_arg_on_3(x):
    if x == 3:
        raise TwoArgError(3, "cannot be rebuilt from its args")
    return x


KILLER = 12345  # a value no message holds by chance
TASKS_WITH_KILLER = [*range(10), KILLER, *range(10, 19)]


def exit_worker_on_killer(x):
    if x == KILLER and os.getpid() != PARENT_PID:
        os._exit(1)
    return x


def generator_on_3(x):
    if x == 3:
        return (i for i in range(2))
    return x


def pid_after_nap(x):
    time.sleep(0.05)
    return os.getpid()


def big_result(x):
    return b"x" * (1 << 20)


def raise_base_on_2(x, kind):
    if x == 2:
        raise kind("stop")
    return x


# -- 1, 2: async mode -------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_1_async_retry_with_several_workers_ends():
    runs = []
    for n_tasks, workers in [(2, 2), (5, 3), (20, 20), (100, 10)]:
        failed_once: set[int] = set()

        async def flaky(x, failed_once=failed_once):
            if x not in failed_once:
                failed_once.add(x)
                raise ConnectionError(f"first attempt of {x}")
            return x

        tm = manager(flaky, "async", worker_limit=workers)
        runs.append((tm, n_tasks, threading.Thread(target=tm.start, args=(range(n_tasks),), daemon=True)))
    for _, _, t in runs:
        t.start()
    deadline = time.monotonic() + 3  # all four run at once: a hang costs this once
    for tm, n_tasks, t in runs:
        t.join(max(0.0, deadline - time.monotonic()))
        assert not t.is_alive(), f"async start({n_tasks} tasks, worker_limit={tm.worker_limit}) hangs"
        assert tm.get_counts()["succeeded"] == n_tasks


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "mode",
    ["serial", "thread", "process", "async"],
)
def test_2_none_is_a_task_in_every_mode(mode):
    if mode == "async":

        async def func(x):
            return x

    else:
        func = identity
    tm = start(manager(func, mode, worker_limit=1), [1, None, 2, 3])
    assert tm.get_counts()["succeeded"] == 4
    assert tm.get_success_dict() == {1: 1, None: None, 2: 2, 3: 3}


# -- 3, 4, 10: process pools ---------------------------------------------------------------


@pytest.mark.timeout(30)
def test_3_exception_that_does_not_unpickle_fails_only_its_task():
    tm = start(manager(raise_two_arg_on_3, "process", worker_limit=2), range(100))
    counts = tm.get_counts()
    assert (counts["succeeded"], counts["failed"]) == (99, 1), counts
    (err,) = tm.get_error_dict().values()
    assert "TwoArgError" in f"{type(err).__name__} {err}"
    assert list(tm.get_error_dict()) == [3]


@pytest.mark.timeout(30)
def test_4_dead_worker_fails_only_the_task_that_killed_it():
    tm = start(manager(exit_worker_on_killer, "process", worker_limit=2), TASKS_WITH_KILLER)
    counts = tm.get_counts()
    assert (counts["succeeded"], counts["failed"]) == (19, 1), counts
    assert list(tm.get_error_dict()) == [KILLER]
    message = str(tm.get_error_dict()[KILLER])
    assert str(KILLER) in message and "died" in message.lower(), message
    assert sorted(tm.get_success_dict()) == list(range(19))


@pytest.mark.timeout(30)
def test_4_dead_worker_in_a_graph():
    chain = TaskChain([manager(exit_worker_on_killer, "process", worker_limit=2, name="risky"), manager(identity)])
    run_within(lambda: chain.start(TASKS_WITH_KILLER), GUARD, "start_graph")
    status = chain.get_status_dict()["risky"]
    assert status["state"] == "failed" and (status["succeeded"], status["failed"]) == (19, 1), status
    assert sorted(chain.get_results()["identity"]) == list(range(19))
    ((stage, task), err), = chain.get_error_dict().items()
    assert (stage, task) == ("risky", KILLER)
    assert str(KILLER) in str(err) and "died" in str(err).lower(), err


@pytest.mark.timeout(30)
def test_10_unpicklable_result_fails_only_its_task():
    tm = start(manager(generator_on_3, "process", worker_limit=2), range(40))
    counts = tm.get_counts()
    assert (counts["succeeded"], counts["failed"]) == (39, 1), counts
    assert list(tm.get_error_dict()) == [3]


# -- 5, 6, 7: chunks ------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_5_generator_input_spreads_over_threads():
    threads: set[int] = set()
    lock = threading.Lock()

    def nap(x):
        with lock:
            threads.add(threading.get_ident())
        time.sleep(0.01)
        return x

    start(manager(nap, "thread", worker_limit=20), (x for x in range(20)))
    assert len(threads) > 1, "every task of the generator ran on one thread"


@pytest.mark.timeout(30)
def test_5_generator_input_spreads_over_processes():
    tm = start(manager(pid_after_nap, "process", worker_limit=2), (x for x in range(8)))
    assert len(set(tm.get_success_dict().values())) == 2, "every task of the generator ran in one process"


@pytest.mark.timeout(60)
def test_6_big_results_do_not_pile_up_in_the_parent(tmp_path):
    code = f"""
        import resource, sys
        sys.path.insert(0, {str(Path(__file__).parents[1])!r})
        from reliability.test_engine_defects import big_result
        from celestialflow import TaskManager
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        TaskManager(big_result, "process", worker_limit=2, log_to_file=False).start(range(300))
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) // 1024)
    """
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=50)
    assert out.returncode == 0, out.stderr
    grew = int(out.stdout.split()[-1])
    # 300 results of 1 MiB; one task per chunk peaks about 70 MiB above the start, today ~340
    assert grew <= 150, f"peak RSS grew by {grew} MiB"


@pytest.mark.timeout(20)
def test_7_first_result_reaches_the_sink_early():
    done = [0]
    first_seen: list[int] = []
    lock = threading.Lock()

    def work(x):
        time.sleep(0.005)
        with lock:
            done[0] += 1
        return x

    def sink(x):
        if not first_seen:
            with lock:
                first_seen.append(done[0])
        return x

    chain = TaskChain([manager(work, "thread", worker_limit=4), manager(sink)])
    run_within(lambda: chain.start(range(400)), GUARD)
    # within about two task durations: a few tasks per thread (5 each leaves room for a slow wake-up)
    assert first_seen[0] <= 5 * 4, f"{first_seen[0]} of 400 tasks had finished when the first result arrived"


# -- 8: Ctrl-C in thread mode ------------------------------------------------------------------


@pytest.mark.timeout(40)
def test_8_ctrl_c_starts_no_new_thread_task(tmp_path):
    started = tmp_path / "started"
    code = f"""
        import sys, time
        from loguru import logger
        logger.remove()
        from celestialflow import TaskGraph, TaskManager

        def slow(x):
            with open({str(started)!r}, "a") as fh:
                fh.write(f"{{x}}\\n")
            time.sleep(1.5)
            return x

        g = TaskGraph("ctrl-c", record_failures=False)
        g.add_stage(TaskManager(slow, "thread", worker_limit=4, log_to_file=False))
        try:
            g.start_graph({{"slow": list(range(8))}})
        except KeyboardInterrupt:
            sys.exit(3)
    """
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and (not started.exists() or len(started.read_text().split()) < 4):
            time.sleep(0.02)
        assert started.exists(), "no task started"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 3, err
    ran = started.read_text().split()
    assert len(ran) == 4, f"tasks started after Ctrl-C: {len(ran) - 4} ({ran})"


# -- 9, 12, 13: hooks and odd tasks ----------------------------------------------------------------


class ArgsFailOnZero(TaskManager):
    """get_args raises for task 0 and counts its calls."""

    calls: list = []

    def get_args(self, task):
        type(self).calls.append(task)
        if task == 0:
            raise ValueError("no args for task 0")
        return (task,)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "mode",
    ["serial", "thread", "process"],
)
def test_9_get_args_error_is_that_tasks_error(mode):
    ArgsFailOnZero.calls = []
    tm = ArgsFailOnZero(identity, mode, worker_limit=2, enable_error_cache=True, enable_success_cache=True, log_to_file=False)
    start(tm, [0, 1, 2])
    assert isinstance(tm.get_error_dict()[0], ValueError)
    assert sorted(tm.get_success_dict()) == [1, 2]
    assert ArgsFailOnZero.calls.count(0) == 1, f"get_args called {ArgsFailOnZero.calls.count(0)} times for task 0"


class NoHash:
    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other):
        return self is other


@pytest.mark.timeout(20)
@pytest.mark.parametrize("mode", ["serial", "thread"])
def test_12_unhashable_task_is_that_tasks_error(mode):
    failures: list[BaseException] = []

    class Catch(Hook):
        def on_failure(self, m, task, exc):
            failures.append(exc)

    tm = manager(identity, mode, enable_success_cache=False, enable_error_cache=False)
    tm.add_hook(Catch())
    start(tm, [1, NoHash(), 2])
    counts = tm.get_counts()
    assert (counts["succeeded"], counts["failed"]) == (2, 1), counts
    (err,) = failures
    assert "NoHash" in str(err) and "enable_duplicate_check" in str(err), err


@pytest.mark.timeout(20)
@pytest.mark.parametrize("mode", ["serial", "thread"])
@pytest.mark.parametrize("mapping", [OrderedDict, lambda **kw: defaultdict(int, kw)], ids=["OrderedDict", "defaultdict"])
def test_13_any_mapping_is_keywords(mode, mapping):
    def pair(x, y):
        return (x, y)

    tm = start(manager(pair, mode, unpack_task_args=True), [mapping(x=1, y=2)])
    assert list(tm.get_success_dict().values()) == [(1, 2)]


# -- 11, 14, 15: graphs --------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_11_status_is_safe_to_poll_during_a_run():
    errors: list[BaseException] = []
    stop = threading.Event()
    g = TaskChain([manager(identity, "thread", worker_limit=4, name=f"s{i}", enable_success_cache=False) for i in range(6)])

    def poll():
        while not stop.is_set():
            try:
                g.get_status_dict()
            except BaseException as exc:  # noqa: BLE001 - collected for the assert
                errors.append(exc)
                return

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        for _ in range(6):  # a race: several runs make it show up most of the time
            run_within(lambda: g.start(range(3000)), GUARD * 2)
    finally:
        stop.set()
        poller.join(5)
    assert not errors, f"get_status_dict raised during the run: {errors[0]!r}"


def inc(x):
    return x + 1


@pytest.mark.timeout(20)
def test_14_one_manager_in_two_graphs():
    shared = manager(inc, name="a")
    g1, g2 = TaskGraph("g1", record_failures=False), TaskGraph("g2", record_failures=False)
    g1.add_stage(shared)
    g2.add_stage(manager(identity, name="a"))
    try:
        g2.add_stage(shared)
    except GraphError as exc:  # refusing clearly is one of the two fixes
        assert "g1" in str(exc), exc
        return
    name_in_g2 = next(n for n, s in g2.stages.items() if s is shared)
    assert list(g1.stages) == ["a"] and shared.name == "a", "adding to g2 renamed the stage under g1"
    run_within(lambda: g1.start_graph({"a": [1, 2]}), GUARD)
    run_within(lambda: g2.start_graph({name_in_g2: [10]}), GUARD)
    assert g1.get_status_dict()["a"]["processed"] == 2, "g1's status shows g2's run"
    assert sorted(g1.get_results()["a"]) == [2, 3]


@pytest.mark.timeout(20)
def test_15_graph_checks_process_stages_are_picklable():
    chain = TaskChain([manager(lambda x: x, "process", name="lam")])
    with pytest.raises(NotPicklableError, match="lam"):
        run_within(lambda: chain.start([1, 2]), GUARD)


# -- 17: the smaller ones ------------------------------------------------------------------------------


def outcome_of(mode, kind):
    tm = manager(raise_base_on_2, mode, worker_limit=2, unpack_task_args=True)
    try:
        start(tm, [(x, kind) for x in range(30)])
    except (KeyboardInterrupt, SystemExit) as exc:
        return ("raised", type(exc).__name__)
    return ("completed", tm.get_counts()["failed"])


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "kind",
    [SystemExit, KeyboardInterrupt],
)
def test_17_base_exceptions_of_a_task_follow_one_rule(kind):
    outcomes = {mode: outcome_of(mode, kind) for mode in ("serial", "thread", "process")}
    assert len(set(outcomes.values())) == 1, outcomes
    verdict = next(iter(outcomes.values()))
    assert verdict[0] == "raised" or verdict == ("completed", 1), outcomes


@pytest.mark.timeout(20)
def test_17_chain_streams_a_generator():
    pulled = [0]
    at_first_call: list[int] = []

    def source(n):
        for i in range(n):
            pulled[0] += 1
            yield i

    def first(x):
        if not at_first_call:
            at_first_call.append(pulled[0])
        return x

    chain = TaskChain([manager(first, enable_success_cache=False)], collect_results=False)
    run_within(lambda: chain.start(source(20_000)), GUARD)
    assert at_first_call[0] < 20_000, "the whole generator was read before the first task ran"


@pytest.mark.timeout(20)
def test_17_endless_cycle_is_warned_about():
    stop = threading.Event()
    warnings: list[str] = []

    def onward(x):
        if stop.is_set():
            raise ValueError("test over")
        return x + 1

    sink = logger.add(lambda m: warnings.append(str(m)), level="WARNING")
    loop = TaskLoop([manager(onward, enable_success_cache=False)], record_failures=False)
    t = threading.Thread(target=loop.start, args=([0],), daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 2  # 100 turns of one item take milliseconds
        while time.monotonic() < deadline and not any("cycle" in w.lower() for w in warnings):
            time.sleep(0.02)
    finally:
        stop.set()
        t.join(GUARD)
        logger.remove(sink)
    assert not t.is_alive()
    assert any("cycle" in w.lower() for w in warnings), "no warning while the cycle circulated"


@pytest.mark.timeout(20)
def test_17_two_feeds_of_one_stage_are_refused():
    g = TaskGraph("twice", record_failures=False)
    a = g.add_stage(manager(identity, name="a"))
    with pytest.raises((GraphError, ValueError), match="a"):
        run_within(lambda: g.start_graph({a: [1, 2], "a": [3, 4]}), GUARD)


@pytest.mark.timeout(20)
def test_17_equal_errors_are_grouped():
    def same_error(x):
        raise ValueError("the same message")

    tm = start(manager(same_error), [1, 2, 3])
    groups = tm.handle_error_dict()
    assert len(groups) == 1 and sorted(next(iter(groups.values()))) == [1, 2, 3], groups


@pytest.mark.timeout(20)
def test_17_async_manager_sets_log_path():
    async def ident(x):
        return x

    tm = start(manager(ident, "async", log_to_file=True), [1, 2])
    assert tm.log_path is not None and Path(tm.log_path).exists()


@pytest.mark.timeout(20)
def test_17_bad_references_and_options_get_typed_errors():
    g = TaskGraph("refs", record_failures=False)
    g.add_stage(manager(identity, name="a"))
    with pytest.raises(StageNotFoundError):
        g.connect(42, "a")
    with pytest.raises(ConfigurationError, match="worker_limit"):
        TaskManager(identity, worker_limit=True)
    with pytest.raises(ConfigurationError, match="max_info"):
        TaskManager(identity, max_info=-5)


@pytest.mark.timeout(30)
def test_17_one_log_file_per_graph_run_and_retention(tmp_path, monkeypatch):
    logs = tmp_path / "graph-logs"
    monkeypatch.setenv("CELESTIALFLOW_LOG_DIR", str(logs))
    chain = TaskChain([TaskManager(identity, name=f"s{i}") for i in range(3)], record_failures=False)
    run_within(lambda: chain.start([1, 2]), GUARD)
    assert len(list(logs.glob("*.log"))) == 1, sorted(p.name for p in logs.glob("*.log"))
    for _ in range(30):
        TaskManager(identity, name="again").start([1])
    kept = list(logs.glob("*.log"))
    assert len(kept) <= 25, f"{len(kept)} log files kept after 31 runs"


def test_guard_reports_a_hang():
    with pytest.raises(Hang, match="did not end"):
        run_within(lambda: time.sleep(0.5), 0.05)
