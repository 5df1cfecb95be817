"""Moved to :mod:`waveform_analysis.parallel`; this name is that module (so ``_limit`` too)."""

import sys

from .. import parallel

sys.modules[__name__] = parallel
