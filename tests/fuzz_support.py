"""Hostile input for the bad-input tests: one catalogue of defects, drawn by hypothesis or by a seeded RNG.

Every hostile message is a valid event with exactly one defect (or bytes that are no event at all), so
the reason it must be rejected for is known in advance: the tests compare the worker's dead letters
with these expectations one by one, not just "something was rejected".

The catalogue is written once against a small `Draw` interface with two implementations:
`StrategyDraw` draws from hypothesis strategies inside a `@given` test (shrinking, the example
database), `RandomDraw` from a seeded `random.Random` (the 10,000-message broker run: the same
messages on every run, generated in a fraction of a second).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import orjson
import pyarrow as pa
from hypothesis import strategies as st

from models.events import ARROW_CONTENT_TYPE, ARROW_CONTENT_TYPE_HEADER, FAMILIES, FILINGS, SERVICE_CENTER
from models.schema import (
    DUPLICATE,
    FUTURE_TIME,
    MISSING_FIELD,
    OUT_OF_RANGE,
    OVERSIZED,
    TOO_OLD,
    UNDECODABLE,
    UNKNOWN_ENUM,
    WRONG_TYPE,
    Family,
    Field,
    records_to_table,
)

T = TypeVar("T")
ARROW_HEADERS = [(ARROW_CONTENT_TYPE_HEADER, ARROW_CONTENT_TYPE)]
MAX_MESSAGE_BYTES = 64 * 1024  # Settings().max_message_bytes: the worker's limit for one JSON message
YEAR_2000_MS = 946_684_800_000
YEAR_9999_MS = 253_402_300_799_000
DAY_MS = 86_400_000
# Characters that have broken JSON and string handling elsewhere: quotes, escapes, controls, NUL,
# multi-byte UTF-8, right-to-left marks, emoji, Vietnamese with combining marks.
SPICY = "\"'\\/\n\r\t\x00\x1f\x7f é ệ ư ơ đ Đ \u0301 \u200f \u202e \ufeff 😀 𝄞 中 ; -- ) DROP TABLE"


class Draw(Protocol):
    def integer(self, lo: int, hi: int) -> int: ...
    def choice(self, options: Sequence[T]) -> T: ...
    def real(self, lo: float, hi: float) -> float: ...
    def text(self, min_size: int, max_size: int) -> str: ...
    def binary(self, min_size: int, max_size: int) -> bytes: ...


class RandomDraw:
    """Seeded draws: the bulk generator for broker runs."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def choice(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]

    def real(self, lo: float, hi: float) -> float:
        return self.rng.uniform(lo, hi)

    def text(self, min_size: int, max_size: int) -> str:
        size = self.rng.randint(min_size, max_size)
        chars = []
        for _ in range(size):
            if self.rng.random() < 0.5:
                chars.append(self.rng.choice(SPICY))
            else:  # any code point of the BMP and beyond, except surrogates (not encodable as UTF-8)
                cp = self.rng.randrange(0x20, 0x2FFFF)
                chars.append(chr(cp) if not 0xD800 <= cp <= 0xDFFF else "x")
        return "".join(chars)

    def binary(self, min_size: int, max_size: int) -> bytes:
        return self.rng.randbytes(self.rng.randint(min_size, max_size))


class StrategyDraw:
    """Draws from hypothesis strategies inside a `@given(data=st.data())` test."""

    def __init__(self, data: st.DataObject):
        self.data = data

    def integer(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))

    def choice(self, options: Sequence[T]) -> T:
        return self.data.draw(st.sampled_from(options))

    def real(self, lo: float, hi: float) -> float:
        return self.data.draw(st.floats(lo, hi, allow_nan=False, allow_infinity=False))

    def text(self, min_size: int, max_size: int) -> str:
        return self.data.draw(st.text(st.characters(codec="utf-8") | st.sampled_from(SPICY),
                                      min_size=min_size, max_size=max_size))

    def binary(self, min_size: int, max_size: int) -> bytes:
        return self.data.draw(st.binary(min_size=min_size, max_size=max_size))


@dataclass(frozen=True)
class Hostile:
    """A message the worker must reject: `reasons` holds one reason per dead letter it must produce
    (one for a JSON message or a broken Arrow batch, one per row for an Arrow batch of bad rows)."""

    family: Family
    defect: str
    value: bytes | None
    key: bytes | None
    arrow: bool
    reasons: tuple[str, ...]

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        return list(ARROW_HEADERS) if self.arrow else []


