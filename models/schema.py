"""Declarative event schemas: one `Family` spec drives JSON, Arrow and validation for every family.

A family is a list of `Field`s. From that single declaration come:
- `arrow_schema(family)`: the Arrow schema (wire format for bulk batches, Parquet files, sink input);
- `encode_json` / `decode_json_batch`: one JSON object per message, decoded a whole batch at a time;
- `validate_table` (vectorized, the hot path) and `validate_record` (one dict, for producers and
  for isolating bad messages): both return the *reason* a record is rejected, using the same rules.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

Kind = Literal["str", "int", "float", "bool", "time", "enum"]

# Rejection reasons: stable codes, counted per reason in ClickHouse and shown on dashboards.
UNDECODABLE = "undecodable"
OVERSIZED = "oversized"
MISSING_FIELD = "missing_field"
WRONG_TYPE = "wrong_type"
UNKNOWN_ENUM = "unknown_enum"
OUT_OF_RANGE = "out_of_range"
FUTURE_TIME = "future_time"
TOO_OLD = "too_old"
DUPLICATE = "duplicate"
REASONS = (
    UNDECODABLE, OVERSIZED, MISSING_FIELD, WRONG_TYPE, UNKNOWN_ENUM, OUT_OF_RANGE, FUTURE_TIME, TOO_OLD, DUPLICATE,
)

_ARROW_TYPES: dict[str, pa.DataType] = {
    "str": pa.string(),
    "enum": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "time": pa.timestamp("ms", tz="UTC"),
}
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "enum": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "time": (str,),
}


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    required: bool = True
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    max_len: int = 128  # strings longer than this are hostile, not data

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES[self.kind]


@dataclass(frozen=True)
class Family:
    """One event family: its topic, its partition key and its fields (`event_id`, `event_time` first)."""

    name: str
    topic: str
    key_field: str
    fields: tuple[Field, ...]
    schema: pa.Schema = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "schema", pa.schema([pa.field(f.name, f.arrow_type) for f in self.fields]))

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)


@dataclass(frozen=True)
class Rejection:
    reason: str
    field: str = ""
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.reason}:{self.field}" if self.field else self.reason


def arrow_schema(family: Family) -> pa.Schema:
    return family.schema


# ---------------------------------------------------------------- JSON encoding


def format_time(ms: int) -> str:
    """Event times travel as ISO-8601 UTC with millisecond precision: readable and exact."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def encode_json(family: Family, record: dict[str, Any]) -> bytes:
    """One record as a JSON message; `time` fields may be given as int ms or datetime."""
    out: dict[str, Any] = {}
    for f in family.fields:
        value = record.get(f.name)
        if value is None:
            continue
        if f.kind == "time" and not isinstance(value, str):
            value = format_time(int(value.timestamp() * 1000) if isinstance(value, datetime) else int(value))
        out[f.name] = value
    return orjson.dumps(out)


def table_to_json_messages(family: Family, table: pa.Table) -> list[bytes]:
    """Encode every row of an Arrow table as one JSON message (used by replay)."""
    cols: dict[str, list[Any]] = {}
    for f in family.fields:
        col = table.column(f.name)
        if f.kind == "time":
            # Arrow's %S prints the fraction at the column's unit: "08:00:00.123".
            col = pc.strftime(col, format="%Y-%m-%dT%H:%M:%SZ")
        cols[f.name] = col.to_pylist()
    names = [f.name for f in family.fields]
    rows = zip(*(cols[n] for n in names), strict=True)
    return [orjson.dumps({n: v for n, v in zip(names, row, strict=True) if v is not None}) for row in rows]


def decode_json_batch(family: Family, messages: Sequence[bytes]) -> pa.Table:
    """Decode many JSON messages in one C++ call; raises `pa.ArrowInvalid` if any one is bad.

    Joining the messages with newlines turns a Kafka batch into newline-delimited JSON, which
    pyarrow parses ~4x faster than orjson + `Table.from_pylist`. A message that itself contains a
    newline or is not one object makes the call fail or the row count differ: callers then
    isolate the bad messages (see `streams.decode`).

    Two guards against hostile input, both found by the bad-input fuzzer (tests/test_reliability_fuzz.py):
    - pyarrow's JSON reader (26.0) dereferences a null pointer when the *first* value of its input is
      a bare `null` (apache/arrow#47409): a 4-byte Kafka message would kill the worker, and again after
      every restart. A leading `{}` line makes the first value an object; a later `null` is parsed as a
      row of nulls (rejected as missing fields), and the sentinel row is sliced off.
    - the reader does not check that strings are UTF-8; invalid bytes would reach keys, ClickHouse and
      every reader downstream. A full validation (~0.5% of the parse) makes such a batch fail here, so
      bisection isolates the message (orjson then calls it undecodable).
    """
    if not messages:
        return family.schema.empty_table()
    blob = b"\n".join([b"{}", *messages])
    table = pj.read_json(
        io.BytesIO(blob),
        read_options=pj.ReadOptions(use_threads=False, block_size=max(1 << 20, len(blob) + 1)),
        parse_options=pj.ParseOptions(explicit_schema=family.schema, unexpected_field_behavior="ignore"),
    )
    if table.num_rows != len(messages) + 1:
        raise pa.ArrowInvalid(f"expected {len(messages)} JSON objects, parsed {table.num_rows - 1}")
    table = table.slice(1).select(family.schema.names)
    table.validate(full=True)  # raises ArrowInvalid on invalid UTF-8
    return table


