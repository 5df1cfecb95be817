"""Selections: which rows of a structured array to keep, from a parsed string or a function.

A selection string such as ``"energy_calibrated > 100 & psd > 0.2"`` comes from
config files and command lines, so it is tokenized and parsed here by a small
recursive-descent parser and evaluated as numpy operations on the array's fields;
it never reaches ``eval``. The grammar, loosest binding first::

    expr       := term ('|' term)*
    term       := factor ('&' factor)*
    factor     := '~' factor | '(' expr ')' | comparison | boolean field
    comparison := operand ('<' | '<=' | '>' | '>=' | '==' | '!=') operand
    operand    := field name | number (optionally signed, 1e3 allowed)

Comparisons bind tighter than ``&``, ``|`` and ``~`` (unlike in numpy expressions),
so ``a > 1 & b < 2`` means what it says. A selection may also be a callable
``f(array) -> bool mask``; ``time_range=(t0, t1)`` keeps ``t0 <= time < t1`` (ns, as
the ``time`` field counts) and ``seconds_range=(a, b)`` the same in seconds since the
run's start, ``run_start_ns`` (``time`` counts from the Unix epoch when the run's start
is known: ``ctx.run_info(run)["time_offset_ns"]``; the many-runs functions pass it).
"""

from __future__ import annotations

import difflib
import numbers
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from ..errors import ConfigError

__all__ = ["Selection", "parse_selection", "selection_mask", "apply_selection"]

#: What the analysis functions accept as ``selection``.
Selection = Union[str, Callable[[np.ndarray], Any], None]  # noqa: UP007 - a runtime alias

_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z_0-9]*)"
    r"|(?P<op><=|>=|==|!=|<|>)"
    r"|(?P<punct>[&|~()+-])"
    r")"
)
_COMPARE = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


@dataclass(frozen=True)
class _Token:
    kind: str  # number, name, op, punct, end
    text: str
    pos: int


@dataclass(frozen=True)
class _Field:
    name: str


@dataclass(frozen=True)
class _Number:
    value: float


@dataclass(frozen=True)
class _Compare:
    op: str
    left: _Field | _Number
    right: _Field | _Number


@dataclass(frozen=True)
class _Not:
    arg: Any


@dataclass(frozen=True)
class _Binary:
    op: str  # "&" or "|"
    left: Any
    right: Any


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].isspace():
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            start = pos + len(text[pos:]) - len(text[pos:].lstrip())
            raise ConfigError(
                f"selection {text!r}: unexpected character {text[start]!r} at position {start}"
            )
        kind = m.lastgroup or ""
        out.append(_Token(kind, m.group(kind), m.start(kind)))
        pos = m.end()
    out.append(_Token("end", "", len(text)))
    return out


class _Parser:
    def __init__(self, text: str, dtype: np.dtype) -> None:
        self.text = text
        self.dtype = dtype
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def fail(self, tok: _Token, expected: str) -> ConfigError:
        what = "the end" if tok.kind == "end" else f"{tok.text!r}"
        return ConfigError(
            f"selection {self.text!r}: expected {expected} at position {tok.pos}, found {what}"
        )

    def parse(self) -> Any:
        if self.peek().kind == "end":
            raise ConfigError(f"selection {self.text!r} is empty")
        node = self.expr()
        if self.peek().kind != "end":
            raise self.fail(self.peek(), "'&', '|' or the end")
        return node

    def expr(self) -> Any:
        node = self.term()
        while self.peek().text == "|" and self.peek().kind == "punct":
            self.take()
            node = _Binary("|", node, self.term())
        return node

    def term(self) -> Any:
        node = self.factor()
        while self.peek().text == "&" and self.peek().kind == "punct":
            self.take()
            node = _Binary("&", node, self.factor())
        return node

    def factor(self) -> Any:
        tok = self.peek()
        if tok.kind == "punct" and tok.text == "~":
            self.take()
            return _Not(self.factor())
        if tok.kind == "punct" and tok.text == "(":
            self.take()
            node = self.expr()
            if self.peek().text != ")":
                raise self.fail(self.peek(), "')'")
            self.take()
            return node
        left = self.operand()
        if self.peek().kind != "op":
            if isinstance(left, _Field) and self.dtype[left.name].kind == "b":
                return left  # a boolean field on its own: "saturated", "~pileup"
            raise self.fail(self.peek(), "a comparison (<, <=, >, >=, ==, !=)")
        op = self.take().text
        right = self.operand()
        if isinstance(left, _Number) and isinstance(right, _Number):
            raise ConfigError(f"selection {self.text!r}: {op!r} compares two numbers, not a field")
        return _Compare(op, left, right)

    def operand(self) -> _Field | _Number:
        tok = self.take()
        sign = 1.0
        if tok.kind == "punct" and tok.text in "+-":
            sign = -1.0 if tok.text == "-" else 1.0
            tok = self.take()
            if tok.kind != "number":
                raise self.fail(tok, "a number after the sign")
        if tok.kind == "number":
            return _Number(sign * float(tok.text))
        if tok.kind == "name":
            return _Field(self.field(tok))
        raise self.fail(tok, "a field name or a number")

    def field(self, tok: _Token) -> str:
        names = self.dtype.names or ()
        if tok.text not in names:
            close = difflib.get_close_matches(tok.text, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"selection {self.text!r}: no field {tok.text!r} at position {tok.pos}{hint} "
                f"(fields: {', '.join(names)})"
            )
        if self.dtype[tok.text].shape:
            raise ConfigError(
                f"selection {self.text!r}: field {tok.text!r} holds {self.dtype[tok.text].shape} "
                "values per row; a selection compares fields with one value per row"
            )
        return tok.text


