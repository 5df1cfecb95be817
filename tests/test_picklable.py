"""The one picklability check: its error names what is sent, the part that fails, and why."""

import threading

import pytest

from celestialflow import NotPicklableError
from celestialflow.tasks import check_picklable


class Holder:
    def __init__(self) -> None:
        self.ok = 1
        self.lock = threading.Lock()


def test_names_the_closure_variable_that_does_not_pickle():
    lock = threading.Lock()

    def nested(x):
        with lock:
            return x

    with pytest.raises(NotPicklableError, match="cannot be pickled") as info:
        check_picklable(nested, "func 'nested'", "define it at module level")
    msg = str(info.value)
    assert msg.startswith("func 'nested' cannot be pickled")
    assert "define it at module level" in msg
    assert isinstance(info.value, TypeError)  # the seed's callers catch TypeError


def test_names_the_attribute_that_does_not_pickle():
    with pytest.raises(NotPicklableError) as info:
        check_picklable(Holder(), "the holder")
    assert "attribute 'lock'" in str(info.value) and "TypeError" in str(info.value)


def test_picklable_passes():
    check_picklable(Holder.__init__, "a function")
    check_picklable({"a": [1, 2]}, "a dict")
