"""Moved: the hit finder's defaults are :data:`waveform_analysis.processing.hits.HIT_DEFAULTS`.

The old upper-case names stay readable here for code that imported them.
"""

from .processing.hits import HIT_DEFAULTS as _D

THRESHOLD = _D.threshold
THRESHOLD_SIGMA = _D.threshold_sigma
RELEASE_SIGMA = _D.release_sigma
TAIL_EXTENSION = _D.tail_extension
LEFT_EXTENSION = _D.left_extension
SPLIT_SIGMA = _D.split_sigma
POSITION_SIGMA = _D.position_sigma
MERGE_GAP = _D.merge_gap
RIGHT_EXTENSION = _D.right_extension
