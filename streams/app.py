"""The Faust worker: one app, one agent per event topic, batches in, ClickHouse out.

Data path per fetch: `BatchConsumer` (streams.transport) -> channel -> agent -> `FamilyPipeline`
(decode, validate, dedupe, window, alerts) -> `ClickHouseWriter` (buffered, retried, batched);
dead letters and alerts also go to their Kafka topics.

Delivery: outputs are idempotent in ClickHouse (ReplacingMergeTree on event id / window + key, and
window versions that grow with the events a window holds), and every `checkpoint_interval_s` the
worker cuts each partition's state with its next offset, flushes the writer, stores the states
(streams.checkpoints), then commits those offsets to Kafka; batches wait only for the cut. A
worker killed with SIGKILL restarts from its last checkpoint and skips offsets below it: the same
aggregates as an uninterrupted run.
If ClickHouse is down, the writer's buffer fills, the agents stop taking batches, the channels
fill, and the consumer stops fetching: consumption pauses instead of dropping.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import ssl
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import faust
import orjson
from faust.types import TP
from faust.types.auth import CredentialsT

from models.events import ALERTS_TOPIC, DEADLETTER_TOPIC, FAMILY_BY_TOPIC
from models.settings import Settings, bootstrap_servers
from sinks.client import connect
from sinks.migrate import migrate_client
from sinks.writer import ClickHouseWriter, SinkError
from streams.allocator import keep_freed_memory
from streams.checkpoints import (
    CHECKPOINT_TABLE,
    SEEN_IDS_TABLE,
    Cut,
    checkpoint_rows,
    load_checkpoints,
    load_seen_ids,
    seen_id_rows,
)
from streams.decode import MessageBatch
from streams.pipeline import FamilyPipeline, Outputs, PartitionState, deadletter_rows, pipelines
from streams.transport import BatchApp

log = logging.getLogger(__name__)


@dataclass
class WorkerStats:
    """What the demo's live view and `ioc worker` report (written to DATA_DIR/worker-<pid>.json)."""

    started_at: float = field(default_factory=time.time)
    messages_in: int = 0
    events_in: int = 0
    events_valid: int = 0
    windows_out: int = 0
    late: int = 0
    dead_letters: int = 0
    alerts: int = 0
    skipped: int = 0
    checkpoints: int = 0
    checkpoint_last_s: float = 0.0  # cut + ClickHouse writes + Kafka commit
    checkpoint_max_s: float = 0.0
    checkpoint_cut_last_s: float = 0.0  # the part batches wait for (states pickled under the lock)
    checkpoint_cut_max_s: float = 0.0
    sink_errors: int = 0
    lag: int = 0
    partitions: int = 0
    paused: bool = False
    last_error: str = ""
    per_topic: dict[str, int] = field(default_factory=dict)


