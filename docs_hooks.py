"""MkDocs hook: fill ``<!-- fields: NAME -->`` markers with the fields table of a standard layout.

The tables come from ``waveform_analysis.dtypes`` (through ``Context.data_info``),
so the documented units are the ones in the field titles and cannot drift.
"""

from __future__ import annotations

import re
import tempfile
from typing import Any

_MARKER = re.compile(r"^<!-- fields: (\w+) -->$", re.M)


def fields_table(data_name: str) -> str:
    """The fields of one standard data type as a Markdown table."""
    from waveform_analysis import Context, standard_plugins

    with tempfile.TemporaryDirectory() as tmp:  # nothing is read or computed; data_info reads the layout
        ctx = Context(storage_dir=f"{tmp}/cache", config={"data_root": f"{tmp}/DAQ"})
        ctx.register(standard_plugins())
        info = ctx.data_info(data_name)
    rows = ["| field | type | unit | meaning |", "|---|---|---|---|"]
    for r in info:
        help_text = r["help"].replace("|", "\\|")
        rows.append(f"| `{r['field']}` | {r['type']} | {r['unit'] or '–'} | {help_text} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Replace each fields marker of a page with its table."""
    return _MARKER.sub(lambda m: fields_table(m.group(1)), markdown)
