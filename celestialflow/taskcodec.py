"""A type-tagged JSON encoding of tasks, for the failure file: values come back as they were.

Plain JSON loses what tasks usually are: tuples become lists, int dict keys
strings, sets and bytes cannot be written at all, and NaN becomes a bare
``NaN`` that strict JSON readers refuse. Here each value maps to strict JSON:

* ``None``, ``bool``, ``str``, ``int`` (within +-2**53) and finite ``float``
  are themselves; a ``list`` is a JSON array of encoded items; a ``dict``
  whose keys are all ``str`` not starting with ``$`` is a JSON object;
* everything else is a one-key object whose key is a tag: ``{"$tuple": [...]}``,
  ``{"$set": [...]}``, ``{"$frozenset": [...]}``, ``{"$bytes": "<base64>"}``,
  ``{"$int": "<digits>"}`` (big ints; hex ``0x...`` for huge ones), ``{"$float": "nan" | "inf" | "-inf"}``,
  ``{"$dict": [[key, value], ...]}`` (any hashable keys).

Only exact built-in types are stored (a subclass such as a namedtuple or an
``OrderedDict`` would come back as its base type); anything else raises
:class:`TaskEncodingError` saying why. Decoding builds values from these tags
only: nothing is unpickled or evaluated.

    >>> decode(json.loads(json.dumps(encode({(1, 2): {b"x", 3}}))))
    {(1, 2): {b'x', 3}}
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

from .errors import TaskEncodingError

__all__ = ["ENCODING", "TaskEncodingError", "decode", "encode"]

#: Name of this encoding, stored with each failure record.
ENCODING = "cf-tagged-1"

# ints beyond this are stored as digit strings: other JSON readers hold numbers as doubles
_SAFE_INT = 2**53
_DECIMAL_BITS = 10_000
_TAGS = ("$tuple", "$set", "$frozenset", "$bytes", "$int", "$float", "$dict")



def encode(value: Any) -> Any:
    """``value`` as JSON-ready data (dicts, lists, str, numbers, None) that :func:`decode` reverses.

    Raises :class:`TaskEncodingError` for types outside the supported set and for
    containers that contain themselves.
    """
    try:
        return _encode(value, set(), "task")
    except RecursionError:
        raise TaskEncodingError("task is nested too deeply to store") from None


def decode(data: Any) -> Any:
    """The value :func:`encode` turned into ``data``; raises ``ValueError`` on a malformed tag."""
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is list:
        return [decode(x) for x in data]
    if type(data) is not dict:
        raise ValueError(f"not encoded task data: {type(data).__name__}")
    if len(data) == 1:
        (key, body), = data.items()
        if key.startswith("$"):
            return _decode_tagged(key, body)
    return {k: decode(v) for k, v in data.items()}


def _encode(value: Any, active: set[int], where: str) -> Any:
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        if -_SAFE_INT <= value <= _SAFE_INT:
            return value
        # hex has no digit limit (str(int) refuses beyond 4300 digits by default)
        return {"$int": str(value) if value.bit_length() < _DECIMAL_BITS else hex(value)}
    if t is float:
        if math.isfinite(value):
            return value
        return {"$float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if t is bytes:
        return {"$bytes": base64.b64encode(value).decode("ascii")}
    if t not in (list, tuple, set, frozenset, dict):
        raise TaskEncodingError(
            f"{where} is a {t.__module__}.{t.__qualname__}, which the failure file does not store "
            "(it stores None, bool, int, float, str, bytes, tuple, list, dict, set and frozenset)"
        )
    if id(value) in active:
        raise TaskEncodingError(f"{where} contains itself")
    active.add(id(value))
    try:
        if t is list:
            return [_encode(x, active, f"{where}[{i}]") for i, x in enumerate(value)]
        if t is tuple:
            return {"$tuple": [_encode(x, active, f"{where}[{i}]") for i, x in enumerate(value)]}
        if t is dict:
            if all(type(k) is str and not k.startswith("$") for k in value):
                return {k: _encode(v, active, f"{where}[{_label(k)}]") for k, v in value.items()}
            return {
                "$dict": [
                    [_encode(k, active, f"a key of {where}"), _encode(v, active, f"{where}[{_label(k)}]")]
                    for k, v in value.items()
                ]
            }
        items = [_encode(x, active, f"an item of {where}") for x in value]
        items.sort(key=_sort_key)  # a set's order is arbitrary: write it the same way each time
        return {"$set" if t is set else "$frozenset": items}
    finally:
        active.discard(id(value))


def _label(key: Any) -> str:
    try:
        text = repr(key)
    except Exception:  # noqa: BLE001 - only used to say where a value sits
        return f"<{type(key).__name__}>"
    return text if len(text) <= 40 else text[:37] + "..."


def _sort_key(item: Any) -> str:
    return json.dumps(item, sort_keys=True)


def _decode_tagged(tag: str, body: Any) -> Any:
    try:
        if tag == "$tuple":
            return tuple(decode(x) for x in _array(tag, body))
        if tag == "$set":
            return {decode(x) for x in _array(tag, body)}
        if tag == "$frozenset":
            return frozenset(decode(x) for x in _array(tag, body))
        if tag == "$dict":
            out = {}
            for pair in _array(tag, body):
                if type(pair) is not list or len(pair) != 2:
                    raise ValueError(f"$dict items must be [key, value] pairs, got {pair!r:.60}")
                out[decode(pair[0])] = decode(pair[1])
            return out
        if tag == "$bytes":
            return base64.b64decode(_string(tag, body), validate=True)
        if tag == "$int":
            return int(_string(tag, body), 0)
        if tag == "$float":
            text = _string(tag, body)
            if text not in ("nan", "inf", "-inf"):
                raise ValueError(f"$float holds 'nan', 'inf' or '-inf', got {text!r:.40}")
            return float(text)
    except TypeError as exc:  # an unhashable item where a key or set member belongs
        raise ValueError(f"malformed {tag}: {exc}") from None
    raise ValueError(f"unknown tag {tag!r}; known: {', '.join(_TAGS)}")


def _array(tag: str, body: Any) -> list[Any]:
    if type(body) is not list:
        raise ValueError(f"{tag} holds a JSON array, got {type(body).__name__}")
    return body


def _string(tag: str, body: Any) -> str:
    if type(body) is not str:
        raise ValueError(f"{tag} holds a string, got {type(body).__name__}")
    return body