# ---------------------------------------------------------------- validation


def validate_table(family: Family, table: pa.Table, now_ms: int, max_future_skew_ms: int) -> list[Rejection | None]:
    """Per row, the first rule it breaks (or None)."""
    return list(validation_mask(family, table, now_ms, max_future_skew_ms)[1])


def validation_mask(
    family: Family, table: pa.Table, now_ms: int, max_future_skew_ms: int
) -> tuple[np.ndarray, np.ndarray]:
    """(valid rows, per-row Rejection or None). Vectorized: one compute kernel per rule."""
    reasons = np.full(table.num_rows, None, dtype=object)
    open_rows = np.ones(table.num_rows, dtype=bool)

    def mark(bad: np.ndarray, rejection: Rejection) -> None:
        hit = bad & open_rows
        if hit.any():
            reasons[hit] = rejection
            open_rows[hit] = False

    for f in family.fields:
        col = table.column(f.name)
        nulls = col.is_null().to_numpy(zero_copy_only=False)
        if f.required:
            mark(nulls, Rejection(MISSING_FIELD, f.name))
        if f.kind in ("str", "enum"):
            lengths = pc.fill_null(pc.utf8_length(col), 0).to_numpy(zero_copy_only=False)
            mark(lengths > f.max_len, Rejection(OVERSIZED, f.name, f"longer than {f.max_len}"))
            if f.required:
                mark(lengths == 0, Rejection(MISSING_FIELD, f.name, "empty"))
        if f.kind == "enum":
            known = pc.is_in(col, value_set=pa.array(f.choices)).to_numpy(zero_copy_only=False)
            mark(~known & ~nulls, Rejection(UNKNOWN_ENUM, f.name))
        if f.kind in ("int", "float"):
            # Unsafe cast: a safe one raises on ints beyond 2**53 (a 20-byte JSON message crashed the
            # worker); rounding such values cannot move them across any min/max of a field.
            values = pc.fill_null(pc.cast(col, pa.float64(), safe=False), 0.0).to_numpy(zero_copy_only=False)
            present = ~nulls
            mark(present & ~np.isfinite(values), Rejection(OUT_OF_RANGE, f.name, "not finite"))
            if f.min is not None:
                mark(present & (values < f.min), Rejection(OUT_OF_RANGE, f.name, f"below {f.min}"))
            if f.max is not None:
                mark(present & (values > f.max), Rejection(OUT_OF_RANGE, f.name, f"above {f.max}"))
        if f.kind == "time":
            ms = pc.fill_null(pc.cast(col, pa.int64()), 0).to_numpy(zero_copy_only=False)
            if f.name == "event_time":  # other times (a dossier's due time) are legitimately in the future
                mark(ms > now_ms + max_future_skew_ms, Rejection(FUTURE_TIME, f.name, "beyond the allowed clock skew"))
            # Before 2000-01-01 is a broken clock or a hostile producer, not an event.
            mark((ms < 946_684_800_000) & ~nulls, Rejection(TOO_OLD, f.name, "before 2000-01-01"))
    return open_rows, reasons


def validate_record(family: Family, record: Any, now_ms: int, max_future_skew_ms: int) -> Rejection | None:
    """The reason one decoded JSON value is rejected, or None. Same rules as `validate_table`."""
    if not isinstance(record, dict):
        return Rejection(WRONG_TYPE, "", f"expected an object, got {type(record).__name__}")
    for f in family.fields:
        value = record.get(f.name)
        if value is None:
            continue
        if isinstance(value, bool) and f.kind in ("int", "float"):
            return Rejection(WRONG_TYPE, f.name, "bool where a number is expected")
        if not isinstance(value, _PY_TYPES[f.kind]):
            return Rejection(WRONG_TYPE, f.name, f"{type(value).__name__} where {f.kind} is expected")
        if f.kind == "float" and isinstance(value, float) and not math.isfinite(value):
            return Rejection(OUT_OF_RANGE, f.name, "not finite")
        if f.kind == "int" and not -(2**63) <= value < 2**63:
            return Rejection(OUT_OF_RANGE, f.name, "does not fit in 64 bits")
        if f.kind == "time":
            try:
                parse_time(value)
            except ValueError:
                return Rejection(WRONG_TYPE, f.name, "not an ISO-8601 time")
    try:
        table = records_to_table(family, [record])
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        return Rejection(WRONG_TYPE, "", str(exc)[:200])
    return validate_table(family, table, now_ms, max_future_skew_ms)[0]


def records_to_table(family: Family, records: Sequence[dict[str, Any]]) -> pa.Table:
    """Typed rows -> Arrow; `time` fields as int ms, datetimes or ISO strings."""
    prepared = []
    for record in records:
        row = dict(record)
        for f in family.fields:
            v = row.get(f.name)
            if f.kind == "time" and isinstance(v, str):
                row[f.name] = parse_time(v)
        prepared.append(row)
    return pa.Table.from_pylist(prepared, schema=family.schema)
