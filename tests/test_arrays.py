"""streams.arrays: the sort-based stand-ins for numpy calls that are slow on our data."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from streams.arrays import unique_sorted


@given(hnp.arrays(st.sampled_from([np.int32, np.int64, np.float64]), st.integers(0, 300),
                  elements={"min_value": -50, "max_value": 50}))
def test_unique_sorted_is_np_unique(values: np.ndarray) -> None:
    got = unique_sorted(values)
    assert got.dtype == values.dtype
    np.testing.assert_array_equal(got, np.unique(values))
