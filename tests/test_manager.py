"""TaskManager behaviours a user relies on, in every execution mode."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict

import pytest
from loguru import logger

from celestialflow import ConfigurationError, NotPicklableError, TaskManager

MODES = ["serial", "thread", "process"]


def add(x, y):
    return x + y


def square(x):
    return x * x


def fail_on_odd(x):
    if x % 2:
        raise ValueError(f"odd {x}")
    return x


async def async_square(x):
    await asyncio.sleep(0.001)
    return x * x


def tm(func, mode="serial", **kw):
    kw.setdefault("log_to_file", False)
    return TaskManager(func, execution_mode=mode, **kw)


@pytest.mark.parametrize("mode", MODES)
def test_results_per_mode(mode):
    m = tm(square, mode, worker_limit=4, enable_success_cache=True)
    m.start(list(range(50)))
    assert m.get_success_dict() == {i: i * i for i in range(50)}
    assert m.get_counts()["succeeded"] == 50


def test_async_mode_via_start_and_start_async():
    m = tm(async_square, "async", worker_limit=10, enable_success_cache=True)
    m.start(range(30))
    assert m.get_success_dict() == {i: i * i for i in range(30)}
    m2 = tm(async_square, "async", worker_limit=10, enable_success_cache=True)
    asyncio.run(m2.start_async(range(5)))
    assert m2.get_success_dict() == {i: i * i for i in range(5)}


@pytest.mark.parametrize("mode", MODES)
def test_error_isolation_keeps_exception_instance(mode):
    m = tm(fail_on_odd, mode, worker_limit=3, enable_success_cache=True, enable_error_cache=True)
    m.start(list(range(10)))
    assert set(m.get_success_dict()) == {0, 2, 4, 6, 8}
    errors = m.get_error_dict()
    assert set(errors) == {1, 3, 5, 7, 9}
    assert isinstance(errors[3], ValueError) and str(errors[3]) == "odd 3"
    assert m.get_counts()["failed"] == 5


def test_caches_off_by_default():
    m = tm(fail_on_odd)
    m.start(range(4))
    assert m.get_success_dict() == {} and m.get_error_dict() == {}
    assert m.get_counts() == {"processed": 4, "succeeded": 2, "failed": 2, "duplicated": 0, "retried": 0}


@pytest.mark.parametrize("mode", ["serial", "thread"])
def test_retry_count_and_growing_backoff(mode):
    calls = defaultdict(list)
    lock = threading.Lock()

    def flaky(x):
        with lock:
            calls[x].append(time.monotonic())
        raise ConnectionError("down")

    m = tm(flaky, mode, max_retries=3, backoff_base=0.02, backoff_factor=2.0, backoff_jitter=0.0, enable_error_cache=True)
    m.start([1])
    assert len(calls[1]) == 4  # 1 + max_retries
    gaps = [b - a for a, b in zip(calls[1], calls[1][1:])]
    assert gaps[0] >= 0.02 and gaps[1] >= 0.04 and gaps[2] >= 0.08
    assert gaps[1] > gaps[0] and gaps[2] > gaps[1]
    assert m.get_counts()["retried"] == 3
    assert isinstance(m.get_error_dict()[1], ConnectionError)


def test_retry_then_success_and_custom_retry_exceptions():
    seen = defaultdict(int)

    class Flaky(Exception):
        pass

    def f(x):
        seen[x] += 1
        if seen[x] < 3:
            raise Flaky("again")
        return x

    m = tm(f, max_retries=5, backoff_base=0.001, enable_success_cache=True)
    m.add_retry_exceptions(Flaky)
    assert Flaky in m.retry_exceptions
    m.start([7, 8])
    assert m.get_success_dict() == {7: 7, 8: 8}
    assert seen == {7: 3, 8: 3}


def test_non_retryable_not_retried():
    n = []

    def f(x):
        n.append(x)
        raise KeyError(x)

    m = tm(f, max_retries=3, enable_error_cache=True)
    m.start([1])
    assert n == [1]
    assert m.get_counts()["retried"] == 0


def test_retry_wait_does_not_block_other_tasks():
    order = []

    def f(x):
        if x == 0 and order.count(0) == 0:
            order.append(0)
            raise TimeoutError("slow")
        order.append(x)
        return x

    m = tm(f, "thread", worker_limit=1, backoff_base=0.2, backoff_jitter=0.0)
    m.start([0, 1, 2, 3])
    assert order[:4] == [0, 1, 2, 3] and order[-1] == 0


@pytest.mark.parametrize("dedup,expected", [(True, 3), (False, 5)])
def test_dedup(dedup, expected):
    calls = []
    m = tm(lambda x: calls.append(x), enable_duplicate_check=dedup)
    m.start([1, 2, 1, 3, 2])
    assert len(calls) == expected
    assert m.get_counts()["duplicated"] == 5 - expected


def test_unhashable_tasks_lists_and_dicts():
    m = tm(add, unpack_task_args=True, enable_success_cache=True)
    m.start([[1, 2], [3, 4], [1, 2]])
    assert m.get_success_dict() == {(1, 2): 3, (3, 4): 7}
    assert m.get_counts()["duplicated"] == 1
    m = tm(add, unpack_task_args=True, enable_success_cache=True)
    m.start([{"x": 1, "y": 2}, {"y": 5, "x": 1}])
    assert m.get_success_dict() == {(("x", 1), ("y", 2)): 3, (("x", 1), ("y", 5)): 6}


class ExampleTaskManager(TaskManager):
    """The guide's example, with ``self`` where the guide forgot it."""

    def get_args(self, task):
        num1, num2 = task
        if num1 < 0 or num2 < 0:
            raise ValueError("num must large than 0.")
        return num1, num2

    def process_result(self, task, result):
        num1, num2 = task
        return f"{num1} + {num2} = {result}"

    def process_result_dict(self):
        return {**self.success_dict, **self.error_dict}

    def handle_error_dict(self):
        error_groups = defaultdict(list)
        for task, error in self.error_dict.items():
            error_groups[error].append(task)
        return dict(error_groups)


