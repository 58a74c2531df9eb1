"""Small numpy helpers shared by the stream stages."""

from __future__ import annotations

import numpy as np


def unique_sorted(values: np.ndarray) -> np.ndarray:
    """The distinct values, ascending: what `np.unique(values)` returns for numbers without NaN, by one sort.

    Why not `np.unique`: numpy 2.4 finds distinct values of a plain call with a hash table, which
    is ~80x slower than sorting when most values are distinct (1M distinct int64: 1.3 s against
    16 ms here). A checkpoint of the outage tracker spent 150 ms per partition in it, with the
    event loop blocked.
    """
    values = np.sort(np.ravel(values))
    if len(values) < 2:
        return values
    keep = np.empty(len(values), dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]