class StreamWorker:
    """Owns the pipelines, the writer and the checkpoints; the Faust agents call `on_batch`."""

    def __init__(self, app: BatchApp, settings: Settings, writer: ClickHouseWriter, reader: Any) -> None:
        self.app, self.settings, self.writer, self.reader = app, settings, writer, reader
        self.group = app.conf.id
        self.pipelines: dict[str, FamilyPipeline] = pipelines(settings)
        self.stats = WorkerStats()
        self.last_event_at: dict[TP, float] = {}
        self.checkpointed: dict[TP, int] = {}  # next offset of each partition's last checkpoint
        self.end_offsets: dict[TP, int] = {}  # from the broker, while paused (see refresh_end_offsets)
        self.deadletter_topic = app.topic(DEADLETTER_TOPIC, key_serializer="raw", value_serializer="raw")
        self.alerts_topic = app.topic(ALERTS_TOPIC, key_serializer="raw", value_serializer="raw")
        self.lock = asyncio.Lock()  # batches, checkpoint cuts and rebalances never interleave
        self.checkpointing = asyncio.Lock()

    # ------------------------------------------------------------ the hot path

    async def on_batch(self, topic: str, batch: MessageBatch) -> None:
        async with self.lock:
            pipeline = self.pipelines[topic]
            owned = [int(p) for p in set(batch.partitions.tolist()) if int(p) in pipeline.partitions]
            if not owned:
                return  # revoked while queued: the new owner processes these from its checkpoint
            # CPU-bound (decode, windows): off the event loop, so Faust's timers and consumer keepalive run.
            out = await asyncio.get_running_loop().run_in_executor(None, pipeline.process, batch)
            await self._emit(topic, out)
            now = time.monotonic()
            for p in owned:
                self.last_event_at[TP(topic, p)] = now
        await self._wait_for_sink_room()

    async def _emit(self, topic: str, out: Outputs) -> None:
        now_ms = int(time.time() * 1000)
        rows = list(out.rows)
        if out.dead:
            rows.append(("deadletters", deadletter_rows(out.dead, now_ms)))
        self.writer.add_many([(table, data) for table, data in rows if data.num_rows])
        for d in out.dead:  # rare: bad input; the original bytes plus why, keyed by source topic
            await self.deadletter_topic.send(
                key=d.topic.encode(), value=d.payload,
                headers=[("ioc-source-topic", d.topic.encode()), ("ioc-partition", str(d.partition).encode()),
                         ("ioc-offset", str(d.offset).encode()), ("ioc-reason", d.reason.encode()),
                         ("ioc-detail", d.detail.encode()[:500])])
        if out.alerts is not None:
            for alert in out.alerts.to_pylist():
                alert["event_time"] = alert["event_time"].isoformat()
                await self.alerts_topic.send(key=alert["subject"].encode(), value=orjson.dumps(alert))
        s = self.stats
        s.messages_in += out.messages_in
        s.events_in += out.events_in
        s.events_valid += out.events_valid
        s.windows_out += out.windows_out
        s.late += out.late
        s.dead_letters += len(out.dead)
        s.alerts += 0 if out.alerts is None else out.alerts.num_rows
        s.skipped += out.skipped
        s.per_topic[topic] = s.per_topic.get(topic, 0) + out.events_in

    async def _wait_for_sink_room(self) -> None:
        """Backpressure: while the writer's buffer is over its bound, take no more batches."""
        while self.writer.should_pause:
            self.stats.paused = True
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.writer.flush)
            except SinkError as exc:
                self._sink_failed(exc)
                await asyncio.sleep(1.0)
        self.stats.paused = False

    def _sink_failed(self, exc: Exception) -> None:
        self.stats.sink_errors += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
        log.warning("ClickHouse unavailable, consumption paused until it is back: %s", exc)

    # ------------------------------------------------------------ checkpoints

    async def checkpoint(self, only: set[TP] | None = None) -> bool:
        """Flush outputs, store states with their offsets, then commit those offsets to Kafka.

        Batches wait only for the cut (the states pickled with their offsets, under the lock): the
        ClickHouse writes run while batches keep flowing. Holding the lock through them stalled the
        consumer for the whole insert (0.2 s, growing to 1.7 s when every checkpoint carried minutes
        of seen event ids; they are deltas now, streams.checkpoints).
        The order still holds: every output a state reflects was handed to the writer before the cut,
        and `flush` returns once all of it (and whatever came after) is inserted.
        """
        async with self.checkpointing:  # one at a time: a later cut must not be committed before an earlier one
            started = time.monotonic()
            async with self.lock:
                taken = self._cuts(only)
            cut_s = time.monotonic() - started
            if not taken:
                return True
            cuts = {topic: {p: cut for p, (_, cut) in parts.items()} for topic, parts in taken.items()}
            loop = asyncio.get_running_loop()
            try:
                for topic, parts in cuts.items():  # the ids first: a checkpoint row vouches for its ids
                    self.writer.add(SEEN_IDS_TABLE, seen_id_rows(self.group, topic, parts))
                await loop.run_in_executor(None, self.writer.flush)
                for topic, parts in cuts.items():
                    self.writer.add(CHECKPOINT_TABLE, checkpoint_rows(self.group, topic, parts))
                await loop.run_in_executor(None, self.writer.flush)
            except SinkError as exc:
                self._sink_failed(exc)
                return False
            offsets = {TP(topic, p): cut.next_offset for topic, parts in cuts.items() for p, cut in parts.items()}
            self.checkpointed.update(offsets)
            for parts in taken.values():
                for state, cut in parts.values():
                    state.mark_stored(cut)
            try:
                await self.app.consumer._commit_offsets(offsets)  # Faust's commit path, for our own offsets
            except Exception as exc:
                log.warning("Kafka offset commit failed (the ClickHouse checkpoint stands): %r", exc)
            s = self.stats
            s.checkpoints += 1
            s.checkpoint_last_s = round(time.monotonic() - started, 3)
            s.checkpoint_max_s = max(s.checkpoint_max_s, s.checkpoint_last_s)
            s.checkpoint_cut_last_s = round(cut_s, 3)
            s.checkpoint_cut_max_s = max(s.checkpoint_cut_max_s, s.checkpoint_cut_last_s)
            return True

    def _cuts(self, only: set[TP] | None) -> dict[str, dict[int, tuple[PartitionState, Cut]]]:
        """{topic: {partition: (state, cut)}} of the partitions changed since their last checkpoint."""
        cuts: dict[str, dict[int, tuple[PartitionState, Cut]]] = {}
        for topic, pipeline in self.pipelines.items():
            taken = {p: (s, s.cut()) for p, s in pipeline.partitions.items()
                     if s.next_offset > self.checkpointed.get(TP(topic, p), 0)
                     and (only is None or TP(topic, p) in only)}
            if taken:
                cuts[topic] = taken
        return cuts

    async def on_assigned(self, assigned: set[TP]) -> None:
        async with self.lock:
            for topic, pipeline in self.pipelines.items():
                mine = sorted(tp.partition for tp in assigned if tp.topic == topic)
                new = [p for p in mine if p not in pipeline.partitions]
                loop = asyncio.get_running_loop()
                stored = await loop.run_in_executor(None, load_checkpoints, self.reader, self.group, topic, new)
                for p in new:
                    if p in stored:
                        offset, blob = stored[p]
                        ids = functools.partial(load_seen_ids, self.reader, self.group, topic, p, offset)
                        state = await loop.run_in_executor(None, PartitionState.restore, blob, offset, ids)
                        # Its open windows must be emitted even if no new event ever arrives.
                        self.last_event_at[TP(topic, p)] = time.monotonic()
                        log.info("restored %s[%d] at offset %d", topic, p, state.next_offset)
                    else:
                        state = pipeline.new_state()
                    pipeline.partitions[p] = state
                    self.checkpointed[TP(topic, p)] = state.next_offset
                for p in [p for p in pipeline.partitions if p not in mine]:
                    del pipeline.partitions[p]
            self.stats.partitions = sum(len(p.partitions) for p in self.pipelines.values())

    async def on_revoked(self, revoked: set[TP]) -> None:
        await self.checkpoint(only=revoked)
        # A batch queued before the revoke may still run between the cut and this: the new owner
        # redoes it from the cut, as after a crash (idempotent outputs), so nothing is lost or doubled.
        async with self.lock:
            for tp in revoked:
                pipeline = self.pipelines.get(tp.topic)
                if pipeline is not None:
                    pipeline.partitions.pop(tp.partition, None)

    async def flush_idle(self) -> None:
        """Partitions quiet for `idle_flush_s` emit their open windows (end of a replay, a quiet night)."""
        async with self.lock:
            now = time.monotonic()
            for tp, last in list(self.last_event_at.items()):
                if now - last < self.settings.idle_flush_s:
                    continue
                pipeline = self.pipelines[tp.topic]
                state = pipeline.partitions.get(tp.partition)
                high = self.app.consumer.highwater(tp) if self.app.consumer else None
                if state is not None and high is not None and int(high) > state.next_offset:
                    continue  # backlogged, not idle: its windows will close by event time
                del self.last_event_at[tp]
                if state is not None:
                    await self._emit(tp.topic, pipeline.emit_pending(state))

    async def refresh_end_offsets(self) -> None:
        """While consumption is paused, ask the broker for the partitions' end offsets.

        The consumer learns high watermarks from fetch responses, and a paused worker fetches
        nothing: through a ClickHouse outage the reported lag stayed flat while the backlog grew
        (tests/test_reliability.py). Only while paused: Tansu answers this request wrongly after
        multi-record batches (DESIGN.md s.5), and fetch responses are exact otherwise.
        """
        self.end_offsets = {}
        if not self.stats.paused or self.app.consumer is None:
            return
        tps = [TP(topic, p) for topic, pipeline in self.pipelines.items() for p in pipeline.partitions]
        try:
            ends = await asyncio.wait_for(self.app.consumer.highwaters(*tps), timeout=2.0)
        except Exception as exc:  # the broker may be the thing that is down: keep reporting what we know
            log.debug("end offsets unavailable: %r", exc)
            return
        self.end_offsets = {tp: int(off) for tp, off in ends.items() if off is not None}

    def write_stats(self) -> None:
        lag = 0
        for topic, pipeline in self.pipelines.items():
            for p, state in pipeline.partitions.items():
                tp = TP(topic, p)
                fetched = self.app.consumer.highwater(tp) if self.app.consumer else None
                high = max(int(fetched) if fetched is not None else -1, self.end_offsets.get(tp, -1))
                if high >= 0:
                    lag += max(0, high - state.next_offset)
        self.stats.lag = lag
        path = self.settings.data_dir / f"worker-{os.getpid()}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self.stats) | {"writer": asdict(self.writer.stats())}, default=str))
        tmp.replace(path)


