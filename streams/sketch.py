"""A mergeable log-bucket quantile sketch whose bucket index comes straight from the float32 bits.

Bucket of a value x: take float32(x), read its bits as an int32, keep the sign, the 8 exponent bits
and the top `MANTISSA_BITS` mantissa bits (`bits >> SHIFT`). For x >= 0 this is a log-linear
histogram (HDR-histogram style): 64 buckets per power of two, each at most 1/64 wide relative to its
lower bound. Negative x get the mirrored index `-(index of |x|) - 1`, so that *bucket index order is
value order* over the whole line (quantiles walk buckets in index order, no sort needed). 0.0 is
bucket 0 (representative value exactly 0); -0.0 is bucket -1 (value -0.0).

Why bits rather than `log(x) / log(gamma)`: one cast and one shift per value instead of a
transcendental, ~20x cheaper on the hot path, and the index is an exact integer function of the
value (no rounding-dependent bucket edges).

Error bound. A bucket [lo, hi) is reported as r = 2*lo*hi/(lo+hi), which minimises the worst relative
error over the bucket: |r - x| / x <= (hi - lo) / (hi + lo) <= (1/64) / (2 + 1/64) = 0.775% for any
normal float32. The float32 rounding of x adds at most 2**-24 relative. So `RELATIVE_ERROR` = 0.78%
for |x| >= 1.2e-38 (smaller magnitudes share subnormal buckets: absolute error < 1.2e-38), and
|x| < 3.4e38 (larger ones land in the infinity bucket).

Serialized form: a map bucket index (int32) -> count (uint64), i.e. a ClickHouse `Map(Int32, UInt64)`.
Maps merge by adding counts per index (`sumMap` in SQL, `merge` here): merging is exact, so a
sketch over partitions, batches or windows is the same as one sketch over all their values.

Quantile convention ("lower" rank, as numpy's `method="lower"`): over n values sorted ascending
x[0] <= ... <= x[n-1], the q-quantile is x[k] with k = floor(q * (n - 1) + 1e-9) (the epsilon keeps
e.g. 0.29 * 100 from flooring to 28). The sketch returns the representative of the bucket that holds
x[k], hence a value within `RELATIVE_ERROR` of the exact x[k].
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pyarrow as pa

MANTISSA_BITS = 6
SHIFT = 23 - MANTISSA_BITS
# Index range: [-(2**14), 2**14); a (key, bucket) code uses 15 bits for the bucket.
INDEX_OFFSET = 1 << (31 - SHIFT)  # 16384: index + INDEX_OFFSET is in [0, 2**15)
INDEX_BITS = 32 - SHIFT  # 15
RELATIVE_ERROR = 2.0**-MANTISSA_BITS / (2 + 2.0**-MANTISSA_BITS) + 2.0**-24
RANK_EPSILON = 1e-9

SKETCH_TYPE = pa.map_(pa.int32(), pa.uint64())

_INF_MAGNITUDE = 0x7F800000 >> SHIFT  # magnitude index of +inf (16320)


def bucket_index(values: np.ndarray) -> np.ndarray:
    """Bucket index (int32) of every value; NaN must be filtered out by the caller."""
    values = np.asarray(values)
    fresh = values.dtype != np.float32  # then the cast below is our own copy, safe to shift in place
    bits = (values.astype(np.float32) if fresh else values).view(np.int32)
    if bits.size and bits.min() < 0:
        # Negative floats: flip the 31 magnitude bits so that int order equals float order.
        bits, fresh = bits ^ ((bits >> 31) & 0x7FFFFFFF), True
    return np.right_shift(bits, SHIFT, out=bits) if fresh else bits >> SHIFT


def bucket_value(index: np.ndarray | int) -> np.ndarray:
    """The representative value of each bucket index (float64): see the module docstring."""
    return _VALUES[np.asarray(index, dtype=np.int64) + INDEX_OFFSET]


def _bucket_values(idx: np.ndarray) -> np.ndarray:
    """Representatives computed from the float32 layout (once, for the lookup table)."""
    negative = idx < 0
    mag = np.where(negative, -idx - 1, idx)
    exponent = mag >> MANTISSA_BITS
    mantissa = (mag & ((1 << MANTISSA_BITS) - 1)).astype(np.float64)
    unit = 2.0**-MANTISSA_BITS
    # float32 layout: exponent field 0 is subnormal (no implicit leading 1, scale 2**-126).
    normal = exponent > 0
    scale = np.ldexp(1.0, np.where(normal, exponent - 127, -126).astype(np.int32))
    lo = scale * (np.where(normal, 1.0, 0.0) + mantissa * unit)
    hi = lo + scale * unit
    with np.errstate(invalid="ignore", divide="ignore"):
        rep = np.where(lo > 0, 2.0 * lo * hi / (lo + hi), 0.0)
    rep = np.where(mag >= _INF_MAGNITUDE, np.inf, rep)
    return np.where(negative, -rep, rep)


_VALUES = _bucket_values(np.arange(-INDEX_OFFSET, INDEX_OFFSET, dtype=np.int64))


def rank_index(q: float, n: np.ndarray | int) -> np.ndarray:
    """0-based rank of the q-quantile among n sorted values (the "lower" convention above)."""
    n = np.asarray(n, dtype=np.int64)
    return np.floor(q * np.maximum(n - 1, 0) + RANK_EPSILON).astype(np.int64)


def grouped_quantiles(
    offsets: np.ndarray, index: np.ndarray, counts: np.ndarray, qs: Sequence[float]
) -> np.ndarray:
    """Quantiles of many sketches at once, vectorized.

    Sketch r is `index[offsets[r]:offsets[r+1]]` (ascending, unique) with `counts` alongside.
    Returns a (rows, len(qs)) float64 array, NaN where a sketch is empty.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    rows = len(offsets) - 1
    out = np.full((rows, len(qs)), np.nan)
    if rows <= 0 or len(index) == 0:
        return out
    cum = np.cumsum(counts, dtype=np.int64)
    ends = cum[offsets[1:] - 1]
    before = np.where(offsets[:-1] > 0, cum[offsets[:-1] - 1], 0)  # total count of all earlier sketches
    filled = offsets[1:] > offsets[:-1]
    ends, before = ends[filled], before[filled]
    lo, hi = offsets[:-1][filled], offsets[1:][filled]
    for j, q in enumerate(qs):
        # The entry holding x[k] is the first whose running count exceeds `before + k`.
        pos = _first_above(cum, before + rank_index(q, ends - before), lo, hi)
        out[filled, j] = bucket_value(index[pos])
    return out


