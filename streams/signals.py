"""The incident stage: the families' windows, repartitioned by province, judged by one engine.

Why a topic of its own: rules judge a province as a whole (the portal serves every agency, a node
outage cuts off communes whose windows live in other partitions), while the family pipelines each see
a share of the keys. Every family pipeline sends its emitted windows with its partition's watermark
(`streams.pipeline.Signal`) to `ioc.signals`, keyed by province, as one Arrow IPC stream per message
(schema metadata says which family and partition, and the watermark); the worker that owns a
province's `ioc.signals` partition runs its `IncidentEngine` (streams.incidents).

Delivery is the family pipelines' own: the engine's state is checkpointed with its `ioc.signals`
offset like any partition's (streams.recovery), incidents are versioned rows (a replay rewrites the
same versions), and a window a restarted family pipeline sends again is upserted, not added.
Transitions go to `ioc.alerts` at least once: a consumer keeps one message per (incident_id, event).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import pickle
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from models.events import SIGNALS_TOPIC
from models.reference import province_reference
from models.schema import UNDECODABLE
from models.settings import Settings
from sinks.tables import INCIDENTS
from streams.arrays import unique_sorted
from streams.checkpoints import Cut
from streams.decode import DeadLetter, MessageBatch
from streams.incidents import Changes, IncidentEngine, incident_message
from streams.pipeline import Outputs, Signal
from streams.rules import RuleSet, load_rules

log = logging.getLogger(__name__)
_FAMILY, _PARTITION, _WATERMARK, _PARTITIONS = b"ioc-family", b"ioc-source-partition", b"ioc-watermark", \
    b"ioc-source-partitions"


def signal_message(signal: Signal) -> bytes:
    """One signal as an Arrow IPC stream; what it is about rides in the schema metadata."""
    meta = {_FAMILY: signal.family.encode(), _PARTITION: str(signal.partition).encode(),
            _WATERMARK: b"" if signal.watermark_ms is None else str(signal.watermark_ms).encode(),
            _PARTITIONS: str(signal.partitions).encode()}
    table = signal.windows.replace_schema_metadata(meta)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def read_signal(value: bytes | None) -> Signal:
    """The signal in a message; ValueError for anything else."""
    if not value:
        raise ValueError("empty message")
    try:
        table = pa.ipc.open_stream(value).read_all()
        meta = table.schema.metadata or {}
        watermark = meta[_WATERMARK]
        return Signal(meta[_FAMILY].decode(), int(meta[_PARTITION]), int(watermark) if watermark else None,
                      table.replace_schema_metadata(None), int(meta.get(_PARTITIONS, b"1")))
    except (pa.ArrowException, KeyError, ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a signal: {type(exc).__name__}: {exc}") from None


def apply_signal(engine: IncidentEngine, signal: Signal, now_ms: int | None = None) -> Changes:
    """One signal into the engine; `now_ms` the wall clock live (None offline: no partition is quiet)."""
    if signal.family not in engine.families:
        raise ValueError(f"unknown family {signal.family!r}")
    return engine.ingest(signal.family, signal.partition, signal.watermark_ms,
                         signal.windows if signal.windows.num_rows else None, signal.partitions, now_ms)


@dataclass
class IncidentState:
    """One `ioc.signals` partition: the engine of the province keyed to it, and the next offset."""

    engine: IncidentEngine
    next_offset: int = 0

    def cut(self) -> Cut:
        return Cut(self.next_offset, pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL), {}, {})

    def mark_stored(self, cut: Cut) -> None:
        """Nothing kept apart (no seen ids): the whole state is in the blob."""


@dataclass
class IncidentPipeline:
    """The `ioc.signals` consumer, with the interface of a family pipeline for checkpoints and rebalances."""

    rules: RuleSet
    province: str
    partitions: dict[int, IncidentState] = field(default_factory=dict)
    family_name: str = "incidents"

    def new_state(self) -> IncidentState:
        return IncidentState(IncidentEngine.create(self.rules, province_reference(self.province), self.province))

    def restore(self, blob: bytes, next_offset: int, _ids: Callable[[int], object]) -> IncidentState:
        state = pickle.loads(blob)
        if not isinstance(state, IncidentState):
            raise TypeError("checkpoint does not hold an IncidentState")
        state.engine.reconfigure(self.rules)  # the rules file may have changed across the restart
        state.next_offset = next_offset
        return state

    def parse_ahead(self, batch: MessageBatch, pool: Executor) -> None:
        """Nothing to read ahead: a few signals per fetch, each read where it is applied."""

    def process(self, batch: MessageBatch, now_ms: int | None = None) -> Outputs:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        out = Outputs(messages_in=len(batch))
        for partition in unique_sorted(batch.partitions):
            state = self.partitions.setdefault(int(partition), self.new_state())
            mine = batch.partitions == partition
            fresh = np.flatnonzero(mine & (batch.offsets >= state.next_offset))
            out.skipped += int(mine.sum()) - len(fresh)  # below a restored checkpoint: already judged
            for i in fresh:
                try:
                    changes = apply_signal(state.engine, read_signal(batch.values[i]), now_ms)
                except ValueError as exc:  # never from our own pipelines: counted and kept, never a crash
                    out.dead.append(DeadLetter(SIGNALS_TOPIC, int(partition), int(batch.offsets[i]), UNDECODABLE,
                                               str(exc)[:300], batch.values[i] or b""))
                    continue
                add_changes(out, changes)
                out.events_valid += 1
            state.next_offset = max(state.next_offset, int(batch.offsets[mine].max()) + 1)
        return out

    def emit_pending(self, state: IncidentState, now_ms: int | None = None) -> Outputs:
        """The signals paused (the worker's idle flush): judge what the quiet partitions allow."""
        out = Outputs()
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        add_changes(out, state.engine.signals_paused(now_ms))
        return out


def add_changes(out: Outputs, changes: Changes) -> None:
    if changes.rows:
        out.rows.append((INCIDENTS, changes.table()))
    out.alerts.extend(incident_message(t) for t in changes.transitions)


def incident_pipeline(settings: Settings) -> IncidentPipeline:
    """The incident stage of a worker; the rules are read (and checked) here, before the worker joins."""
    return IncidentPipeline(load_rules(settings.rules_file or None), settings.province)


def as_live(signal: Signal) -> list[Signal]:
    """An offline signal (a batch of hours of events) as a live worker would have sent it: the windows
    ending at each window end, with that end as watermark, then the batch's own watermark."""
    if not signal.windows.num_rows or signal.watermark_ms is None:
        return [signal]
    windows = signal.windows.sort_by("window_end")
    ends = pc.cast(windows.column("window_end"), pa.int64()).to_numpy(zero_copy_only=False)
    cuts = [0, *(np.flatnonzero(np.diff(ends)) + 1).tolist(), len(ends)]
    out = [dataclasses.replace(signal, watermark_ms=int(ends[a]), windows=windows.slice(a, b - a))
           for a, b in itertools.pairwise(cuts)]
    return [*out, dataclasses.replace(signal, windows=windows.slice(0, 0))]


def replay_signals(outputs: Iterable[Outputs], rules: RuleSet | None = None, province: str = "QNG") -> Outputs:
    """The incident stage over outputs of `streams.pipeline.process_tables`, without Kafka: the signals
    cut as a live worker sends them (`as_live`), in watermark order (every partition moving on
    together), then the rest evaluated. Live, a window reaches the engine once its partition's watermark
    passed its end, i.e. with the next event; here exactly at its end."""
    engine = IncidentEngine.create(rules or load_rules(), province_reference(province), province)
    out = Outputs()
    for signal in live_signals(outputs):
        add_changes(out, apply_signal(engine, signal))
    add_changes(out, engine.finish())
    return out


def process_offline(tables: dict[str, pa.Table], settings: Settings, partitions: int = 4) -> list[Outputs]:
    """`process_tables` and then the incident stage over its signals: everything a worker writes after
    a full replay of the tables, incidents included (the last Outputs)."""
    from streams.pipeline import process_tables

    outputs = process_tables(tables, settings, partitions)
    rules = load_rules(settings.rules_file or None)
    return [*outputs, replay_signals(outputs, rules, settings.province)]


def live_signals(outputs: Iterable[Outputs]) -> list[Signal]:
    """The outputs' signals as live workers would send them (`as_live`), in watermark order."""
    signals = [live for out in outputs for s in out.signals for live in as_live(s)]
    return sorted(signals, key=lambda s: (s.watermark_ms is None, s.watermark_ms or 0))


def latest_incidents(out: Outputs) -> pa.Table:
    """Each incident once, at its highest version (what `incidents FINAL` reads)."""
    parts = [t for name, t in out.rows if name == INCIDENTS]
    if not parts:
        from streams.incidents import INCIDENT_SCHEMA

        return INCIDENT_SCHEMA.empty_table()
    table = pa.concat_tables(parts).sort_by([("incident_id", "ascending"), ("version", "descending")])
    ids = table.column("incident_id").to_numpy(zero_copy_only=False)
    first = np.ones(len(ids), dtype=bool)
    first[1:] = ids[1:] != ids[:-1]
    return table.filter(pa.array(first))
