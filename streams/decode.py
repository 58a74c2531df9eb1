"""Decode a batch of Kafka messages into one Arrow table of valid events, and dead letters for the rest.

Hot path: every JSON message of a batch is parsed by one pyarrow C++ call and validated by one
compute kernel per rule; Arrow IPC messages (bulk producers) are read zero-copy. Per-message
Python work happens only when a batch holds bad input: bisection then isolates the bad messages
in O(bad x log n) decoder calls, so one poisoned message costs a few extra calls, not a slow path
for the whole batch. Nothing is dropped silently: every rejected message becomes a `DeadLetter`.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from models.events import ARROW_CONTENT_TYPE, ARROW_CONTENT_TYPE_HEADER
from models.schema import (
    DUPLICATE,
    OVERSIZED,
    UNDECODABLE,
    WRONG_TYPE,
    Family,
    Rejection,
    decode_json_batch,
    validate_record,
    validation_mask,
)
from streams.seen_ids import SeenIds  # also here: checkpoints pickled before it moved name streams.decode.SeenIds


def is_arrow_message(headers: Sequence[tuple[str, bytes]] | None) -> bool:
    return bool(headers) and any(k == ARROW_CONTENT_TYPE_HEADER and v == ARROW_CONTENT_TYPE for k, v in headers)


@dataclass
class MessageBatch:
    """A batch of Kafka messages of one topic, columnar: Python touches each message once, to build it."""

    values: list[bytes | None]
    partitions: np.ndarray  # int32
    offsets: np.ndarray  # int64
    arrow: np.ndarray  # bool: value is an Arrow IPC stream (header marked)
    reading: Future[Parsed] | None = None  # these very messages being read ahead (FamilyPipeline.parse_ahead)

    @classmethod
    def of(cls, messages: Sequence[tuple[bytes | None, int, int, Sequence[tuple[str, bytes]] | None]]) -> MessageBatch:
        """From (value, partition, offset, headers) tuples."""
        n = len(messages)
        return cls(
            [m[0] for m in messages],
            np.fromiter((m[1] for m in messages), dtype=np.int32, count=n),
            np.fromiter((m[2] for m in messages), dtype=np.int64, count=n),
            np.fromiter((is_arrow_message(m[3]) for m in messages), dtype=bool, count=n),
        )

    @classmethod
    def of_partition(cls, partition: int, values: list[bytes | None], offsets: Sequence[int],
                     headers: Sequence[Sequence[tuple[str, bytes]] | None]) -> MessageBatch:
        """One partition's fetch; headers are only inspected when some message has any."""
        n = len(values)
        arrow = (np.fromiter(map(is_arrow_message, headers), dtype=bool, count=n) if any(headers)
                 else np.zeros(n, dtype=bool))
        return cls(values, np.full(n, partition, dtype=np.int32), np.fromiter(offsets, dtype=np.int64, count=n),
                   arrow)

    def __len__(self) -> int:
        return len(self.values)

    def read_ahead(self) -> Parsed | None:
        """The messages as read ahead on a parse thread; None if they were not, or the read was
        cancelled (the worker stopping). A read that failed raises its error here."""
        if self.reading is None:
            return None
        try:
            return self.reading.result()
        except CancelledError:
            return None

    def drop_reading(self) -> None:
        """The read ahead will not be used (re-delivered offsets, a revoked partition): stop it if it has
        not started."""
        if self.reading is not None:
            self.reading.cancel()

    def take(self, idx: np.ndarray) -> MessageBatch:
        """The messages at these positions, as their own batch (read again: a read-ahead is of the whole)."""
        return MessageBatch([self.values[i] for i in idx], self.partitions[idx], self.offsets[idx], self.arrow[idx])


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    reason: str
    detail: str
    payload: bytes


@dataclass
class Decoded:
    events: pa.Table  # valid, de-duplicated events in message order (family schema)
    partitions: np.ndarray  # per event: its Kafka partition
    offsets: np.ndarray  # per event: its message offset
    dead: list[DeadLetter] = field(default_factory=list)


def _json_table(family: Family, values: list[bytes]) -> tuple[pa.Table, list[int], list[tuple[int, Rejection]]]:
    """Decode JSON messages; returns the good rows, their message indices, and rejected indices."""
    good: list[pa.Table] = []
    good_idx: list[int] = []
    bad: list[tuple[int, Rejection]] = []
    pending = [(0, len(values))]
    while pending:  # bisection: whole batch first, halves only where the decoder refuses
        lo, hi = pending.pop()
        try:
            table = decode_json_batch(family, values[lo:hi])
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            if hi - lo == 1:
                bad.append((lo, _why_undecodable(family, values[lo], exc)))
            else:
                mid = (lo + hi) // 2
                pending += [(mid, hi), (lo, mid)]  # popped low half first: offset order is kept
            continue
        good.append(table)
        good_idx.extend(range(lo, hi))
    events = pa.concat_tables(good) if good else family.schema.empty_table()
    return events, good_idx, bad


