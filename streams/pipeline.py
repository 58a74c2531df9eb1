"""One family's processing, per Kafka partition: decode -> validate -> dedupe -> window -> outputs.

No Faust here: `FamilyPipeline.process(batch)` takes a columnar `MessageBatch` and returns the
rows to write (raw events, windows, sessions, late events, dead letters) and the *signals* for the
incident engine (the emitted windows with the partition's watermark, streams.signals), so it is
tested without a broker and the Faust agent (`streams.app`) stays a thin loop.

State is per partition (`PartitionState`): the windowing engine, recently seen event ids and the
next offset to process. An entity is keyed to one partition, so its windows
live in exactly one state. A state is checkpointed with its offset (`streams.checkpoints`): after
a crash the worker restores it and skips offsets below it, so every event counts exactly once.
"""

from __future__ import annotations

import io
import logging
import pickle
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from models.schema import UNDECODABLE
from models.settings import Settings
from streams.arrays import unique_sorted
from streams.checkpoints import Cut
from streams.decode import DeadLetter, Decoded, MessageBatch, decode_batch, parse_batch
from streams.seen_ids import SeenIds
from streams.specs import SPECS
from streams.window_engine import END_OF_STREAM
from streams.windows import Emitted, WindowEngine, WindowSpec

log = logging.getLogger(__name__)
TS = pa.timestamp("ms", tz="UTC")
DEADLETTER_SCHEMA = pa.schema([
    ("source_topic", pa.string()), ("partition", pa.uint32()), ("offset", pa.uint64()), ("reason", pa.string()),
    ("detail", pa.string()), ("payload_bytes", pa.uint32()), ("received_at", TS),
])


class _Retired:
    """Stands in for a class a checkpoint names that no longer exists; its state is dropped."""

    def __setstate__(self, state: object) -> None:
        pass


class _CheckpointUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> type:
        # States held alert detectors (streams.alerts) until incidents replaced them (streams.incidents):
        # such checkpoints still restore, without them.
        if module == "streams.alerts":
            return _Retired
        return super().find_class(module, name)


@dataclass
class PartitionState:
    engine: WindowEngine
    seen: SeenIds
    next_offset: int = 0  # the first offset not yet reflected in this state

    def snapshot(self) -> bytes:
        """The state as bytes, stored in ClickHouse by the worker's own credentials only. The seen
        ids go apart, as deltas (`SeenIds.unsaved`, streams.checkpoints)."""
        return pickle.dumps(replace(self, seen=self.seen.without_ids()), protocol=pickle.HIGHEST_PROTOCOL)

    def cut(self) -> Cut:
        """This state for a checkpoint: the blob, and the seen ids not stored yet (`mark_stored` after)."""
        return Cut(self.next_offset, self.snapshot(), self.seen.unsaved(),
                   {b: len(ids) for b, ids in self.seen.buckets.items()})

    def mark_stored(self, cut: Cut) -> None:
        self.seen.mark_saved(cut.id_counts)

    @staticmethod
    def restore(blob: bytes, next_offset: int, stored_ids: Callable[[int], dict[int, pa.Array]]) -> PartitionState:
        """A checkpoint's state with its seen ids: `stored_ids(oldest bucket)` loads them
        (streams.checkpoints.load_seen_ids)."""
        state = _CheckpointUnpickler(io.BytesIO(blob)).load()
        if not isinstance(state, PartitionState):
            raise TypeError("checkpoint does not hold a PartitionState")
        state.__dict__.pop("alerts", None)
        state.next_offset = next_offset
        state.seen.restore_saved(stored_ids(state.seen.oldest_bucket))
        return state


@dataclass(frozen=True)
class Signal:
    """What the incident engine hears from one partition: its windows emitted by a batch (maybe none)
    and its watermark, i.e. every window of the partition ending by then has been sent."""

    family: str
    partition: int
    watermark_ms: int | None
    windows: pa.Table
    partitions: int = 1  # of the source topic: the incident engine waits for each (or its idleness)


@dataclass
class Outputs:
    """What one batch produced, as (ClickHouse table, Arrow rows) pairs plus Kafka side outputs."""

    rows: list[tuple[str, pa.Table]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)  # to the incident stage (streams.signals)
    alerts: list[dict[str, object]] = field(default_factory=list)  # incidents opened/resolved, for ioc.alerts
    messages_in: int = 0  # Kafka messages (an Arrow message holds many events)
    events_valid: int = 0
    windows_out: int = 0
    late: int = 0
    skipped: int = 0  # messages already in a restored checkpoint

    @property
    def events_in(self) -> int:
        """Events seen: valid ones plus everything dead-lettered."""
        return self.events_valid + len(self.dead)


