"""Key tables: string keys (one or several columns) -> dense int codes 0..n-1, and back.

Window state is indexed by key code, so codes are assigned once and never change or get reused
(the table grows with the number of distinct keys ever seen, which is bounded by the reference
data: centers, agencies x channels x levels, nodes). Encoding a batch touches Python only once per
*distinct* value in the batch: Arrow dictionary-encodes the column, the dictionary's few values are
looked up in a dict, and a numpy gather maps every row.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Composite keys pack one per-column code per bit field into an int64.
_PACK_BITS = 21


class _Column:
    """One string column's value -> code dictionary."""

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.values: list[str] = []
        self._arrow: pa.Array | None = None

    def encode(self, column: pa.Array | pa.ChunkedArray) -> np.ndarray:
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
            column = pc.cast(column, pa.string())
        encoded = pc.fill_null(column, "").dictionary_encode()
        dictionary = encoded.dictionary
        # Known values are looked up in C++ (a hash of the known values); only new ones touch Python.
        lut = np.full(len(dictionary), -1, dtype=np.int64)
        if self.values and len(dictionary):
            found = pc.index_in(dictionary, value_set=self.arrow())
            lut[:] = pc.fill_null(found, -1).to_numpy(zero_copy_only=False)
        new = np.flatnonzero(lut < 0)
        if len(new):
            lut[new] = [self._code(v) for v in dictionary.take(pa.array(new)).to_pylist()]
        indices = encoded.indices.to_numpy(zero_copy_only=False)
        return lut[indices] if len(lut) else np.zeros(len(column), dtype=np.int64)

    def encode_values(self, values: Sequence[str]) -> np.ndarray:
        return np.fromiter((self._code(v) for v in values), dtype=np.int64, count=len(values))

    def _code(self, value: str) -> int:
        code = self.codes.get(value)
        if code is None:
            code = self.codes[value] = len(self.values)
            self.values.append(value)
            self._arrow = None
        return code

    def __getstate__(self) -> dict:
        return self.__dict__ | {"_arrow": None}  # a cache of `values`: rebuilt on demand

    def arrow(self) -> pa.Array:
        if self._arrow is None or len(self._arrow) != len(self.values):
            self._arrow = pa.array(self.values, type=pa.string())
        return self._arrow


class KeyTable:
    """Codes for key tuples over `names` (e.g. ("agency_code", "channel", "level"))."""

    def __init__(self, names: Sequence[str]) -> None:
        if not names:
            raise ValueError("a key table needs at least one key column")
        self.names = tuple(names)
        self._columns = [_Column() for _ in self.names]
        # Composite keys: packed per-column codes -> key code, and key code -> per-column codes.
        self._packed: dict[int, int] = {}
        self._parts: list[np.ndarray] = [np.zeros(0, dtype=np.int64) for _ in self.names]
        self._size = 0

    def __len__(self) -> int:
        return len(self._columns[0].values) if len(self.names) == 1 else self._size

    def encode_table(self, table: pa.Table) -> np.ndarray:
        """The key code (int64) of every row of `table`; unseen keys get new codes."""
        return self._encode([self._columns[i].encode(table.column(n)) for i, n in enumerate(self.names)])

    def encode(self, *columns: Sequence[str]) -> np.ndarray:
        """Codes for Python sequences of strings, one sequence per key column (tests, tools)."""
        return self._encode([col.encode_values(list(values)) for col, values in zip(self._columns, columns,
                                                                                    strict=True)])

    def _encode(self, parts: list[np.ndarray]) -> np.ndarray:
        if len(parts) == 1:
            return parts[0]
        packed = np.zeros(len(parts[0]), dtype=np.int64)
        for p in parts:
            if len(p) and p.max() >= 1 << _PACK_BITS:
                raise OverflowError("too many distinct values in one key column")
            packed = (packed << _PACK_BITS) | p
        uniq, first, inverse = np.unique(packed, return_index=True, return_inverse=True)
        lut = np.fromiter((self._packed.get(u, -1) for u in uniq.tolist()), dtype=np.int64, count=len(uniq))
        new = np.flatnonzero(lut < 0)
        if len(new):
            # New keys get codes in order of first appearance, so codes do not depend on batching.
            new = new[np.argsort(first[new], kind="stable")]
            lut[new] = np.arange(self._size, self._size + len(new))
            self._packed.update(zip(uniq[new].tolist(), lut[new].tolist(), strict=True))
            self._size += len(new)
            rows = first[new]
            self._parts = [np.concatenate((have, p[rows])) for have, p in zip(self._parts, parts, strict=True)]
        return lut[inverse.reshape(-1)]

    def decode(self, codes: np.ndarray) -> list[pa.Array]:
        """One string array per key column for the given codes."""
        codes = np.asarray(codes, dtype=np.int64)
        if len(self.names) == 1:
            return [self._columns[0].arrow().take(pa.array(codes))]
        return [col.arrow().take(pa.array(self._parts[j][codes])) for j, col in enumerate(self._columns)]

    def labels(self, codes: np.ndarray) -> pa.Array:
        """One string per code: the key columns joined with "|" (for the late side output)."""
        arrays = self.decode(codes)
        if len(arrays) == 1:
            return arrays[0]
        return pc.binary_join_element_wise(*arrays, "|")
