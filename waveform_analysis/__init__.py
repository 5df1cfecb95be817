"""waveform_analysis: digitizer waveforms to peaks over many runs."""

from __future__ import annotations

from .batch import BatchProcessor
from .core.cancellation import CancellationToken
from .core.context import Context
from .core.plugin import Option, Plugin
from .plugins import standard_plugins

__all__ = ["BatchProcessor", "CancellationToken", "Context", "Option", "Plugin", "standard_plugins"]
