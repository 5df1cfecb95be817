"""What ``Context.explain`` returns: one row per plugin of a lineage."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Explanation", "PlanRow", "explain_plan"]


@dataclass(frozen=True)
class PlanRow:
    """One plugin in the lineage of a request.

    ``status`` is ``"compute"`` (would run), ``"cached"`` (on disk),
    ``"memory"`` (already held by this Context) or ``"skip"`` (not needed:
    something downstream of it is cached).
    """

    data_name: str
    plugin: str
    version: str
    key: str
    status: str
    options: dict[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()

    @property
    def will_run(self) -> bool:
        return self.status == "compute"


@dataclass(frozen=True)
class Explanation:
    """The plan for ``get_data(run_id, data_name)``; ``rows`` in dependency order."""

    run_id: str
    data_name: str
    rows: tuple[PlanRow, ...]

    def __iter__(self) -> Iterator[PlanRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, name: str | int) -> PlanRow:
        if isinstance(name, int):
            return self.rows[name]
        for row in self.rows:
            if row.data_name == name:
                return row
        raise KeyError(name)

    @property
    def to_compute(self) -> list[str]:
        return [r.data_name for r in self.rows if r.will_run]

    def to_dicts(self) -> list[dict[str, Any]]:
        return [
            {
                "data_name": r.data_name,
                "plugin": r.plugin,
                "version": r.version,
                "key": r.key,
                "status": r.status,
                "options": dict(r.options),
                "depends_on": list(r.depends_on),
            }
            for r in self.rows
        ]

    def _repr_html_(self) -> str:
        from .html import table

        rows = [
            (r.status, r.data_name, f"{r.plugin} v{r.version}", r.key,
             ", ".join(f"{k}={v!r}" for k, v in r.options.items()) or "-")
            for r in self.rows
        ]
        n = len(self.to_compute)
        return table(
            f"get_data({self.run_id!r}, {self.data_name!r})",
            ("status", "data", "plugin", "key", "options"),
            rows,
            f"{n} plugin(s) would run, {len(self.rows) - n} not",
        )

    def __str__(self) -> str:
        head = f"get_data({self.run_id!r}, {self.data_name!r}):"
        if not self.rows:
            return head + " nothing to do"
        w_name = max(len(r.data_name) for r in self.rows)
        w_plugin = max(len(f"{r.plugin} v{r.version}") for r in self.rows)
        lines = [head]
        for r in self.rows:
            opts = ", ".join(f"{k}={v!r}" for k, v in r.options.items()) or "-"
            lines.append(
                f"  {r.status:<7}  {r.data_name:<{w_name}}  "
                f"{(r.plugin + ' v' + r.version):<{w_plugin}}  key={r.key}  {opts}"
            )
        n = len(self.to_compute)
        lines.append(f"  {n} plugin(s) would run, {len(self.rows) - n} not")
        return "\n".join(lines)


def explain_plan(context: Any, run_id: str, data_name: str, order: list[str], keys: dict) -> Explanation:
    """The :class:`Explanation` of ``get_data(run_id, data_name)`` given the lineage's order and
    keys: what is in memory or on disk, and what would be computed (only the ancestors of a
    plugin that computes are looked at)."""
    from .config import resolve_options

    status: dict[str, str] = {}

    def mark(name: str) -> None:
        if name in status:
            return
        status[name] = context._resolver.status(run_id, name, keys[name])
        if status[name] == "compute":
            for dep in context._plugins[name].depends_on:
                mark(dep)

    mark(data_name)
    rows = []
    for name in order:
        p = context._plugins[name]
        rows.append(
            PlanRow(
                data_name=name,
                plugin=type(p).__name__,
                version=p.version,
                key=keys[name],
                status=status.get(name, "skip"),
                options=resolve_options(context.config, p),
                depends_on=tuple(p.depends_on),
            )
        )
    return Explanation(run_id=run_id, data_name=data_name, rows=tuple(rows))