class Stage(Protocol):
    """What the worker's hot path and its checkpoints need of a pipeline: a family's (FamilyPipeline) or
    the incident stage's (streams.signals.IncidentPipeline). States have a `next_offset` and `cut()`."""

    partitions: dict[int, Any]

    @property
    def family_name(self) -> str: ...

    def new_state(self) -> Any: ...

    def restore(self, blob: bytes, next_offset: int, stored_ids: Callable[[int], dict[int, pa.Array]]) -> Any: ...

    def parse_ahead(self, batch: MessageBatch, pool: Executor) -> None: ...

    def process(self, batch: MessageBatch, now_ms: int | None = None) -> Outputs: ...

    def emit_pending(self, state: Any) -> Outputs: ...


@dataclass
class FamilyPipeline:
    spec: WindowSpec
    settings: Settings
    partitions: dict[int, PartitionState] = field(default_factory=dict)
    # Per partition, the minute of the watermark last signalled: a batch that emits no window still
    # signals once its watermark enters a new minute, so the incident engine's clock moves on.
    signalled_minute: dict[int, int] = field(default_factory=dict)

    @property
    def family_name(self) -> str:
        return self.spec.family.name

    def new_state(self) -> PartitionState:
        lateness_ms = self.settings.allowed_lateness_s * 1000
        return PartitionState(
            engine=WindowEngine.from_settings(self.spec, self.settings),
            seen=SeenIds(keep_ms=2 * lateness_ms + 60_000),
        )

    def restore(self, blob: bytes, next_offset: int, stored_ids: Callable[[int], dict[int, pa.Array]]
                ) -> PartitionState:
        return PartitionState.restore(blob, next_offset, stored_ids)

    def state(self, partition: int) -> PartitionState:
        if partition not in self.partitions:
            self.partitions[partition] = self.new_state()
        return self.partitions[partition]

    def parse_ahead(self, batch: MessageBatch, pool: Executor) -> None:
        """Start reading the batch's messages on `pool` while earlier batches are processed.

        Batches are processed one at a time, in order (their effects on windows, seen ids and
        checkpoints depend on it), but reading a message depends on its bytes only: pyarrow's JSON
        and IPC readers release the GIL, so the next batches are read on the other cores meanwhile.
        `process` takes the result (or, if reading failed, reads again on its own path)."""
        s = self.settings
        batch.reading = pool.submit(parse_batch, self.spec.family, batch, s.max_message_bytes,
                                    s.max_arrow_batch_bytes)

    def process(self, batch: MessageBatch, now_ms: int | None = None) -> Outputs:
        """A batch of one topic's messages (any partitions, offset order within each)."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        out = Outputs(messages_in=len(batch))
        for partition in unique_sorted(batch.partitions):
            state = self.state(int(partition))
            mine = batch.partitions == partition
            fresh = mine & (batch.offsets >= state.next_offset)
            out.skipped += int(mine.sum() - fresh.sum())
            if not fresh.any():
                continue
            if fresh.all():  # the common case: one partition's fetch, nothing to skip
                part = batch
            else:  # re-delivered offsets (after a restore or a rebalance): a rare case, read again
                batch.drop_reading()
                part = batch.take(np.flatnonzero(fresh))
            self._process_partition(int(partition), state, part, now_ms, out)
            state.next_offset = int(part.offsets.max()) + 1
        return out

    def _process_partition(self, partition: int, state: PartitionState, batch: MessageBatch, now_ms: int,
                           out: Outputs) -> None:
        decoded = self._decode(state, batch, now_ms)
        out.dead.extend(decoded.dead)
        events = decoded.events
        out.events_valid += events.num_rows
        emitted = state.engine.ingest_table(events, now_ms)
        if len(emitted.rejected_rows):  # the engine's own guard (future time); decode catches these first
            bad = np.zeros(events.num_rows, dtype=bool)
            bad[emitted.rejected_rows] = True
            for row, reason in zip(emitted.rejected_rows.tolist(), emitted.rejected_reasons, strict=True):
                out.dead.append(DeadLetter(self.spec.family.topic, int(decoded.partitions[row]),
                                           int(decoded.offsets[row]), reason, "event_time", b""))
            events = events.filter(pa.array(~bad))
        out.rows.append((f"raw_{self.family_name}", events))
        self._window_outputs(partition, state, emitted, out)

    def _decode(self, state: PartitionState, batch: MessageBatch, now_ms: int) -> Decoded:
        """Decode a batch; if the decoder itself fails, decode message by message and dead-letter the
        ones it fails on.

        An exception escaping here made Faust restart the agent and the whole fetch vanished: its
        offsets were passed over by the next batch and checkpointed (the fuzzer found three such
        inputs, fixed in streams.decode / models.schema). A decoder bug not found yet costs the
        messages that trigger it, as dead letters with their bytes, instead of the batch.
        """
        s = self.settings
        args = (now_ms, s.max_future_skew_s * 1000, s.max_message_bytes, s.max_arrow_batch_bytes, state.seen)
        seen = (dict(state.seen.buckets), state.seen.max_time_ms, dict(state.seen.saved))  # a few buckets: cheap
        try:
            return decode_batch(self.spec.family, batch, *args, parsed=batch.read_ahead())
        except Exception:
            log.exception("%s: decoding a batch of %d messages failed; isolating the culprit",
                          self.family_name, len(batch))
        state.seen.buckets, state.seen.max_time_ms, state.seen.saved = seen  # the failed attempt's ids are not seen
        parts = []
        for i in range(len(batch)):
            one = batch.take(np.array([i]))
            try:
                parts.append(decode_batch(self.spec.family, one, *args))
            except Exception as exc:
                reason = f"decoder error: {type(exc).__name__}: {exc}"[:300]
                dead = DeadLetter(self.spec.family.topic, int(one.partitions[0]), int(one.offsets[0]), UNDECODABLE,
                                  reason, one.values[0] or b"")
                parts.append(Decoded(self.spec.family.schema.empty_table(), one.partitions[:0], one.offsets[:0],
                                     [dead]))
        return Decoded(pa.concat_tables([d.events for d in parts]), np.concatenate([d.partitions for d in parts]),
                       np.concatenate([d.offsets for d in parts]), [x for d in parts for x in d.dead])

    def _window_outputs(self, partition: int, state: PartitionState, emitted: Emitted, out: Outputs) -> None:
        watermark = state.engine.watermark_ms
        if watermark is not None and watermark >= END_OF_STREAM:
            watermark = None  # closed at the end of a stream: nothing about how far event time got
        minute = -1 if watermark is None else watermark // 60_000
        if emitted.windows.num_rows or minute > self.signalled_minute.get(partition, -1):
            out.signals.append(Signal(self.family_name, partition, watermark, emitted.windows,
                                      self.settings.topic_partitions))
            self.signalled_minute[partition] = minute
        if emitted.windows.num_rows:
            out.rows.append((f"agg_{self.family_name}", emitted.windows))
            out.windows_out += emitted.windows.num_rows
        if emitted.sessions is not None and emitted.sessions.num_rows:
            out.rows.append(("network_outages", emitted.sessions))
        if emitted.late.num_rows:
            out.rows.append(("late_events", emitted.late))
            out.late += emitted.late.num_rows

    def emit_pending(self, state: PartitionState) -> Outputs:
        """A quiet partition's open windows, emitted now (they stay open for late events)."""
        out = Outputs()
        partition = next(p for p, s in self.partitions.items() if s is state)
        self._window_outputs(partition, state, state.engine.flush(), out)
        return out

    def close_all(self) -> Outputs:
        """End of stream (a finished replay, tests): emit every open window of every partition."""
        out = Outputs()
        for partition, state in self.partitions.items():
            self._window_outputs(partition, state, state.engine.close_all(), out)
        return out


