"""The analysis layer: selections, many runs as one array, export to other tools' files."""

from __future__ import annotations

from .selection import Selection, apply_selection, parse_selection, selection_mask

__all__ = ["Selection", "apply_selection", "parse_selection", "selection_mask"]