def broker_credentials(settings: Settings) -> CredentialsT | None:
    """Kafka security from the environment (IOC_KAFKA_*), for Faust's consumer and producer alike.

    Without this the worker connected in PLAINTEXT whatever IOC_KAFKA_SECURITY_PROTOCOL said (only the
    replay producer passed it on). Faust's confluent driver ignores `broker_credentials`, so it is
    refused with security on rather than left to connect without it.
    """
    protocol = settings.kafka_security_protocol.strip().upper() or "PLAINTEXT"
    if protocol == "PLAINTEXT":
        return None
    if protocol not in ("SSL", "SASL_PLAINTEXT", "SASL_SSL"):
        raise ValueError(f"IOC_KAFKA_SECURITY_PROTOCOL={protocol!r}: use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    if settings.faust_transport != "aiokafka":
        raise ValueError(f"IOC_FAUST_TRANSPORT={settings.faust_transport} cannot authenticate to Kafka "
                         f"({protocol}): Faust's confluent driver ignores credentials; use aiokafka")
    context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile or None) if protocol.endswith("SSL") \
        else None
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    return faust.SASLCredentials(username=settings.kafka_sasl_username, password=settings.kafka_sasl_password,
                                 mechanism=settings.kafka_sasl_mechanism or "PLAIN", ssl_context=context)


