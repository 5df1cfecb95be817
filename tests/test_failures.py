"""The failure file: tasks come back as they were, strict JSON, tracebacks, old files still load."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loguru import logger

from celestialflow import TaskChain, TaskManager, failed_tasks, failures_by_stage, load_failures
from celestialflow.failures import TRACEBACK_MAX, FailureLog
from celestialflow.taskcodec import TaskEncodingError, decode, encode


class TwoArgError(Exception):
    def __init__(self, code, detail):
        super().__init__(f"{code}: {detail}")


def _refuse_constant(name):
    raise AssertionError(f"bare {name} in the failure file")


def strict_lines(path):
    return [json.loads(line, parse_constant=_refuse_constant) for line in path.read_text().splitlines()]


def same(a, b) -> bool:
    """Equal, with the same types all the way down; NaN equals NaN and -0.0 is not 0.0."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return repr(a) == repr(b)
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        keys_b = {k: k for k in b}
        return len(a) == len(b) and all(
            k in keys_b and same(k, keys_b[k]) and same(v, b[keys_b[k]]) for k, v in a.items()
        )
    if type(a) in (set, frozenset):
        members_b = {x: x for x in b}
        return len(a) == len(b) and all(x in members_b and same(x, members_b[x]) for x in a)
    return a == b


# NaN is left out of keys and set members: NaN != NaN, so no container can find it again
scalars = st.none() | st.booleans() | st.integers() | st.integers(-(2**80), 2**80) | st.text() | st.binary()
hashables = st.recursive(
    scalars | st.floats(allow_nan=False),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)
