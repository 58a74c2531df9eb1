"""Replay a recorded or simulated load (one Parquet file per topic) into Kafka in event-time order.

Two wire formats (DESIGN.md s.4): one JSON object per message (default), or Arrow IPC streams of
up to `batch` events per message, marked by a `content-type` header. Keys follow the contract:
JSON messages are keyed by the entity (center, agency, node) and partitioned by Kafka's murmur2
like every Java/aiokafka producer; an Arrow message holds events of one partition only, so an
entity's events still all land on one partition.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from aiokafka.partitioner import murmur2
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from models.events import ARROW_CONTENT_TYPE, ARROW_CONTENT_TYPE_HEADER, FAMILIES
from models.schema import Family, table_to_json_messages
from models.settings import Settings, bootstrap_servers


@dataclass
class Outgoing:
    topic: str
    value: bytes
    key: bytes | None
    partition: int  # -1: let the producer's murmur2 partitioner choose from the key
    event_time_ms: int
    events: int
    headers: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class ReplaySummary:
    events: dict[str, int]
    messages: int
    seconds: float

    @property
    def total(self) -> int:
        return sum(self.events.values())


def load_recording(directory: Path) -> dict[Family, pa.Table]:
    """The family tables found in DIR (`<topic>.parquet`), each sorted by event time."""
    tables = {}
    for family in FAMILIES.values():
        path = directory / f"{family.topic}.parquet"
        if path.exists():
            table = pq.read_table(path, schema=family.schema)
            tables[family] = table.take(pc.sort_indices(table, [("event_time", "ascending")]))
    if not tables:
        raise FileNotFoundError(
            f"no <topic>.parquet files in {directory}; write some with `ioc simulate --out {directory}`"
        )
    return tables


def kafka_partition(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner (murmur2, positive, modulo), as Java and aiokafka compute it."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def _times_ms(table: pa.Table) -> np.ndarray:
    return pc.cast(table.column("event_time"), pa.int64()).to_numpy()


def json_messages(tables: dict[Family, pa.Table]) -> Iterator[Outgoing]:
    """Every event as one JSON message, all topics merged in event-time order."""
    encoded = {f: table_to_json_messages(f, t) for f, t in tables.items()}
    keys = {f: [k.encode() for k in t.column(f.key_field).to_pylist()] for f, t in tables.items()}
    families = list(tables)
    times = np.concatenate([_times_ms(tables[f]) for f in families])
    which = np.concatenate([np.full(tables[f].num_rows, i, dtype=np.int32) for i, f in enumerate(families)])
    row = np.concatenate([np.arange(tables[f].num_rows) for f in families])
    for i in np.argsort(times, kind="stable"):
        f = families[which[i]]
        r = row[i]
        yield Outgoing(f.topic, encoded[f][r], keys[f][r], -1, int(times[i]), 1)


def arrow_messages(tables: dict[Family, pa.Table], batch: int, partitions: dict[str, int]) -> Iterator[Outgoing]:
    """Arrow IPC messages of <= `batch` events, one partition each, merged by first event time."""
    out: list[Outgoing] = []
    for family, table in tables.items():
        n_parts = partitions[family.topic]
        keys = table.column(family.key_field).combine_chunks().dictionary_encode()
        part_of_key = np.array([kafka_partition(k.encode(), n_parts) for k in keys.dictionary.to_pylist()])
        part = part_of_key[keys.indices.to_numpy()]
        times = _times_ms(table)
        for p in range(n_parts):
            rows = np.flatnonzero(part == p)
            for start in range(0, len(rows), batch):
                chunk = table.take(pa.array(rows[start : start + batch]))
                sink = pa.BufferOutputStream()
                with pa.ipc.new_stream(sink, family.schema) as writer:
                    writer.write_table(chunk)
                out.append(Outgoing(family.topic, sink.getvalue().to_pybytes(), None, p,
                                    int(times[rows[start]]), chunk.num_rows,
                                    [(ARROW_CONTENT_TYPE_HEADER, ARROW_CONTENT_TYPE)]))
    out.sort(key=lambda m: m.event_time_ms)
    yield from out


def make_producer(broker_url: str, settings: Settings):  # type: ignore[no-untyped-def]
    from confluent_kafka import Producer

    return Producer({
        **settings.kafka_client_config(bootstrap_servers(broker_url)),
        "partitioner": "murmur2_random",  # the Java/aiokafka partitioner: same key, same partition
        "linger.ms": 20,
        "batch.size": 1_000_000,
        "message.max.bytes": settings.max_arrow_batch_bytes,
        "queue.buffering.max.messages": 1_000_000,
    })


def replay_dir(directory: Path, broker_url: str, speed: float = 0.0, fmt: str = "json", batch: int = 10_000,
               settings: Settings | None = None, progress: bool = True) -> ReplaySummary:
    """Produce DIR's events to the broker. speed: N x real time (event-time gaps / N); 0 = max."""
    settings = settings or Settings.from_env()
    tables = load_recording(directory)
    producer = make_producer(broker_url, settings)
    if fmt == "arrow":
        meta = producer.list_topics(timeout=10)
        parts = {f.topic: len(meta.topics[f.topic].partitions) for f in tables}
        if any(n == 0 for n in parts.values()):
            raise RuntimeError(f"topics missing on {broker_url}: run `ioc broker up` (it creates them)")
        messages = arrow_messages(tables, batch, parts)
    elif fmt == "json":
        messages = json_messages(tables)
    else:
        raise ValueError(f"unknown format {fmt!r}: json or arrow")

    total = sum(t.num_rows for t in tables.values())
    counts = {f.topic: 0 for f in tables}
    errors: list[str] = []

    def on_delivery(err: object, _msg: object) -> None:
        if err is not None:
            errors.append(str(err))

    started = time.monotonic()
    first_event_ms: int | None = None
    sent = n_messages = 0
    with Progress(TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                  TimeElapsedColumn(), disable=not progress) as bar:
        task = bar.add_task("replay", total=total, rate="")
        for m in messages:
            if speed > 0:
                first_event_ms = m.event_time_ms if first_event_ms is None else first_event_ms
                ahead = (m.event_time_ms - first_event_ms) / 1000 / speed - (time.monotonic() - started)
                if ahead > 0:
                    producer.poll(0)
                    time.sleep(ahead)
            _produce(producer, m, on_delivery)
            counts[m.topic] += m.events
            sent += m.events
            n_messages += 1
            if n_messages % 5000 == 0:
                producer.poll(0)
                bar.update(task, completed=sent, rate=f"{sent / max(time.monotonic() - started, 1e-9):,.0f} ev/s")
        remaining = producer.flush(120)
        bar.update(task, completed=sent, rate=f"{sent / max(time.monotonic() - started, 1e-9):,.0f} ev/s")
    if remaining or errors:
        raise RuntimeError(f"replay incomplete: {remaining} messages unsent, {len(errors)} delivery errors "
                           f"(first: {errors[:1]})")
    summary = ReplaySummary(counts, n_messages, time.monotonic() - started)
    if progress:
        print(f"replayed {summary.total:,} events in {n_messages:,} messages to {broker_url} "
              f"in {summary.seconds:.1f}s ({summary.total / max(summary.seconds, 1e-9):,.0f} events/s)")
    return summary


def _produce(producer, m: Outgoing, on_delivery) -> None:  # type: ignore[no-untyped-def]
    kwargs = {"key": m.key, "value": m.value, "headers": m.headers, "on_delivery": on_delivery}
    if m.partition >= 0:
        kwargs["partition"] = m.partition
    while True:
        try:
            producer.produce(m.topic, **kwargs)
            return
        except BufferError:  # local queue full: let librdkafka drain it, then retry
            producer.poll(0.05)
