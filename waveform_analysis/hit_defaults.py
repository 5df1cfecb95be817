"""Default settings of the hit finder, shared by the kernel and the ``peaks`` plugin.

A module of its own so that the plugin declares its options without
importing numba (a cached ``get_data`` never compiles or loads a kernel).
The reasons for each value are in ``processing/hits.py`` and docs/physics.md.
"""

from __future__ import annotations

THRESHOLD = 8.0  # ADC; floor under THRESHOLD_SIGMA x noise
THRESHOLD_SIGMA = 5.0
RELEASE_SIGMA = 1.0
TAIL_EXTENSION = 2.0  # in units of the hit's area / height
LEFT_EXTENSION = 2  # samples
SPLIT_SIGMA = 7.0  # a rise of this x noise within 3 samples after the extremum splits
POSITION_SIGMA = 3.0  # position: first sample within this x noise of the extremum
MERGE_GAP: int | None = None  # None: within the tail extension
RIGHT_EXTENSION: int | None = None  # None: TAIL_EXTENSION x area / height
