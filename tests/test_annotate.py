"""errors.annotate: the one way an exception keeps its traceback text and its context."""

import pickle

from celestialflow.errors import annotate, traceback_text


def _inner():
    raise ValueError("bad value")


def _outer():
    try:
        _inner()
    except ValueError as exc:
        annotate(exc, "raised in inner", wa_plugin="inner")
        raise


def test_innermost_facts_and_note_win_and_traceback_grows():
    try:
        try:
            _outer()
        except ValueError as exc:
            annotate(exc, "raised in outer", wa_plugin="outer")
            raise
    except ValueError as exc:
        err = exc
    assert err.wa_plugin == "inner"
    assert err.__notes__ == ["raised in inner"]
    text = traceback_text(err)
    assert "_inner" in text and "test_innermost_facts_and_note_win_and_traceback_grows" in text


def test_traceback_text_survives_pickling():
    try:
        _outer()
    except ValueError as exc:
        err = pickle.loads(pickle.dumps(exc))
    err.__traceback__ = None  # plain pickling drops it (tblib, once distributed is imported, keeps it)
    assert "_inner" in traceback_text(err) and err.wa_plugin == "inner"
    assert traceback_text(err, 10) == traceback_text(err)[-10:]


def test_traceback_text_of_a_plain_exception():
    assert traceback_text(KeyError("k")).strip() == "KeyError: 'k'"
