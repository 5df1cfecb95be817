"""numba kernel of the staging: records put in time order where they lie (imported on first use)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def permute_rows(rows, order):
    """Reorder the rows of ``rows`` (2-D uint8, one record per row) in place so that row ``i``
    becomes the row ``order[i]`` was: cycle by cycle through one spare row, so no second
    copy of the run is made. Returns each old row's new position."""
    n = order.size
    where = np.empty(n, np.int64)
    for i in range(n):
        where[order[i]] = i
    done = np.zeros(n, np.bool_)
    spare = np.empty(rows.shape[1], np.uint8)
    for i in range(n):
        if done[i] or order[i] == i:
            done[i] = True
            continue
        spare[:] = rows[i]
        j = i
        while True:
            done[j] = True
            k = order[j]
            if k == i:
                rows[j] = spare
                break
            rows[j] = rows[k]
            j = k
    return where