def parse_selection(text: str, dtype: np.dtype) -> Any:
    """The parse tree of ``text`` over the fields of ``dtype`` (ConfigError naming what is wrong)."""
    if not isinstance(text, str):
        raise ConfigError(f"a selection string must be a str, got {type(text).__name__}")
    if not dtype.names:
        raise ConfigError(f"selection {text!r}: the data has no named fields to select on")
    return _Parser(text, dtype).parse()


def _evaluate(node: Any, data: np.ndarray) -> Any:
    if isinstance(node, _Field):
        return data[node.name]
    if isinstance(node, _Number):
        return node.value
    if isinstance(node, _Compare):
        return _COMPARE[node.op](_evaluate(node.left, data), _evaluate(node.right, data))
    if isinstance(node, _Not):
        return ~np.asarray(_evaluate(node.arg, data), bool)
    left = np.asarray(_evaluate(node.left, data), bool)
    right = np.asarray(_evaluate(node.right, data), bool)
    return left & right if node.op == "&" else left | right


def selection_mask(
    data: np.ndarray,
    selection: Selection = None,
    *,
    time_range: tuple[float, float] | None = None,
    seconds_range: tuple[float, float] | None = None,
    run_start_ns: int = 0,
) -> np.ndarray:
    """A bool array, one entry per row of ``data``: the rows the selection and ranges keep.

    Example: ``selection_mask(peaks, "area > 100 & channel == 0", seconds_range=(0, 5))``.
    """
    n = len(data)
    mask = np.ones(n, bool)
    if selection is not None:
        if callable(selection):
            got = np.asarray(selection(data))
            if got.dtype != np.bool_ or got.shape != (n,):
                raise ConfigError(
                    f"a selection function must return a bool array of shape ({n},), got "
                    f"dtype {got.dtype} and shape {got.shape}"
                )
            mask &= got
        else:
            mask &= np.broadcast_to(
                np.asarray(_evaluate(parse_selection(selection, data.dtype), data), bool), (n,)
            )
    ranges = ((time_range, 1, 0, "time_range"), (seconds_range, 10**9, int(run_start_ns), "seconds_range"))
    for rng, scale, zero, name in ranges:
        if rng is None:
            continue
        if not data.dtype.names or "time" not in data.dtype.names:
            raise ConfigError(f"{name} needs a 'time' field; the data has {data.dtype.names}")
        try:
            # whole numbers stay ints: epoch ns do not fit a float64 exactly
            lo, hi = (int(v) if isinstance(v, numbers.Integral) else float(v) for v in rng)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be two numbers (start, stop), got {rng!r}") from None
        t = data["time"] - zero if zero else data["time"]
        mask &= (t >= lo * scale) & (t < hi * scale)
    return mask


def apply_selection(
    data: np.ndarray,
    selection: Selection = None,
    *,
    time_range: tuple[float, float] | None = None,
    seconds_range: tuple[float, float] | None = None,
    run_start_ns: int = 0,
) -> np.ndarray:
    """The rows of ``data`` that :func:`selection_mask` keeps (``data`` itself when nothing is asked)."""
    if selection is None and time_range is None and seconds_range is None:
        return data
    return data[selection_mask(data, selection, time_range=time_range, seconds_range=seconds_range,
                               run_start_ns=run_start_ns)]
