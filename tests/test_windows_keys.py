"""Key tables: stable dense codes for single and composite string keys, assigned in first-seen order."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.keys import KeyTable


def test_single_column_codes_are_stable_and_decode_back() -> None:
    keys = KeyTable(["node_id"])
    first = keys.encode_table(pa.table({"node_id": ["b", "a", "b", None]}))
    assert first.tolist() == [0, 1, 0, 2] and len(keys) == 3  # null is the empty key
    second = keys.encode_table(pa.table({"node_id": pa.chunked_array([["a"], ["c", "b"]])}))
    assert second.tolist() == [1, 3, 0]
    assert keys.decode(np.array([3, 0]))[0].to_pylist() == ["c", "b"]
    assert keys.labels(np.array([1])).to_pylist() == ["a"]


def test_composite_keys() -> None:
    keys = KeyTable(["agency_code", "channel", "level"])
    table = pa.table({"agency_code": ["A", "A", "B", "A"], "channel": ["x", "y", "x", "x"],
                      "level": ["p", "p", "c", "p"]})
    assert keys.encode_table(table).tolist() == [0, 1, 2, 0]
    assert keys.encode(["B", "A"], ["y", "y"], ["c", "p"]).tolist() == [3, 1]
    assert [a.to_pylist() for a in keys.decode(np.array([3, 2]))] == [["B", "B"], ["y", "x"], ["c", "c"]]
    assert keys.labels(np.array([1])).to_pylist() == ["A|y|p"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.sampled_from("xy")), max_size=40),
       st.lists(st.integers(0, 40), max_size=4))
def test_codes_do_not_depend_on_batching(rows, cuts) -> None:
    def encode(bounds: list[int]) -> list[int]:
        keys = KeyTable(["a", "b"])
        out: list[int] = []
        for lo, hi in itertools.pairwise(bounds):
            part = rows[lo:hi]
            out += keys.encode([r[0] for r in part], [r[1] for r in part]).tolist()
        return out

    whole = encode([0, len(rows)])
    split = encode([0, *sorted(c for c in cuts if c <= len(rows)), len(rows)])
    assert whole == split
    firsts = list(dict.fromkeys(rows))
    assert whole == [firsts.index(r) for r in rows]
