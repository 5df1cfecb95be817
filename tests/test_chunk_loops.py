"""The chunk loop and the duplicate check against their one-task-at-a-time definitions.

Both have a fast path that runs in C (``map`` into ``list.extend``; set operations);
these properties hold them to the plain loop on any mix of failures, repeats and
unhashable tasks."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from celestialflow.backends.chunk import run_fused
from celestialflow.tasks import admit, make_hashable


def _call(task):
    if isinstance(task, int) and task % 7 == 3:
        raise ValueError(f"bad {task}")
    return task * 2 if isinstance(task, int) else task


def _reference(tasks):
    results, errors = [], {}
    for i, task in enumerate(tasks):
        try:
            results.append(_call(task))
        except Exception as exc:  # noqa: BLE001
            errors[i] = exc
            results.append(None)
    return results, errors


@given(st.lists(st.integers(-50, 50), max_size=60))
def test_run_fused_matches_the_plain_loop(tasks):
    results, errors, ran, _, stop = run_fused(_call, tasks)
    want, want_errors = _reference(tasks)
    assert (results, ran, stop) == (want, len(tasks), None)
    assert {i: str(e) for i, e in errors.items()} == {i: str(e) for i, e in want_errors.items()}


@pytest.mark.parametrize("cancel", [None, threading.Event()])
def test_run_fused_stops_at_an_interrupt_keeping_what_ran(cancel):
    def call(task):
        if task == 3:
            raise KeyboardInterrupt
        if task == 1:
            raise ValueError("one")
        return task

    results, errors, ran, _, stop = run_fused(call, [0, 1, 2, 3, 4], cancel)
    assert results == [0, None, 2] and ran == 3 and list(errors) == [1]
    assert isinstance(stop, KeyboardInterrupt)


_task = st.one_of(
    st.integers(-5, 5), st.booleans(), st.text(max_size=1), st.lists(st.integers(0, 2), max_size=2)
)


@given(st.lists(_task, max_size=30), st.lists(st.integers(-5, 5), max_size=5))
def test_admit_matches_the_one_by_one_check(batch, already):
    seen, ref_seen = set(already), set(already)
    ref_fresh, ref_dup = [], 0
    for task in batch:
        try:
            key = task if not isinstance(task, list) else make_hashable(task)
        except TypeError:  # pragma: no cover - lists of ints are hashable once converted
            continue
        if key in ref_seen:
            ref_dup += 1
            continue
        ref_seen.add(key)
        ref_fresh.append(task)
    fresh, dup, unhashable = admit(list(batch), seen)
    assert (fresh, dup, unhashable, seen) == (ref_fresh, ref_dup, [], ref_seen)
