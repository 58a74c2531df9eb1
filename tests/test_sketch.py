"""The log-bucket sketch: error bound, zero bucket, exact merges, Arrow/ClickHouse map round trip."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from streams import sketch as sk

magnitudes = st.one_of(st.just(0.0), st.floats(1.2e-38, 3e38), st.floats(-3e38, -1.2e-38))
value_lists = st.lists(magnitudes, min_size=1, max_size=300)
qs = st.floats(0, 1)


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1) + sk.RANK_EPSILON)]


def close(got: float, want: float) -> bool:
    return abs(got - want) <= sk.RELATIVE_ERROR * abs(want)


@settings(max_examples=200, deadline=None)
@given(value_lists, st.lists(qs, min_size=1, max_size=5))
def test_quantiles_within_the_stated_relative_error(values, q_list) -> None:
    got = sk.quantiles(sk.sketch_of(values), q_list)
    for q, g in zip(q_list, got, strict=True):
        assert g is not None and close(g, exact(values, q)), (q, g, exact(values, q))


def test_relative_error_is_at_most_one_percent() -> None:
    assert sk.RELATIVE_ERROR < 0.0078 < 0.01


@settings(max_examples=100, deadline=None)
@given(st.lists(magnitudes, min_size=2, max_size=200))
def test_bucket_order_is_value_order(values) -> None:
    ordered = np.sort(np.array(values))
    assert np.all(np.diff(sk.bucket_index(ordered)) >= 0)
    reps = sk.bucket_value(sk.bucket_index(ordered))
    assert np.all(np.abs(reps - ordered) <= sk.RELATIVE_ERROR * np.abs(ordered))


def test_zero_has_its_own_exact_bucket() -> None:
    assert sk.sketch_of([0.0, 0.0, 0.0]) == {0: 3}
    assert sk.quantiles({0: 3}, [0.5, 0.99]) == [0.0, 0.0]
    s = sk.sketch_of([0.0, 1e-9, 5.0])
    assert len(s) == 3 and sk.quantiles(s, [0.0])[0] == 0.0


def test_nan_is_skipped_and_empty_sketch_has_no_quantiles() -> None:
    assert sk.sketch_of([math.nan, 2.0]) == sk.sketch_of([2.0])
    assert sk.quantiles({}, [0.5]) == [None]
    assert sk.count({}) == 0


@settings(max_examples=150, deadline=None)
@given(value_lists, value_lists, value_lists)
def test_merge_is_exact_associative_and_commutative(a, b, c) -> None:
    whole = sk.sketch_of(a + b + c)
    assert sk.merge(sk.sketch_of(a), sk.sketch_of(b), sk.sketch_of(c)) == whole
    assert sk.merge(sk.merge(sk.sketch_of(c), sk.sketch_of(a)), sk.sketch_of(b)) == whole
    assert sk.count(whole) == len(a) + len(b) + len(c)


@settings(max_examples=100, deadline=None)
@given(st.lists(value_lists, min_size=1, max_size=6), st.lists(qs, min_size=1, max_size=4))
def test_arrow_map_round_trip_and_grouped_quantiles(groups, q_list) -> None:
    sketches = [sk.sketch_of(g) for g in groups]
    offsets = np.cumsum([0] + [len(s) for s in sketches])
    index = np.array([i for s in sketches for i in sorted(s)], dtype=np.int64)
    counts = np.array([s[i] for s in sketches for i in sorted(s)], dtype=np.int64)
    column = sk.to_arrow(offsets, index, counts)
    assert column.type == pa.map_(pa.int32(), pa.uint64())
    # A ClickHouse Map(Int32, UInt64) reads back as (key, value) pairs, like Arrow's to_pylist.
    pairs = column.to_pylist()
    assert [dict(p) for p in pairs] == sketches
    grouped = sk.grouped_quantiles(offsets, index, counts, q_list)
    for row, p in zip(grouped, pairs, strict=True):
        assert row.tolist() == sk.quantiles(p, q_list)
    # sumMap over the rows is the sketch of all values together.
    assert sk.merge(*pairs) == sk.sketch_of([v for g in groups for v in g])


def test_bucket_indices_fit_the_map_key_type() -> None:
    extremes = np.array([-3.4e38, -1.0, -0.0, 0.0, 1e-38, 1.0, 3.4e38, np.inf, -np.inf])
    idx = sk.bucket_index(extremes)
    assert idx.dtype == np.int32
    assert idx.min() >= -sk.INDEX_OFFSET and idx.max() < sk.INDEX_OFFSET
    assert sk.bucket_value(idx[-2]) == np.inf and sk.bucket_value(idx[-1]) == -np.inf
