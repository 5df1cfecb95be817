"""The documented path of :mod:`waveform_analysis.processing.saturation` (moved there)."""

from .processing.saturation import *  # noqa: F403
from .processing.saturation import __all__  # noqa: F401
