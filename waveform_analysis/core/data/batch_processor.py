"""The seed's import path of :class:`BatchProcessor`; the batch lives in :mod:`waveform_analysis.batch`."""

from ...batch import BatchProcessor, RunCancelled, RunSkipped

__all__ = ["BatchProcessor", "RunCancelled", "RunSkipped"]