def _first_above(cum: np.ndarray, target: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Per row, the first i in [lo, hi) with cum[i] > target (one exists): a binary search run
    for all rows at once, each bounded to its own row (a few steps, not log2 of all entries)."""
    lo, hi = lo.copy(), hi - 1
    for _ in range(int(np.max(hi - lo)).bit_length()):
        mid = (lo + hi) >> 1
        above = cum[mid] > target
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid + 1)
    return lo


# ---------------------------------------------------------------- sketches as plain mappings


def sketch_of(values: Iterable[float]) -> dict[int, int]:
    """A sketch (bucket index -> count) of some values; NaNs are skipped."""
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.float64)
    arr = arr[~np.isnan(arr)]
    idx, counts = np.unique(bucket_index(arr), return_counts=True)
    return {int(i): int(c) for i, c in zip(idx, counts, strict=True)}


def merge(*sketches: Mapping[int, int] | Iterable[tuple[int, int]]) -> dict[int, int]:
    """Add counts per bucket index: exact, associative and commutative (what `sumMap` does)."""
    out: dict[int, int] = {}
    for sketch in sketches:
        for i, c in _items(sketch):
            out[int(i)] = out.get(int(i), 0) + int(c)
    return out


def quantiles(sketch: Mapping[int, int] | Iterable[tuple[int, int]], qs: Sequence[float]) -> list[float | None]:
    """Quantiles from one serialized sketch: a dict, or (index, count) pairs as a ClickHouse Map reads."""
    items = sorted((int(i), int(c)) for i, c in _items(sketch) if int(c) > 0)
    if not items:
        return [None] * len(qs)
    index = np.array([i for i, _ in items], dtype=np.int64)
    counts = np.array([c for _, c in items], dtype=np.int64)
    row = grouped_quantiles(np.array([0, len(items)]), index, counts, qs)[0]
    return [float(v) for v in row]


def count(sketch: Mapping[int, int] | Iterable[tuple[int, int]]) -> int:
    return sum(int(c) for _, c in _items(sketch))


def _items(sketch: Mapping[int, int] | Iterable[tuple[int, int]]) -> Iterable[tuple[int, int]]:
    return sketch.items() if isinstance(sketch, Mapping) else sketch


def to_arrow(offsets: np.ndarray, index: np.ndarray, counts: np.ndarray) -> pa.MapArray:
    """Many sketches (CSR layout as in `grouped_quantiles`) as one Arrow `map<int32, uint64>` column."""
    counts = np.asarray(counts)
    counts = counts.view(np.uint64) if counts.dtype == np.int64 else counts.astype(np.uint64)  # >= 0: same bits
    return pa.MapArray.from_arrays(
        pa.array(np.asarray(offsets, dtype=np.int32)),
        pa.array(np.asarray(index, dtype=np.int32)),
        pa.array(counts),
        type=SKETCH_TYPE,
    )