# ---------------------------------------------------------------- valid records (the base of every defect)


def valid_value(draw: Draw, f: Field, time_ms: int) -> Any:
    if f.kind == "enum":
        return draw.choice(f.choices)
    if f.kind == "str":
        return draw.text(1, min(f.max_len, 24)).strip() or "k"
    if f.kind == "int":
        return draw.integer(int(f.min or 0), int(f.max if f.max is not None else 10**6))
    if f.kind == "float":
        return draw.real(f.min or 0.0, min(f.max if f.max is not None else 1e9, 1e9))
    if f.kind == "bool":
        return draw.choice([True, False])
    return iso(time_ms if f.name == "event_time" else time_ms + draw.integer(0, 30) * DAY_MS)


def valid_record(draw: Draw, family: Family, event_id: str, time_ms: int) -> dict[str, Any]:
    """A record that passes every rule (times as the wire's ISO strings); optional fields present or not."""
    record: dict[str, Any] = {}
    for f in family.fields:
        if f.name == "event_id":
            record[f.name] = event_id
        elif f.required or draw.integer(0, 2):
            record[f.name] = valid_value(draw, f, time_ms)
    return record


def iso(ms: int) -> str:
    """ISO-8601 UTC with a 4-digit year for any year 1-9999 (strftime drops the zeros before 1000)."""
    t = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return f"{t.year:04d}-{t:%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}Z"


def to_json(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)