def _why_undecodable(family: Family, value: bytes, exc: Exception) -> Rejection:
    try:
        record = orjson.loads(value)
    except orjson.JSONDecodeError as decode_error:
        return Rejection(UNDECODABLE, "", str(decode_error)[:200])
    # Far-future or hostile values are judged by the same rules as the vectorized path.
    rejection = validate_record(family, record, now_ms=2**62, max_future_skew_ms=0)
    if rejection is not None and rejection.reason != "future_time":
        return rejection
    return Rejection(WRONG_TYPE, "", str(exc)[:200])


# What every Arrow IPC stream writer (pyarrow, Java, Rust, Go; format >= 0.15) writes on close.
_ARROW_EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"


def _arrow_table(family: Family, value: bytes) -> pa.Table:
    """An Arrow IPC batch conformed to the family schema: absent optional columns become nulls.

    Hostile or damaged streams must fail here, as a whole (found by tests/test_reliability_fuzz.py):
    - a stream cut at a message boundary reads without error but holds only the batches before the
      cut, so the rest would vanish without a dead letter: the end-of-stream marker is required;
    - the reader checks structure, not content: flipped bytes give strings that are not UTF-8 (or
      offsets past their buffers), which would reach keys, ClickHouse and every reader downstream:
      a full validation rejects them.
    """
    if not value.endswith(_ARROW_EOS):
        raise pa.ArrowInvalid("no end-of-stream marker (truncated or trailing bytes)")
    table = pa.ipc.open_stream(pa.py_buffer(value)).read_all()  # over the bytes themselves: no copy, no GIL
    table.validate(full=True)
    columns = []
    for f in family.fields:
        if f.name not in table.schema.names:
            columns.append(pa.nulls(table.num_rows, f.arrow_type))
            continue
        column = table.column(f.name)
        if not _same_kind(f.kind, column.type):
            raise WrongColumnType(Rejection(WRONG_TYPE, f.name, f"{column.type} column where {f.kind} is expected"))
        columns.append(column.cast(f.arrow_type))
    return pa.Table.from_arrays(columns, schema=family.schema)


class WrongColumnType(ValueError):
    """An Arrow batch whose column holds another kind of value than its field (a whole-message rejection)."""

    def __init__(self, rejection: Rejection):
        super().__init__(str(rejection))
        self.rejection = rejection


def _same_kind(kind: str, type_: pa.DataType) -> bool:
    """Whether an Arrow column type carries the field's kind of value (any width, unit or encoding).

    Casting alone would accept what the JSON path rejects as wrong_type: ints as strings ("5"), bools
    as 0/1, an int64 column as milliseconds since 1970. The rules match JSON's: a number may fill a
    float field, nothing else crosses kinds; an all-null column fits any field.
    """
    if pa.types.is_dictionary(type_):
        type_ = type_.value_type
    if pa.types.is_null(type_):
        return True
    if kind in ("str", "enum"):
        return pa.types.is_string(type_) or pa.types.is_large_string(type_) or pa.types.is_string_view(type_)
    if kind == "int":
        return pa.types.is_integer(type_)
    if kind == "float":
        return pa.types.is_integer(type_) or pa.types.is_floating(type_)
    if kind == "bool":
        return pa.types.is_boolean(type_)
    return pa.types.is_timestamp(type_)  # "time": any unit, with or without a zone (read as UTC)


@dataclass
class Parsed:
    """A batch's messages read into one table, before validation and the duplicate check.

    Reading depends on nothing but the bytes (sizes, Arrow and JSON decoding), so it may run on a
    parse thread ahead of the batch's turn (`FamilyPipeline.parse_ahead`); what follows depends on
    the partition's state and runs in offset order."""

    events: pa.Table  # decodable rows in message order (family schema), not yet validated
    row_msg: np.ndarray  # per row: the index of its message in the batch
    dead: list[DeadLetter] = field(default_factory=list)  # empty, oversized or undecodable messages


def _dead_letter(family: Family, batch: MessageBatch, i: int, why: Rejection, payload: bytes | None = None
                 ) -> DeadLetter:
    value = batch.values[i] or b""
    return DeadLetter(family.topic, int(batch.partitions[i]), int(batch.offsets[i]), why.reason,
                      str(why.field or why.detail), value if payload is None else payload)


