"""From numpy columns to one Arrow table per family: the part every generator shares.

A generator adds *blocks* of events of one kind (all `issued` tickets, all `served` tickets, ...),
each a set of equal-length numpy columns. Strings travel as small integer codes into a vocabulary
(center ids, procedure ids, enum values) or as integers formatted into ids (ticket, dossier), so
the generators never touch Python strings per event. `EventTable.build` then clips to the
simulated horizon, sorts by event time (stable, so the result is deterministic), numbers the
events into ids and produces a table with exactly `family.schema`. A field a block does not give
is null for that block.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from models.schema import Family

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_NUMPY_TYPES = {"int": np.int64, "float": np.float64, "bool": np.bool_, "time": np.int64}


def hex_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.StringArray:
    """`prefix` + `numbers` as fixed-width lowercase hex, built directly as Arrow buffers.

    Fixed width keeps ids sortable and lets us skip per-row Python formatting (~1 M ids in ms).
    """
    numbers = np.asarray(numbers, dtype=np.uint64)
    if len(numbers) and int(numbers.max()) >= 16**width:
        raise ValueError(f"{int(numbers.max())} does not fit in {width} hex digits")
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64) * np.uint64(4)
    digits = _HEX[(numbers[:, None] >> shifts) & np.uint64(15)]
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    rows = np.hstack([np.broadcast_to(head, (len(numbers), len(head))), digits])
    offsets = np.arange(len(numbers) + 1, dtype=np.int32) * rows.shape[1]
    return pa.StringArray.from_buffers(len(numbers), pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(rows)))


@dataclass
class _Block:
    size: int
    columns: dict[str, np.ndarray]


@dataclass
class EventTable:
    """Collects event blocks of one family and builds its Arrow table.

    `vocab` maps a string field to the values its integer codes index (enum fields default to
    their declared choices); `ids` maps a string field to the prefix its integers are formatted
    with (`hex_ids`).
    """

    family: Family
    id_prefix: str  # event ids: prefix + running number in event-time order
    vocab: Mapping[str, Sequence[str]] = field(default_factory=dict)
    ids: Mapping[str, tuple[str, int]] = field(default_factory=dict)  # field -> (prefix, hex width)
    blocks: list[_Block] = field(default_factory=list)

    def add(self, event_time: np.ndarray, kind: str | None = None, **columns: np.ndarray | float | int | bool) -> None:
        """One block of events (of one `kind`, for families that have kinds); scalars broadcast."""
        size = len(event_time)
        if size == 0:
            return
        cols = {"event_time": np.asarray(event_time, dtype=np.int64)}
        if kind is not None:
            cols["kind"] = np.full(size, self._vocab("kind").index(kind))
        for name, values in columns.items():
            self.family.field(name)  # unknown field names fail here, not as a silent null column
            cols[name] = np.broadcast_to(np.asarray(values), (size,))
        self.blocks.append(_Block(size, cols))

    def build(self, t0_ms: int, t1_ms: int, first_number: int = 0) -> pa.Table:
        """Events with t0 <= event_time < t1, sorted by event time, as `family.schema`; event ids
        count from `first_number` (a run built in time slices continues the numbering)."""
        times = np.concatenate([b.columns["event_time"] for b in self.blocks]) if self.blocks else np.zeros(0, np.int64)
        keep = np.flatnonzero((times >= t0_ms) & (times < t1_ms))
        rows = keep[np.argsort(times[keep], kind="stable")]
        arrays = []
        for f in self.family.fields:
            if f.name == "event_id":
                arrays.append(hex_ids(self.id_prefix, first_number + np.arange(len(rows)), 10))
                continue
            values, valid = self._column(f.name, f.kind)
            arrays.append(self._to_arrow(f.name, f.kind, values[rows], valid[rows]))
        return pa.Table.from_arrays(arrays, schema=self.family.schema)

    # ------------------------------------------------------------ internals

    def _vocab(self, name: str) -> list[str]:
        values = self.vocab.get(name) or self.family.field(name).choices
        if not values:
            raise KeyError(f"{self.family.name}.{name}: no vocabulary or id format given")
        return list(values)

    def _column(self, name: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """The field over all blocks, with a validity mask (absent in a block -> null)."""
        dtype = _NUMPY_TYPES.get(kind, np.int64)  # strings travel as int64 codes or numbers
        parts, valid = [], []
        for block in self.blocks:
            present = name in block.columns
            parts.append(block.columns[name].astype(dtype) if present else np.zeros(block.size, dtype))
            valid.append(np.full(block.size, present))
        if not parts:
            return np.zeros(0, dtype), np.zeros(0, bool)
        return np.concatenate(parts), np.concatenate(valid)

    def _to_arrow(self, name: str, kind: str, values: np.ndarray, valid: np.ndarray) -> pa.Array:
        mask = None if valid.all() else ~valid
        arrow_type = self.family.field(name).arrow_type
        if kind in ("str", "enum"):
            if name in self.ids:
                prefix, width = self.ids[name]
                array = hex_ids(prefix, values, width)
                return array if mask is None else pc.if_else(pa.array(valid), array, pa.scalar(None, pa.string()))
            codes = pa.array(values.astype(np.int32), mask=mask)
            return pa.array(self._vocab(name), type=pa.string()).take(codes)
        return pa.array(values, type=arrow_type, mask=mask)
