"""Re-export of :mod:`waveform_analysis.batch.drawing` (the chain a batch runs, and writing a drawing)."""

from ...batch.drawing import batch_chain, write_drawing

__all__ = ["batch_chain", "write_drawing"]