def parse_batch(family: Family, batch: MessageBatch, max_message_bytes: int, max_arrow_bytes: int) -> Parsed:
    """Read every usable message of a batch: Arrow IPC streams zero-copy, JSON in one pyarrow call."""
    n = len(batch)
    dead: list[DeadLetter] = []
    values = batch.values
    if None in values:
        lengths = np.fromiter((-1 if v is None else len(v) for v in values), dtype=np.int64, count=n)
    else:  # the common case: one C-level pass
        lengths = np.fromiter(map(len, values), dtype=np.int64, count=n)  # type: ignore[arg-type]
    limit = np.where(batch.arrow, max_arrow_bytes, max_message_bytes)
    for i in np.flatnonzero(lengths < 0):
        dead.append(_dead_letter(family, batch, int(i), Rejection(UNDECODABLE, "", "empty message")))
    for i in np.flatnonzero(lengths > limit):
        dead.append(_dead_letter(family, batch, int(i), Rejection(OVERSIZED, "", f"{lengths[i]} bytes")))
    usable = (lengths >= 0) & (lengths <= limit)

    tables: list[pa.Table] = []
    origin: list[np.ndarray] = []  # per row: the index of its message in the batch
    for i in np.flatnonzero(usable & batch.arrow):
        try:
            table = _arrow_table(family, batch.values[i])  # type: ignore[arg-type]
        except WrongColumnType as exc:
            dead.append(_dead_letter(family, batch, int(i), exc.rejection))
            continue
        except Exception as exc:  # hostile bytes reach C++ readers: any error is the message's
            # Besides ArrowInvalid, damaged streams raise UnicodeDecodeError (a field name that is not
            # UTF-8), KeyError (a field name twice), ... (seen by the fuzzer): all mean "undecodable".
            why = Rejection(UNDECODABLE, "", f"broken Arrow batch: {type(exc).__name__}: {str(exc)[:160]}")
            dead.append(_dead_letter(family, batch, int(i), why))
            continue
        tables.append(table)
        origin.append(np.full(table.num_rows, i, dtype=np.int64))
    json_idx = np.flatnonzero(usable & ~batch.arrow)
    if len(json_idx):
        json_values = values if len(json_idx) == n else [values[i] for i in json_idx]
        table, good, bad = _json_table(family, json_values)  # type: ignore[arg-type]
        for j, why in bad:
            dead.append(_dead_letter(family, batch, int(json_idx[j]), why))
        tables.append(table)
        origin.append(json_idx[np.asarray(good, dtype=np.int64)])
    if not tables:
        return Parsed(family.schema.empty_table(), np.zeros(0, np.int64), dead)
    events = pa.concat_tables(tables)
    row_msg = np.concatenate(origin)
    if len(tables) > 1:  # mixed formats: restore message order
        order = np.argsort(row_msg, kind="stable")
        events, row_msg = events.take(pa.array(order)), row_msg[order]
    return Parsed(events, row_msg, dead)


def decode_batch(family: Family, batch: MessageBatch, now_ms: int, max_future_skew_ms: int,
                 max_message_bytes: int, max_arrow_bytes: int, seen: SeenIds | None = None,
                 parsed: Parsed | None = None) -> Decoded:
    """Valid events of a batch (in offset order per partition) and the dead letters.

    `parsed` is the batch already read by `parse_batch` (on a parse thread: the byte limits were applied
    there); without it the batch is read here. `Decoded.partitions` gives each valid event's partition,
    so callers can split per partition.
    """
    if parsed is None:
        parsed = parse_batch(family, batch, max_message_bytes, max_arrow_bytes)
    dead = list(parsed.dead)
    events, row_msg = parsed.events, parsed.row_msg
    if not events.num_rows:
        dead.sort(key=lambda d: (d.partition, d.offset))
        return Decoded(family.schema.empty_table(), np.zeros(0, np.int32), np.zeros(0, np.int64), dead)

    def row_rejected(row: int, why: Rejection) -> None:
        i = int(row_msg[row])
        dead.append(_dead_letter(family, batch, i, why, _row_payload(events, row) if batch.arrow[i] else None))

    ok, reasons = validation_mask(family, events, now_ms, max_future_skew_ms)
    for row in np.flatnonzero(~ok):
        row_rejected(int(row), reasons[row])
    if not ok.all():
        events, row_msg = events.filter(pa.array(ok)), row_msg[ok]

    if seen is not None and events.num_rows:
        times = pc.cast(events.column("event_time"), pa.int64()).to_numpy()
        fresh = seen.first_sightings(events.column("event_id").combine_chunks(), times)
        for row in np.flatnonzero(~fresh):
            row_rejected(int(row), Rejection(DUPLICATE, "event_id"))
        if not fresh.all():
            events, row_msg = events.filter(pa.array(fresh)), row_msg[fresh]
    dead.sort(key=lambda d: (d.partition, d.offset))
    return Decoded(events, batch.partitions[row_msg], batch.offsets[row_msg], dead)


def _row_payload(events: pa.Table, row: int) -> bytes:
    """One row of an Arrow batch, as its own Arrow IPC stream: the dead letter keeps exact data."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, events.schema) as writer:
        writer.write_table(events.slice(row, 1))
    return sink.getvalue().to_pybytes()