@pytest.mark.parametrize("mode", MODES)
def test_seed_example_hooks(mode):
    m = ExampleTaskManager(
        func=add,
        execution_mode=mode,
        worker_limit=50,
        unpack_task_args=False,
        enable_success_cache=True,
        enable_error_cache=True,
        progress_desc="Example Processing",
        show_progress=False,
        log_to_file=False,
    )
    m.start([(1, 2), (3, 4), (-1, 2)])
    assert m.get_success_dict() == {(1, 2): "1 + 2 = 3", (3, 4): "3 + 4 = 7"}
    assert isinstance(m.get_error_dict()[(-1, 2)], ValueError)
    assert set(m.process_result_dict()) == {(1, 2), (3, 4), (-1, 2)}
    assert list(m.handle_error_dict().values()) == [[(-1, 2)]]


def test_process_result_error_is_task_error():
    class M(TaskManager):
        def process_result(self, task, result):
            if task == 2:
                raise RuntimeError("bad result")
            return result

    m = M(square, "thread", worker_limit=2, enable_error_cache=True, enable_success_cache=True, log_to_file=False)
    m.start([1, 2, 3])
    assert set(m.get_success_dict()) == {1, 3}
    assert isinstance(m.get_error_dict()[2], RuntimeError)


def test_invalid_mode_and_options():
    with pytest.raises(ValueError, match="unknown execution_mode 'gpu'"):
        TaskManager(square, execution_mode="gpu")
    with pytest.raises(ConfigurationError, match="worker_limit"):
        TaskManager(square, worker_limit=0)
    with pytest.raises(ConfigurationError, match="async def"):
        TaskManager(square, execution_mode="async")
    with pytest.raises(TypeError):
        TaskManager(42)
    with pytest.raises(ValueError, match="log level"):
        TaskManager(square, log_level="LOUD")


def test_worker_limit_bounds_concurrency():
    active, peak = [0], [0]
    lock = threading.Lock()

    def f(x):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.002)
        with lock:
            active[0] -= 1

    tm(f, "thread", worker_limit=3).start(range(60))
    assert 1 < peak[0] <= 3


