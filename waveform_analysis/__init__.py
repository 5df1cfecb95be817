"""waveform_analysis: digitizer waveforms to peaks over many runs."""

from __future__ import annotations

from .core.cancellation import CancellationToken
from .core.context import Context
from .core.plugin import Option, Plugin
from .plugins import standard_plugins

# BatchProcessor is exported here once core.data.batch_processor exists.

__all__ = ["CancellationToken", "Context", "Option", "Plugin", "standard_plugins"]
