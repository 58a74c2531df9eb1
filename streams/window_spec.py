"""Window declarations: what a family windows, never how (that is `streams.window_engine`).

A `WindowSpec` declares, in a few lines, a family's key columns, its windows, its *inputs* (per-event
numpy arrays derived from the Arrow batch: masks like `kind == "served"`, numbers like `wait_s` with
NaN where absent) and its *aggregates* (output columns). `WindowEngine(spec)` runs it: a whole batch
goes in as arrays, emitted windows come out as one Arrow table, and no Python code runs per event.

The engine's outputs are declared here too: `Emitted` and the late side output's `LATE_SCHEMA`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from models.schema import Family
from streams import sketch as sk
from streams.sessions import SessionSpec

TS = pa.timestamp("ms", tz="UTC")


@dataclass(frozen=True)
class Windowing:
    """Windows of `size_ms` starting every `step_ms` (tumbling when equal); size is a multiple of step."""

    size_ms: int
    step_ms: int

    def __post_init__(self) -> None:
        if self.step_ms <= 0 or self.size_ms <= 0 or self.size_ms % self.step_ms:
            raise ValueError("window size must be a positive multiple of the step")

    @property
    def hops(self) -> int:
        """How many windows contain each event."""
        return self.size_ms // self.step_ms


def tumbling(*, minutes: float = 0, seconds: float = 0, ms: int = 0) -> Windowing:
    size = int(minutes * 60_000 + seconds * 1000 + ms)
    return Windowing(size, size)


def hopping(*, size_ms: int, step_ms: int) -> Windowing:
    return Windowing(size_ms, step_ms)


def _bools(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


@dataclass(frozen=True)
class Is:
    """Mask input: `column == value` (null -> False)."""

    column: str
    value: str
    kind: Literal["mask"] = field(default="mask", init=False)

    def __call__(self, table: pa.Table) -> np.ndarray:
        return _bools(pc.equal(table.column(self.column), self.value))


@dataclass(frozen=True)
class Flag:
    """Mask input: bool `column` equals `value` (null -> False), only where `when` holds."""

    column: str
    value: bool = True
    when: Is | None = None
    kind: Literal["mask"] = field(default="mask", init=False)

    def __call__(self, table: pa.Table) -> np.ndarray:
        col = table.column(self.column)
        mask = _bools(col if self.value else pc.invert(col))
        return mask & self.when(table) if self.when else mask


@dataclass(frozen=True)
class Number:
    """Number input: float64 `column`, NaN where null or where the mask `when` does not hold."""

    column: str
    when: Is | Flag | None = None
    kind: Literal["number"] = field(default="number", init=False)

    def __call__(self, table: pa.Table) -> np.ndarray:
        col = pc.cast(table.column(self.column), pa.float64())
        values = np.array(pc.fill_null(col, np.nan).to_numpy(zero_copy_only=False), dtype=np.float64)
        if self.when:
            values[~self.when(table)] = np.nan
        return values


@dataclass(frozen=True)
class Derived:
    """Number input computed by a function of the batch (NaN = absent)."""

    name: str
    fn: Callable[[pa.Table], np.ndarray]
    kind: Literal["number"] = field(default="number", init=False)

    def __call__(self, table: pa.Table) -> np.ndarray:
        return np.asarray(self.fn(table), dtype=np.float64)


Input = Is | Flag | Number | Derived


@dataclass(frozen=True)
class Count:
    """uint32: events where mask input `where` is true / number input `where` is present; all if None."""

    name: str
    where: str | None = None


@dataclass(frozen=True)
class Sum:
    """float64: sum of a number input (0 when absent)."""

    name: str
    of: str


@dataclass(frozen=True)
class Min:
    """float64, null when the window has no value of `of`."""

    name: str
    of: str


@dataclass(frozen=True)
class Max:
    name: str
    of: str


@dataclass(frozen=True)
class Quantile:
    """float64 (null if no value): the q-quantile of `of` from its sketch (see streams.sketch)."""

    name: str
    of: str
    q: float


@dataclass(frozen=True)
class SketchMap:
    """map<int32, uint64>: the serialized sketch of `of`, mergeable with sumMap."""

    name: str
    of: str


@dataclass(frozen=True)
class Ratio:
    """float64 (null when den == 0): num / den over two other output columns (ratios, means)."""

    name: str
    num: str
    den: str


Agg = Count | Sum | Min | Max | Quantile | SketchMap | Ratio
_AGG_TYPES: dict[type, pa.DataType] = {
    Count: pa.uint32(), Sum: pa.float64(), Min: pa.float64(), Max: pa.float64(), Quantile: pa.float64(),
    SketchMap: sk.SKETCH_TYPE, Ratio: pa.float64(),
}


@dataclass(frozen=True)
class WindowSpec:
    family: Family
    keys: tuple[str, ...]
    windowing: Windowing
    inputs: Mapping[str, Input]
    aggs: tuple[Agg, ...]
    sessions: SessionSpec | None = None

    def __post_init__(self) -> None:
        names = [a.name for a in self.aggs]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.family.name}: duplicate output column")
        for a in self.aggs:
            if isinstance(a, Count) and a.where is not None and a.where not in self.inputs:
                raise ValueError(f"{a.name}: unknown input {a.where!r}")
            if isinstance(a, Sum | Min | Max | Quantile | SketchMap) and self._kind(a.of) != "number":
                raise ValueError(f"{a.name}: {a.of!r} is not a number input")
            if isinstance(a, Ratio) and not {a.num, a.den} <= set(names):
                raise ValueError(f"{a.name}: ratio of unknown columns")
        if self.sessions and self._kind(self.sessions.flag) != "mask":
            raise ValueError("sessions need a mask input")

    def _kind(self, name: str) -> str | None:
        item = self.inputs.get(name)
        return item.kind if item is not None else None

    @property
    def name(self) -> str:
        return self.family.name

    def window_schema(self) -> pa.Schema:
        return self._schemas[0]

    def session_schema(self) -> pa.Schema | None:
        return self._schemas[1]

    @cached_property
    def empty_windows(self) -> pa.Table:
        return self.window_schema().empty_table()  # ~0.5 ms to build (map column): build once

    @cached_property
    def _schemas(self) -> tuple[pa.Schema, pa.Schema | None]:
        # Built once: making Arrow schemas costs ~1 ms, more than windowing a small batch.
        return self._window_schema(), self._session_schema()

    def _window_schema(self) -> pa.Schema:
        fields = [pa.field("window_start", TS, False), pa.field("window_end", TS, False)]
        fields += [pa.field(k, pa.string(), False) for k in self.keys]
        fields.append(pa.field("version", pa.uint32(), False))
        nullable = (Min, Max, Quantile, Ratio)
        fields += [pa.field(a.name, _AGG_TYPES[type(a)], isinstance(a, nullable)) for a in self.aggs]
        return pa.schema(fields)

    def _session_schema(self) -> pa.Schema | None:
        if self.sessions is None:
            return None
        return pa.schema([
            pa.field(self.sessions.key or self.keys[0], pa.string(), False), pa.field("start", TS, False),
            pa.field("end", TS, False), pa.field("duration_s", pa.float64(), False),
            pa.field("samples", pa.uint32(), False), pa.field("version", pa.uint32(), False),
        ])

    def evaluate(self, table: pa.Table) -> dict[str, np.ndarray]:
        """The per-event input arrays of a batch with the family's schema."""
        return {name: fn(table) for name, fn in self.inputs.items()}

    def __getstate__(self) -> dict:
        # The cached schemas and empty table are rebuilt on demand: checkpoints need not carry them.
        return {k: v for k, v in self.__dict__.items() if k not in ("_schemas", "empty_windows")}


# The late side output: one row per (event, window it missed). `key` is the spec's key columns
# joined with "|" (just the id for single-key families).
LATE_SCHEMA = pa.schema([
    pa.field("family", pa.string(), False), pa.field("key", pa.string(), False),
    pa.field("event_id", pa.string()), pa.field("event_time", TS, False),
    pa.field("window_start", TS, False),
])


@dataclass
class Emitted:
    """What one call produced. Tables are ready for `client.insert_arrow`."""

    windows: pa.Table
    sessions: pa.Table | None
    late: pa.Table
    rejected_rows: np.ndarray  # row indices into the input batch
    rejected_reasons: list[str]  # one stable reason code (models.schema) per rejected row
    events: int = 0  # rows in
    accepted: int = 0  # rows that updated at least one window
    late_rows: int = 0  # rows of `late` (one per event and window missed)
    watermark_ms: int | None = None