def deadletter_rows(dead: list[DeadLetter], now_ms: int) -> pa.Table:
    return pa.table({
        "source_topic": [d.topic for d in dead],
        "partition": pa.array([d.partition for d in dead], pa.uint32()),
        "offset": pa.array([d.offset for d in dead], pa.uint64()),
        "reason": [d.reason for d in dead],
        "detail": [d.detail[:500] for d in dead],
        "payload_bytes": pa.array([len(d.payload) for d in dead], pa.uint32()),
        "received_at": pa.array([now_ms] * len(dead), TS),
    }, schema=DEADLETTER_SCHEMA)


def pipelines(settings: Settings) -> dict[str, FamilyPipeline]:
    """One pipeline per family, by topic."""
    return {spec.family.topic: FamilyPipeline(spec, settings) for spec in SPECS.values()}



def arrow_messages_by_partition(family_table: pa.Table, key_field: str, partitions: int,
                                batch: int = 20_000) -> list[MessageBatch]:
    """A family table as the worker would receive it from Kafka: keyed to partitions, Arrow batches."""
    from simulators.replay import kafka_partition  # only offline loads need it

    keys = family_table.column(key_field).combine_chunks().dictionary_encode()
    part_of_key = np.array([kafka_partition(k.encode(), partitions) for k in keys.dictionary.to_pylist()])
    part = part_of_key[keys.indices.to_numpy()] if len(part_of_key) else np.zeros(0, np.int64)
    out = []
    for p in range(partitions):
        rows = np.flatnonzero(part == p)
        for offset, start in enumerate(range(0, len(rows), batch)):
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, family_table.schema) as writer:
                writer.write_table(family_table.take(pa.array(rows[start:start + batch])))
            out.append(MessageBatch([sink.getvalue().to_pybytes()], np.array([p], np.int32),
                                    np.array([offset], np.int64), np.array([True])))
    return out


def process_tables(tables: dict[str, pa.Table], settings: Settings, partitions: int = 4) -> list[Outputs]:
    """Run simulated or recorded tables through the pipelines without Kafka, partitioned as Kafka
    would, and close every window at the end: what a worker writes after a full replay."""
    outputs = []
    settings = replace(settings, topic_partitions=partitions)
    for pipeline in pipelines(settings).values():
        table = tables.get(pipeline.family_name)
        if table is None:
            continue
        for batch in arrow_messages_by_partition(table, pipeline.spec.family.key_field, partitions):
            outputs.append(pipeline.process(batch))
        outputs.append(pipeline.close_all())
    return outputs
