"""Typed errors of waveform_analysis; each message names the run, file or option at fault."""

from __future__ import annotations


class WaveformAnalysisError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(WaveformAnalysisError, ValueError):
    """A configuration value or option definition is wrong."""


class PluginError(WaveformAnalysisError):
    """A plugin set is inconsistent: duplicate provides, unknown dependency, cycle."""


class UnknownDataError(PluginError, KeyError):
    """No registered plugin provides the requested data name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownAdapterError(ConfigError, KeyError):
    """The configured ``daq_adapter`` is not registered."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RunNotFoundError(WaveformAnalysisError, FileNotFoundError):
    """The run folder or its RAW folder does not exist."""


class NoDataError(WaveformAnalysisError):
    """A run exists but holds no files or no records."""


class MissingFileError(WaveformAnalysisError, FileNotFoundError):
    """A file listed for a run no longer exists when it is read (deleted or moved mid-run)."""


class FormatError(WaveformAnalysisError, ValueError):
    """A digitizer file is corrupt or not in the expected layout (file and line named)."""


class CacheError(WaveformAnalysisError):
    """A cache entry cannot be read or written."""


class CacheWriteError(CacheError, OSError):
    """Writing a cache entry failed (disk full, permissions): nothing of it was kept."""


class CancelledError(WaveformAnalysisError):
    """Work stopped because its CancellationToken was cancelled."""