values = st.recursive(
    scalars | st.floats(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(hashables, inner, max_size=4)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
        | st.sets(hashables, max_size=4)
        | st.frozensets(hashables, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_encoding_round_trips_through_strict_json(value):
    text = json.dumps(encode(value), allow_nan=False)
    back = decode(json.loads(text, parse_constant=_refuse_constant))
    assert same(back, value), (value, back)


def test_encoding_examples():
    assert encode(7) == 7 and encode("x") == "x" and encode([1, None]) == [1, None]
    assert encode((1, 2)) == {"$tuple": [1, 2]}
    assert encode({"$tuple": 1}) == {"$dict": [["$tuple", 1]]}  # a key that looks like a tag
    assert same(decode(encode({"$tuple": 1})), {"$tuple": 1})
    assert encode(float("-inf")) == {"$float": "-inf"}
    huge = -(10**6000)  # beyond str(int)'s digit limit
    assert decode(json.loads(json.dumps(encode(huge)))) == huge
    assert encode({3, 1, 2}) == encode({2, 3, 1})  # same text whatever the set's order
    (member,) = decode(encode({float("nan")}))  # NaN as a set member or key comes back as NaN
    assert math.isnan(member)
    ((key, value),) = decode(encode({float("nan"): 1})).items()
    assert math.isnan(key) and value == 1


@pytest.mark.parametrize(
    "value, words",
    [
        (object(), "builtins.object"),
        ([1, {"k": range(3)}], "task[1]['k'] is a builtins.range"),
        (pytest.param, "does not store"),
    ],
)
def test_encoding_refuses_other_types_saying_where(value, words):
    with pytest.raises(TaskEncodingError, match=words.replace("[", r"\[").replace("]", r"\]")):
        encode(value)


def test_encoding_refuses_subclasses_and_self_containing_values():
    from collections import OrderedDict, namedtuple

    with pytest.raises(TaskEncodingError, match="OrderedDict"):
        encode(OrderedDict(a=1))
    with pytest.raises(TaskEncodingError, match="P"):
        encode(namedtuple("P", "x")(1))
    loop: list = []
    loop.append(loop)
    with pytest.raises(TaskEncodingError, match="contains itself"):
        encode(loop)


@pytest.mark.parametrize(
    "data", [{"$tuple": 3}, {"$set": [[1]]}, {"$float": "1.5"}, {"$bytes": "%%"}, {"$what": 1}, {"$dict": [[1]]}]
)
def test_decoding_refuses_malformed_tags(data):
    with pytest.raises(ValueError):
        decode(data)


def log_with(tmp_path, *failures):
    log = FailureLog(tmp_path, "g")
    for stage, task, exc in failures:
        log.record(stage, task, exc)
    log.close()
    return log.path


def raised(exc):
    try:
        raise exc
    except BaseException as caught:
        return caught


def test_tasks_come_back_as_they_were(tmp_path):
    tasks = [(1, "a"), None, {1: "one", (2, 3): {4.5}}, b"\x00\xff", float("nan"), frozenset({"x"}), [()], 2**70]
    path = log_with(tmp_path, *[("s", t, ValueError("bad")) for t in tasks])
    back = failed_tasks(path)
    assert len(back) == len(tasks) and all(same(a, b) for a, b in zip(back, tasks))
    strict_lines(path)  # no bare NaN anywhere


def test_none_task_is_returned_and_unstorable_task_is_noted(tmp_path):
    messages: list[str] = []
    sink = logger.add(messages.append, level="WARNING")
    try:
        path = log_with(
            tmp_path,
            ("s", None, ValueError("none")),
            ("s", object(), ValueError("odd")),
            ("s", [1, lambda: 0], ValueError("odd")),
            ("t", 5, KeyError("k")),
        )
        assert failed_tasks(path, stage="s") == [None]
    finally:
        logger.remove(sink)
    assert any("2 failed task(s) could not be stored" in m for m in messages), messages
    records = load_failures(path, stage="s")
    assert records[0]["task"] is None and "task_note" not in records[0]
    assert records[1]["task"] is None and "builtins.object" in records[1]["task_note"]
    assert "function" in records[2]["task_note"] and records[2]["task_repr"].startswith("[1, <function")


def test_record_keeps_traceback_and_qualified_type(tmp_path):
    path = log_with(tmp_path, ("s", 1, raised(TwoArgError(3, "detail"))), ("s", 2, raised(ValueError("v"))))
    first, second = strict_lines(path)
    assert first["error_type"] == "TwoArgError"
    assert first["error_qualname"] == f"{__name__}.TwoArgError"
    assert "Traceback (most recent call last)" in first["traceback"] and "raised" in first["traceback"]
    assert first["message"] == "3: detail"
    assert second["error_qualname"] == "builtins.ValueError"
    assert failed_tasks(path, error_type="builtins.ValueError") == [2]
    assert failed_tasks(path, error_type="TwoArgError") == [1]


def test_long_traceback_is_cut_keeping_both_ends(tmp_path):
    def deep(n):
        if n == 0:
            raise RuntimeError("x" * 20_000 + " at the bottom")
        deep(n - 1)

    path = log_with(tmp_path, ("s", 1, raised_from(deep, 3)))
    (rec,) = strict_lines(path)
    assert len(rec["traceback"]) < TRACEBACK_MAX + 100
    assert "characters cut" in rec["traceback"] and rec["traceback"].rstrip().endswith("at the bottom")
    assert rec["traceback"].startswith("Traceback")


def raised_from(fn, *args):
    try:
        fn(*args)
    except Exception as exc:
        return exc
    raise AssertionError("did not raise")


def test_odd_exceptions_and_reprs_do_not_lose_the_record(tmp_path):
    class BadRepr:
        def __repr__(self):
            raise RuntimeError("no repr")

    class BadStr(Exception):
        def __str__(self):
            raise RuntimeError("no str")

    path = log_with(tmp_path, ("s", BadRepr(), BadStr()), ("s", {"k": BadRepr()}, ValueError()))
    first, second = strict_lines(path)
    assert "repr() raised RuntimeError" in first["task_repr"] and "str() raised" in first["message"]
    assert second["task"] is None and "BadRepr" in second["task_note"]


def test_failures_by_stage(tmp_path):
    path = log_with(
        tmp_path,
        ("a", (1, 2), ValueError()),
        ("b", None, ValueError()),
        ("a", {"k": [1]}, ValueError()),
        ("b", object(), ValueError()),
    )
    assert failures_by_stage(path) == {"a": [(1, 2), {"k": [1]}], "b": [None]}


def test_files_written_before_the_encoding_still_load(tmp_path):
    path = tmp_path / "old.jsonl"
    old = [
        {"stage": "s", "task": [1, 2], "task_repr": "(1, 2)", "error_type": "ValueError", "message": "m", "time": 1.0},
        {"stage": "s", "task": None, "task_repr": "None", "error_type": "ValueError", "message": "m", "time": 1.0},
        {"stage": "s", "task": None, "task_repr": "{1, 2}", "error_type": "ValueError", "message": "m", "time": 1.0},
        {"stage": "t", "task": {"a": 1}, "task_repr": "{'a': 1}", "error_type": "KeyError", "message": "m", "time": 1.0},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in old))
    assert failed_tasks(path, stage="s") == [[1, 2], None]
    assert failures_by_stage(path) == {"s": [[1, 2], None], "t": [{"a": 1}]}


def test_bad_lines_name_the_file_and_line(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_text('{"stage": "s", "task": 1}\n{"stage": "s", "task": {"$tuple": 5}, "task_encoding": "cf-tagged-1"}\n')
    with pytest.raises(ValueError, match=r"f\.jsonl:2"):
        failed_tasks(path)
    path.write_text("[1]\n")
    with pytest.raises(ValueError, match=r"f\.jsonl:1: not a failure record"):
        failed_tasks(path)
    with pytest.raises(FileNotFoundError, match="no failure log"):
        failed_tasks(tmp_path / "missing.jsonl")


def fail_odd(x):
    if isinstance(x, tuple) or x is None or (isinstance(x, float) and math.isnan(x)):
        raise ValueError(f"refused {x!r}")
    return x


def test_graph_run_stores_tuples_none_and_nan(tmp_path):
    chain = TaskChain([TaskManager(fail_odd, log_to_file=False, name="gate")], failure_dir=tmp_path)
    chain.start([1, (2, 3), None, float("nan"), 4])
    back = failed_tasks(chain.failure_log_path, stage="gate")
    assert back[:2] == [(2, 3), None] and math.isnan(back[2]) and len(back) == 3
    assert failures_by_stage(chain.failure_log_path).keys() == {"gate"}
    strict_lines(chain.failure_log_path)


def test_rerun_failed_feeds_each_stage_what_failed_there(tmp_path):
    from celestialflow import TaskChain, TaskManager

    state = {"fixed": False}

    def a(x):
        if x[0] == 2 and not state["fixed"]:
            raise ValueError("a fails")
        return (x[0] + 1, x[1])

    def b(x):
        if x[0] == 5 and not state["fixed"]:
            raise KeyError("b fails")
        return x

    chain = TaskChain([TaskManager(a, log_to_file=False), TaskManager(b, log_to_file=False)], failure_dir=tmp_path)
    chain.start([(i, None) for i in range(6)])
    assert sorted(chain.get_results()["b"]) == [(1, None), (2, None), (4, None), (6, None)]
    first = chain.failure_log_path
    state["fixed"] = True
    chain.rerun_failed()  # the last run's file: (2, None) starts again at a, (5, None) at b
    assert sorted(chain.get_results()["b"]) == [(3, None), (5, None)]
    assert chain.failure_log_path is None  # nothing failed this time
    chain.rerun_failed(first)  # an explicit file works too
    assert sorted(chain.get_results()["b"]) == [(3, None), (5, None)]


def test_rerun_failed_without_a_failure_is_a_clear_error():
    from celestialflow import GraphError, TaskChain, TaskManager

    chain = TaskChain([TaskManager(abs, log_to_file=False)], record_failures=False)
    chain.start([1])
    with pytest.raises(GraphError, match="no failure file"):
        chain.rerun_failed()


class TwoArgs(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a}/{b}")


def raise_two_args(x):
    raise TwoArgs(x, "b")


def test_a_worker_exception_keeps_its_names_and_traceback_in_the_failure_file(tmp_path):
    from celestialflow import TaskChain, TaskManager

    chain = TaskChain([TaskManager(raise_two_args, "process", worker_limit=2, log_to_file=False)], failure_dir=tmp_path)
    chain.start([1])
    (rec,) = load_failures(chain.failure_log_path)
    assert rec["error_type"] == "TwoArgs" and rec["error_qualname"].endswith("test_failures.TwoArgs")
    assert "raise_two_args" in rec["traceback"] and rec["message"] == "1/b"


def _chained_error() -> BaseException:
    try:
        try:
            {}["missing"]
        except KeyError as inner:
            raise ValueError("outer") from inner
    except ValueError as exc:
        return exc


def test_a_traceback_is_formatted_without_parsing_source(monkeypatch):
    # Python 3.11 places a traceback's carets by parsing source lines with ast, whose
    # conversion state threads share; numba parses a kernel's source while it compiles, so
    # a run formatting its error beside a compiling one could fail with "AST constructor
    # recursion depth mismatch". Formatting without columns parses nothing.
    import ast

    from celestialflow.errors import traceback_text

    def no_parse(*a, **k):
        raise AssertionError("ast.parse called while formatting a traceback")

    monkeypatch.setattr(ast, "parse", no_parse)
    text = traceback_text(_chained_error())
    assert "could not be formatted" not in text
    assert "KeyError: 'missing'" in text and "ValueError: outer" in text and "_chained_error" in text


def _format_and_exit() -> None:  # in a forked child
    import os

    from celestialflow.errors import traceback_text

    os._exit(0 if "KeyError" in traceback_text(_chained_error()) else 3)


def test_a_worker_forked_while_numba_compiles_formats_its_error():
    # A worker forked while another thread of the parent held numba's compiler lock (held
    # while numba compiles, and once while any traceback was formatted) inherited the lock
    # held by a thread it does not have, and waited for ever on its first error: seen as a
    # hang of the reliability suite, the workers' stacks in the lock's acquire.
    import multiprocessing
    import threading

    import numba.core.compiler_lock as cl

    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with cl.global_compiler_lock:
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        child = multiprocessing.get_context("fork").Process(target=_format_and_exit)
        child.start()
        child.join(20)
        hung = child.is_alive()
        if hung:
            child.kill()
            child.join()
    finally:
        release.set()
        holder.join()
    assert not hung and child.exitcode == 0
