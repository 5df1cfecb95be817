"""Small HTML tables for Jupyter: what ``_repr_html_`` of a Context, a plan or a batch result shows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from typing import Any


def table(title: str, header: Sequence[str], rows: Iterable[Sequence[Any]], note: str = "") -> str:
    """An HTML table with a bold title line above it and an optional note below."""
    head = "".join(f"<th style='text-align:left'>{escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td style='text-align:left'>{escape(str(c))}</td>" for c in row) + "</tr>"
        for row in rows
    )
    foot = f"<div><small>{escape(note)}</small></div>" if note else ""
    return f"<div><b>{escape(title)}</b><table><tr>{head}</tr>{body}</table>{foot}</div>"


class BatchResult(dict):
    """The dict a batch returns (``results``, ``errors``, ``meta``, ``ordered_run_ids``),
    shown in Jupyter as a table of runs with their status, time and error."""

    def _repr_html_(self) -> str:
        meta, errors = self.get("meta", {}), self.get("errors", {})
        rows = []
        for run in self.get("ordered_run_ids", list(meta)):
            m = meta.get(run, {})
            err = errors.get(run)
            reason = f"{err.get('type', '')}: {err.get('message', '')}"[:160] if err else ""
            rows.append((run, m.get("status", ""), f"{m.get('elapsed', 0.0):.2f} s", m.get("attempts", 0), reason))
        ok = sum(1 for r in rows if r[1] == "success")
        return table(f"batch: {ok} of {len(rows)} runs succeeded", ("run", "status", "time", "attempts", "error"), rows)