def make_app(settings: Settings) -> tuple[BatchApp, StreamWorker]:
    """The Faust app and its worker, wired: topics, channels, agents, timers, rebalance hooks."""
    if settings.keep_freed_memory:
        keep_freed_memory()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.resolved_broker_url()
    app = BatchApp(
        settings.app_id,
        consumer_driver=settings.faust_transport,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
        broker=f"kafka://{bootstrap_servers(url)}",
        broker_credentials=broker_credentials(settings),
        web_enabled=False,
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=settings.topic_partitions,
        topic_allow_declare=False,  # topics are created by `ioc broker up` / the deployment
        consumer_auto_offset_reset="earliest",
        consumer_max_fetch_size=8 * 1024 * 1024,
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_max_poll_records=settings.max_poll_records,
        broker_commit_every=10**9,  # we commit our own offsets after checkpoints (see module doc)
        producer_max_request_size=settings.max_arrow_batch_bytes,
    )
    client = connect(settings.clickhouse_dsn, settings)
    migrate_client(client, settings)
    writer = ClickHouseWriter(settings.clickhouse_dsn, settings)
    worker = StreamWorker(app, settings, writer, client)

    for topic in FAMILY_BY_TOPIC:
        channel = app.channel(maxsize=4)  # a few fetches of buffer: then the consumer waits (backpressure)
        app.topics.add(app.topic(topic, key_serializer="raw", value_serializer="raw"))

        async def route(tp: TP, batch: MessageBatch, channel: faust.ChannelT = channel) -> None:
            await channel.put(batch)

        app.batch_routes[topic] = route

        async def consume(stream: faust.StreamT, topic: str = topic) -> None:
            async for batch in stream:
                await worker.on_batch(topic, batch)

        consume.__name__ = consume.__qualname__ = f"consume_{FAMILY_BY_TOPIC[topic].name}"
        app.agent(channel, name=f"ioc.{FAMILY_BY_TOPIC[topic].name}")(consume)

    @app.on_partitions_assigned.connect
    async def assigned(sender: Any, assigned: set[TP], **_: Any) -> None:
        await worker.on_assigned({tp for tp in assigned if tp.topic in FAMILY_BY_TOPIC})

    @app.on_partitions_revoked.connect
    async def revoked(sender: Any, revoked: set[TP], **_: Any) -> None:
        await worker.on_revoked({tp for tp in revoked if tp.topic in FAMILY_BY_TOPIC})

    @app.timer(interval=settings.checkpoint_interval_s)
    async def checkpoint() -> None:
        await worker.checkpoint()

    @app.timer(interval=1.0)
    async def housekeeping() -> None:
        await worker.flush_idle()
        await worker.refresh_end_offsets()
        worker.write_stats()

    @app.on_before_shutdown.connect
    def shutdown(sender: Any, **_: Any) -> None:
        worker.write_stats()

    return app, worker


def run_worker(settings: Settings, loglevel: str = "warn") -> None:
    """`ioc worker`: run until SIGTERM/SIGINT (leaving the group checkpoints the partitions it held)."""
    app, worker = make_app(settings)
    faust_worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False)
    try:
        faust_worker.execute_from_commandline()
    finally:
        worker.writer.close()


def stats_files(data_dir: Path) -> list[Path]:
    return sorted(data_dir.glob("worker-*.json"))
