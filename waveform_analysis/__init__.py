"""waveform_analysis: digitizer waveforms to peaks over many runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .core.cancellation import CancellationToken
from .core.context import Context
from .core.plugin import Option, Plugin
from .plugins import standard_plugins

if TYPE_CHECKING:
    from .batch import BatchProcessor

__all__ = ["BatchProcessor", "CancellationToken", "Context", "Option", "Plugin", "standard_plugins"]


def __getattr__(name: str) -> Any:
    """``BatchProcessor`` on first use: the batch machinery (the workflow engine under it)
    costs a new process ~0.2 s of imports that a single run's ``get_data`` does not need."""
    if name == "BatchProcessor":
        from .batch import BatchProcessor

        return BatchProcessor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