def arrow_stream(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


# ---------------------------------------------------------------- SQL injection attempts as data

INJECTIONS = [
    "x'); DROP TABLE raw_filings;--",
    "'; DROP TABLE alerts; --",
    "\\'; TRUNCATE agg_network; --",
    "\" OR 1=1 --",
    "`; DROP DATABASE ioc; --",
    "{event_id:String}",
    "%(center_id)s $1 ? :name",
    "Robert'); DELETE FROM deadletters",
]


def injected_records(family: Family, t0: int) -> list[dict[str, Any]]:
    """Events whose keys and text fields are injection attempts (each within the field's size limit)."""
    out = []
    for i, text in enumerate(INJECTIONS):
        common = {"event_id": f"{text}#{i}", "event_time": iso(t0 + i * 1000)}
        if family is SERVICE_CENTER:
            out.append(common | {"center_id": text[:32], "kind": "served", "ticket_id": text, "wait_s": 5.0,
                                 "service_s": 60.0, "rating": 4})
        elif family is FILINGS:
            out.append(common | {"agency_code": text[:32], "dossier_id": text, "procedure_id": text[:32],
                                 "kind": "submitted", "channel": "online_full", "level": "commune"})
        else:
            out.append(common | {"node_id": text[:32], "latency_ms": 1.0, "jitter_ms": 0.1, "loss_pct": 0.0,
                                 "rx_bps": 1.0, "tx_bps": 1.0, "capacity_bps": 10.0, "link_up": True})
    return out


# ---------------------------------------------------------------- the catalogue


@dataclass
class Context:
    draw: Draw
    family: Family
    event_id: str
    time_ms: int  # a plausible event time (inside the stream the noise is mixed into)
    now_ms: int  # the worker's wall clock (future_time is judged against it)

    def record(self, suffix: str = "") -> dict[str, Any]:
        return valid_record(self.draw, self.family, self.event_id + suffix, self.time_ms)

    def message(self) -> bytes:
        return to_json(self.record())

    def field(self, kinds: Sequence[str], required: bool | None = None, ranged: bool = False) -> Field | None:
        fields = [f for f in self.family.fields if f.kind in kinds
                  and (required is None or f.required == required) and (not ranged or f.min is not None)]
        return self.draw.choice(fields) if fields else None


Defect = Callable[[Context], tuple[bytes | None, str]]


def _prefix(c: Context) -> tuple[bytes, str]:
    message = c.message()
    return message[: c.draw.integer(0, len(message) - 1)], UNDECODABLE


def _garbage(c: Context) -> tuple[bytes, str]:
    # A first byte no JSON value starts with, so whatever follows, it is no JSON document.
    return c.draw.choice([b"#", b"<", b"\x01", b"x", b"'", b"\xff", b"}"]) + c.draw.binary(0, 300), UNDECODABLE


def _trailing(c: Context) -> tuple[bytes, str]:
    return c.message() + c.draw.choice([b" x", b"{}", b"]", b"\n{}", b"\x00", b",", b'\n{"event_id":"z"}']), UNDECODABLE


def _not_an_object(c: Context) -> tuple[bytes, str]:
    value = c.draw.choice([b"null", b"[]", b"[1,2]", b"[{}]", b"1", b"-3.5", b'"text"', b"true", b"false", b"0"])
    # `null` reads as an event without fields (the parser has no other row for it): missing fields.
    return value, MISSING_FIELD if value == b"null" else WRONG_TYPE


def _invalid_utf8(c: Context) -> tuple[bytes, str]:
    f = c.field(["str"], required=True)
    assert f is not None
    record = c.record() | {f.name: "PLACEHOLDER"}
    bad = c.draw.choice([b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"a\x80b"])
    return to_json(record).replace(b"PLACEHOLDER", bad), UNDECODABLE


def _bom(c: Context) -> tuple[bytes, str]:
    return b"\xef\xbb\xbf" + c.message(), UNDECODABLE


def _repeated_key(c: Context) -> tuple[bytes, str]:
    message = c.message()  # the same key twice with the same value: JSON says "unspecified", we say no
    return message[:-1] + b',"event_id":' + orjson.dumps(c.event_id) + b"}", WRONG_TYPE


WRONG_VALUES: dict[str, list[Any]] = {
    "str": [5, 2.5, True, ["a"], {"a": 1}],
    "enum": [1, 0.5, False, ["served"], {"kind": "served"}],
    "int": [1.5, "3", True, [1], {"n": 1}, 2.0],
    "float": ["1.5", True, [1.0], {"x": 1}],
    "bool": [1, 0, "true", 1.0, [True]],
    "time": [1752480000000, 1.5, True, "yesterday", "14/07/2025", "2025-13-45T00:00:00Z", "", [1]],
}


def _wrong_type(c: Context) -> tuple[bytes, str]:
    f = c.field(list(WRONG_VALUES))
    assert f is not None
    return to_json(c.record() | {f.name: c.draw.choice(WRONG_VALUES[f.kind])}), WRONG_TYPE


def _missing(c: Context) -> tuple[bytes, str]:
    f = c.draw.choice([f for f in c.family.fields if f.required])
    record = c.record()
    how = c.draw.choice(["absent", "null", "empty"] if f.kind in ("str", "enum") else ["absent", "null"])
    if how == "absent":
        del record[f.name]
    else:
        record[f.name] = None if how == "null" else ""
    return to_json(record), MISSING_FIELD


def _unknown_enum(c: Context) -> tuple[bytes, str]:
    f = c.field(["enum"])
    assert f is not None
    value = c.draw.text(1, f.max_len)
    return to_json(c.record() | {f.name: value + "!" if value in f.choices else value}), UNKNOWN_ENUM


def _huge_string(c: Context) -> tuple[bytes, str]:
    f = c.field(["str", "enum"])
    assert f is not None
    value = "x" * c.draw.integer(f.max_len + 1, 4 * f.max_len) if c.draw.integer(0, 1) else \
        c.draw.text(f.max_len + 1, f.max_len + 8)
    return to_json(c.record() | {f.name: value}), OVERSIZED


def _huge_message(c: Context) -> tuple[bytes, str]:
    padding = "p" * (MAX_MESSAGE_BYTES + c.draw.integer(1, 4096))  # an unknown field: only the size is wrong
    return to_json(c.record() | {"padding": padding}), OVERSIZED


def _not_finite(c: Context) -> tuple[bytes, str]:
    f = c.field(["float"])
    assert f is not None
    message = to_json(c.record() | {f.name: 12345.678901})
    return message.replace(b"12345.678901", c.draw.choice([b"NaN", b"Infinity", b"-Infinity"])), OUT_OF_RANGE


def _overflowing_number(c: Context) -> tuple[bytes, str]:
    f = c.field(["float", "int"])
    assert f is not None
    message = to_json(c.record() | {f.name: 12345.678901})
    return message.replace(b"12345.678901", c.draw.choice([b"1e400", b"-1e999", b"123456789e9999"])), UNDECODABLE


def _out_of_range(c: Context) -> tuple[bytes, str]:
    f = c.field(["int", "float"], ranged=True)
    assert f is not None and f.min is not None
    if c.draw.integer(0, 1) or f.max is None:  # below the minimum: negative durations, counts, rates
        value: float = f.min - (c.draw.integer(1, 10**6) if f.kind == "int" else c.draw.real(1e-6, 1e12))
    else:
        value = f.max + (c.draw.choice([1, 2**53 + 1, 2**62]) if f.kind == "int" else c.draw.real(1e-3, 1e12))
    return to_json(c.record() | {f.name: int(value) if f.kind == "int" else value}), OUT_OF_RANGE


def _future(c: Context) -> tuple[bytes, str]:
    when = c.draw.integer(c.now_ms + DAY_MS, YEAR_9999_MS)
    return to_json(c.record() | {"event_time": iso(when)}), FUTURE_TIME


def _ancient(c: Context) -> tuple[bytes, str]:
    when = c.draw.integer(-62_135_596_800_000, YEAR_2000_MS - 1)  # 0001-01-01 .. 1999-12-31
    f = c.field(["time"]) or c.family.field("event_time")
    return to_json(c.record() | {f.name: iso(when)}), TOO_OLD


def _other_family(c: Context) -> tuple[bytes, str]:
    other = c.draw.choice([f for f in FAMILIES.values() if f is not c.family])
    record = valid_record(c.draw, other, c.event_id, c.time_ms)
    return to_json(record), MISSING_FIELD  # this family's key field is absent


def _tombstone(c: Context) -> tuple[None, str]:
    return None, UNDECODABLE


JSON_DEFECTS: dict[str, Defect] = {
    "invalid_json_prefix": _prefix, "invalid_json_garbage": _garbage, "trailing_data": _trailing,
    "not_an_object": _not_an_object, "invalid_utf8": _invalid_utf8, "byte_order_mark": _bom,
    "repeated_json_key": _repeated_key, "wrong_type": _wrong_type, "missing_field": _missing,
    "unknown_enum": _unknown_enum, "huge_string": _huge_string, "huge_message": _huge_message,
    "nan_inf": _not_finite, "number_overflow": _overflowing_number, "out_of_range": _out_of_range,
    "far_future": _future, "ancient": _ancient, "other_family": _other_family, "tombstone": _tombstone,
}


# ---------------------------------------------------------------- Arrow batches


def _rows(c: Context, n: int) -> list[dict[str, Any]]:
    return [c.record(f"-{i}") for i in range(n)]


def _arrow_valid_bytes(c: Context) -> bytes:
    return arrow_stream(records_to_table(c.family, _rows(c, c.draw.integer(1, 5))))


def _arrow_truncated(c: Context) -> tuple[bytes, str]:
    stream = _arrow_valid_bytes(c)
    return stream[: c.draw.integer(0, len(stream) - 1)], UNDECODABLE


def _arrow_trailing(c: Context) -> tuple[bytes, str]:
    return _arrow_valid_bytes(c) + c.draw.binary(1, 64), UNDECODABLE


def _arrow_garbage(c: Context) -> tuple[bytes, str]:
    return c.draw.choice([b"", b"\xff\xff\xff\xff", c.message()]) + c.draw.binary(0, 400), UNDECODABLE


WRONG_COLUMNS: dict[str, list[pa.Array]] = {  # per kind, columns of another kind (length 1, repeated)
    "str": [pa.array([5]), pa.array([True]), pa.array([b"\x00"], pa.binary()), pa.array([[1]])],
    "enum": [pa.array([1]), pa.array([2.5]), pa.array([{"kind": "served"}])],
    "int": [pa.array([1.5]), pa.array(["3"]), pa.array([True])],
    "float": [pa.array(["1.5"]), pa.array([True]), pa.array([1], pa.duration("s"))],
    "bool": [pa.array([1]), pa.array(["true"])],
    "time": [pa.array([1752480000000]), pa.array(["2025-07-14T08:00:00Z"]), pa.array([20000], pa.date32())],
}


def _arrow_wrong_column(c: Context) -> tuple[bytes, str]:
    table = records_to_table(c.family, _rows(c, c.draw.integer(1, 5)))
    f = c.field(list(WRONG_COLUMNS)) if c.draw.integer(0, 3) else c.family.field("event_id")
    assert f is not None
    column = pa.concat_arrays([c.draw.choice(WRONG_COLUMNS[f.kind])] * table.num_rows)
    table = table.set_column(table.schema.get_field_index(f.name), f.name, column)
    return arrow_stream(table), WRONG_TYPE


def arrow_bad_rows(c: Context) -> tuple[bytes, tuple[str, ...]]:
    """An Arrow batch whose rows all carry the same row-level defect: one dead letter per row."""
    n = c.draw.integer(1, 6)
    rows = _rows(c, n)
    kinds = {f.kind for f in c.family.fields}
    kind = c.draw.choice(["missing", "future", "ancient", "huge", *(["unknown_enum"] if "enum" in kinds else []),
                          *(["out_of_range", "nan"] if "float" in kinds else [])])
    if kind == "missing":
        f = c.draw.choice([f for f in c.family.fields if f.required])
        table = records_to_table(c.family, rows)
        table = table.drop_columns([f.name]) if c.draw.integer(0, 1) else table.set_column(
            table.schema.get_field_index(f.name), f.name, pa.nulls(n, f.arrow_type))
        return arrow_stream(table), (MISSING_FIELD,) * n
    reason = {"unknown_enum": UNKNOWN_ENUM, "out_of_range": OUT_OF_RANGE, "nan": OUT_OF_RANGE,
              "future": FUTURE_TIME, "ancient": TOO_OLD, "huge": OVERSIZED}[kind]
    for row in rows:
        if kind == "unknown_enum":
            f = c.field(["enum"])
            value: Any = c.draw.text(1, 20) + "?"
        elif kind == "out_of_range":
            f = c.field(["int", "float"], ranged=True)
            value = -1 if f is not None and f.min == 0 else 10**9
        elif kind == "nan":
            f = c.field(["float"])
            value = c.draw.choice([float("nan"), float("inf"), float("-inf")])
        elif kind == "future":
            f, value = c.family.field("event_time"), c.draw.integer(c.now_ms + DAY_MS, YEAR_9999_MS)
        elif kind == "ancient":
            f, value = c.family.field("event_time"), c.draw.integer(0, YEAR_2000_MS - 1)
        else:
            f = c.field(["str"])
            value = "y" * (f.max_len + 1) if f is not None else None
        assert f is not None
        row[f.name] = value
    return arrow_stream(records_to_table(c.family, rows)), (reason,) * n


ARROW_DEFECTS: dict[str, Defect] = {
    "arrow_truncated": _arrow_truncated, "arrow_trailing_bytes": _arrow_trailing, "arrow_garbage": _arrow_garbage,
    "arrow_wrong_column_type": _arrow_wrong_column,
}


# Defects that need a field of some kind (filings have no number, the network no enum).
NEEDS: dict[str, tuple[str, ...]] = {"nan_inf": ("float",), "number_overflow": ("float", "int"),
                                     "out_of_range": ("float", "int"), "unknown_enum": ("enum",)}


def defects_for(family: Family) -> list[str]:
    kinds = {f.kind for f in family.fields}
    return [name for name in (*JSON_DEFECTS, *ARROW_DEFECTS, "arrow_bad_rows")
            if not set(NEEDS.get(name, ())).isdisjoint(kinds) or name not in NEEDS]


def hostile(draw: Draw, family: Family, n: int, time_ms: int, now_ms: int, defect: str | None = None) -> Hostile:
    """The n-th hostile message of a stream (ids `fz-<n>...` never collide with real events)."""
    c = Context(draw, family, f"fz-{n}", time_ms, now_ms)
    defect = defect or draw.choice(defects_for(family))
    key = draw.choice([None, b"fz", f"fz-key-{n % 7}".encode()])
    if defect == "arrow_bad_rows":
        value, reasons = arrow_bad_rows(c)
        return Hostile(family, defect, value, key, True, reasons)
    arrow = defect in ARROW_DEFECTS
    value, reason = (ARROW_DEFECTS if arrow else JSON_DEFECTS)[defect](c)
    return Hostile(family, defect, value, key, arrow, (reason,))


def duplicate_of(family: Family, message: bytes, key: bytes | None) -> Hostile:
    """A second delivery of an event already seen: dead-lettered as a duplicate, never counted twice."""
    return Hostile(family, "duplicate_id", message, key, False, (DUPLICATE,))
