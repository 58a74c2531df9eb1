"""streams.arrays: the sort-based stand-ins for numpy calls that are slow on our data, string hashes and the
hash filter of the duplicate check."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from simulators.frame import hex_ids
from streams.arrays import HashFilter, string_hashes, unique_sorted


@given(hnp.arrays(st.sampled_from([np.int32, np.int64, np.float64]), st.integers(0, 300),
                  elements={"min_value": -50, "max_value": 50}))
def test_unique_sorted_is_np_unique(values: np.ndarray) -> None:
    got = unique_sorted(values)
    assert got.dtype == values.dtype
    np.testing.assert_array_equal(got, np.unique(values))


# ---------------------------------------------------------------- string hashes and the hash filter

id_lists = st.lists(st.text(max_size=30), max_size=80)


@given(id_lists, st.integers(0, 10), st.integers(0, 10))
def test_string_hashes_depend_on_content_only(strings: list[str], lo: int, cut: int) -> None:
    """Equal strings hash equal wherever they sit: in a slice, after other strings, as large_string."""
    array = pa.array(strings, pa.string())
    hashes = string_hashes(array)
    by_value: dict[str, int] = {}
    for s, h in zip(strings, hashes.tolist(), strict=True):
        assert by_value.setdefault(s, h) == h
    part = array.slice(min(lo, len(strings)), cut)
    np.testing.assert_array_equal(string_hashes(part), hashes[min(lo, len(strings)):][:cut])
    np.testing.assert_array_equal(string_hashes(array.cast(pa.large_string())), hashes)


def test_string_hashes_tell_apart_near_misses() -> None:
    """Lengths, trailing zero bytes, the byte after an 8-byte word, one id per number."""
    near = ["", "\x00", "\x00\x00", "a", "a\x00", "abcdefgh", "abcdefgh\x00", "abcdefghi", "x" * 100, "x" * 101]
    assert len(set(string_hashes(pa.array(near)).tolist())) == len(near)
    ids = hex_ids("sc-", np.arange(200_000), 10)
    assert len(np.unique(string_hashes(ids))) == 200_000


@given(st.lists(st.integers(0, 2**64 - 1), max_size=300), st.lists(st.integers(0, 2**64 - 1), max_size=50))
def test_hash_filter_has_no_false_negatives(added: list[int], more: list[int]) -> None:
    f = HashFilter.sized(len(added) // 4)  # undersized on purpose: many hashes share a word
    f.add(np.array(added, dtype=np.uint64))
    f.add(np.array(more, dtype=np.uint64))
    assert f.may_contain(np.array(added + more, dtype=np.uint64)).all()
    assert f.count == len(added) + len(more)