def test_async_worker_limit_bounds_concurrency():
    active, peak = [0], [0]

    async def f(x):
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        await asyncio.sleep(0.001)
        active[0] -= 1

    tm(f, "async", worker_limit=4).start(range(40))
    assert 1 < peak[0] <= 4


def test_progress_bar_shown(capsys):
    m = tm(square, show_progress=True, progress_desc="Squaring")
    m.start(range(100))
    err = capsys.readouterr().err
    assert "Squaring" in err and "100/100" in err


def test_host_loguru_sinks_untouched(tmp_path):
    lines = []
    sink = logger.add(lines.append, level="DEBUG")
    try:
        before = dict(logger._core.handlers)
        m = TaskManager(fail_on_odd, log_dir=tmp_path / "logs")
        m.start(range(4))
        assert dict(logger._core.handlers) == before
        assert any("end fail_on_odd" in str(line) for line in lines)
    finally:
        logger.remove(sink)
    assert m.log_path is not None and m.log_path.parent == tmp_path / "logs"
    assert "2 failed" in m.log_path.read_text()


def test_log_files_unique_per_run(tmp_path):
    m = TaskManager(square, log_dir=tmp_path)
    m.start([1])
    first = m.log_path
    m.start([2])
    assert first != m.log_path and first.exists() and m.log_path.exists()


def test_unpicklable_function_in_process_mode():
    lock = threading.Lock()

    def local(x):
        with lock:
            return x

    m = tm(local, "process", worker_limit=2)
    with pytest.raises(NotPicklableError, match="cannot be pickled"):
        m.start([1, 2, 3])


def test_unpicklable_task_in_process_mode_fails_alone():
    lock = threading.Lock()
    m = tm(square, "process", worker_limit=2, enable_success_cache=True, enable_error_cache=True)
    m.start([1, lock, 2, 3])
    assert m.get_success_dict() == {1: 1, 2: 4, 3: 9}
    (err,) = m.get_error_dict().values()
    assert isinstance(err, NotPicklableError) and "arguments of task" in str(err)


def test_generator_input_and_empty_input():
    m = tm(square, "thread", worker_limit=4, enable_success_cache=True)
    m.start(i for i in range(20))
    assert len(m.get_success_dict()) == 20
    m.start([])
    assert m.get_counts()["processed"] == 0


def test_pickled_manager_drops_results():
    import pickle

    m = tm(square, enable_success_cache=True)
    m.start([1, 2])
    clone = pickle.loads(pickle.dumps(m))
    assert clone.get_success_dict() == {} and clone.func is square


def test_shared_pool_left_open_and_retry_hook():
    from concurrent.futures import ThreadPoolExecutor

    from celestialflow import Hook

    retries = []

    class Count(Hook):
        def on_retry(self, manager, task, exc, attempt):
            retries.append((task, attempt))

    state = {}

    def flaky(x):
        state[x] = state.get(x, 0) + 1
        if state[x] < 2:
            raise ConnectionError("once")
        return x

    with ThreadPoolExecutor(2) as pool:
        a = tm(flaky, "thread", pool=pool, backoff_base=0.001, enable_success_cache=True)
        a.add_hook(Count())
        a.start([1, 2])
        b = tm(square, "thread", pool=pool, enable_success_cache=True)
        b.start([3])  # the pool is still usable
    assert a.get_success_dict() == {1: 1, 2: 2} and b.get_success_dict() == {3: 9}
    assert sorted(retries) == [(1, 1), (2, 1)]


def test_async_function_runs_on_a_loop_whatever_the_mode_and_start_async_of_plain_function():
    m = tm(async_square, "thread", enable_success_cache=True)
    m.start([1, 2])
    assert m.get_success_dict() == {1: 1, 2: 4}
    asyncio.run(m.start_async([3]))
    assert m.get_success_dict() == {3: 9}
    plain = tm(square, "thread", enable_success_cache=True)
    asyncio.run(plain.start_async([4, 5]))
    assert plain.get_success_dict() == {4: 16, 5: 25}
