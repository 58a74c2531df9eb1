"""Batch delivery for Faust: the consumer hands whole fetched batches to the app, not one event at a time.

Profiling an idiomatic Faust agent on this machine (Kafka 3.9, aiokafka) shows ~4.7k events/s, and
almost all of it is per-message machinery: `Consumer._drain_messages` awaits
`wait_first(callback(message), ...)` per message (two asyncio tasks each), then the conductor builds
an `Event`, queues it, and the stream iterator wakes once per event. None of that is our code.

`BatchConsumer` keeps Faust's consumer (group membership, rebalancing, flow control, the fetcher
thread, generation checks) and replaces only that drain loop: each `getmany` result is handed, one
list per topic-partition, to a route registered for the topic (`app.batch_routes`). The routes put
one `MessageBatch` per fetch onto a Faust channel that an agent consumes, so Faust's per-item cost is
paid once per few thousand events. Topics without a route still go through Faust's normal path.

Transports: both Faust drivers get batch delivery (`IOC_FAUST_TRANSPORT=aiokafka|confluent`).
aiokafka is the default because it is the one that works here: with faust-streaming 0.15.3 against
Kafka 3.9 the `confluent://` consumer never subscribed within 60 s (Faust's confluent driver also
drops record headers on its per-message path and partitions keys with Python's randomized `hash`).
Measured, one worker subprocess, 316,800 preloaded network JSON messages, Kafka 3.9, load avg ~5:
aiokafka + batch delivery 35.9k events/s end to end into chDB, against ~4.7k for Faust's own path.

Offsets: events delivered this way are never acked to Faust, so Faust's auto-commit never commits
them; the worker commits itself once a batch's effects are in ClickHouse (`streams.recovery`).
Pinned to faust-streaming 0.15.3 and aiokafka 0.14.0 (pyproject): `_drain_messages` is Faust's internal
API, and `lean_records` sets aiokafka's `PartitionRecords._consumer_record` on the fetcher's `_records`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Container, Sequence
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.transport.drivers import confluent as faust_confluent
from faust.types import TP

from streams.decode import MessageBatch

BatchRoute = Callable[[TP, MessageBatch], Awaitable[None]]


def to_batch(tp: TP, records: Sequence[Any]) -> MessageBatch:
    """aiokafka's records of one partition (as read, or ConsumerRecords: both have these fields) -> a batch."""
    return MessageBatch.of_partition(tp.partition, [r.value for r in records], [r.offset for r in records],
                                     [r.headers for r in records])


def to_batch_confluent(tp: TP, records: Sequence[Any]) -> MessageBatch:
    """confluent_kafka Messages of one partition (accessor methods; headers kept, unlike Faust's path)."""
    return MessageBatch.of_partition(tp.partition, [r.value() for r in records], [r.offset() for r in records],
                                     [r.headers() for r in records])


class BatchDrain:
    """Mixin for a Faust driver's Consumer: replaces the per-message drain loop with batch delivery."""

    to_batch: Callable[[TP, Sequence[Any]], MessageBatch] = staticmethod(to_batch)

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - exercised by broker tests
        consumer: Any = self  # a Faust Consumer: the mixin only runs mixed into one
        routes: dict[str, BatchRoute] = consumer.app.batch_routes
        while not (consumer._stopped.is_set() or fetcher._stopped.is_set()):
            records, active = await consumer._wait_next_records(1.0)
            await consumer.sleep(0)
            if not records or consumer.should_stop:
                continue
            if not consumer.flow_active:  # rebalancing: Faust seeks back to committed offsets
                await consumer.perform_seek()
                continue
            generation = consumer.app.consumer_generation_id
            for tp, tp_records in records.items():
                if consumer.app.consumer_generation_id != generation:
                    break  # a rebalance started: these records may belong to someone else now
                if active is not None and tp not in active and tp not in consumer._buffered_partitions:
                    continue
                consumer.app.monitor.track_tp_end_offset(tp, consumer.highwater(tp))
                route = routes.get(tp.topic)
                if route is None:  # a topic without a batch route: Faust's own per-message path
                    for record in tp_records:
                        message = consumer._to_message(tp, record)
                        await consumer.callback(message)
                    consumer._read_offset[tp] = message.offset
                else:
                    batch = self.to_batch(tp, tp_records)
                    await route(tp, batch)
                    consumer._read_offset[tp] = int(batch.offsets[-1])


class AiokafkaBatchConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread with our fetch wait instead of its hard-coded 1,500 ms.

    aiokafka keeps one fetch in flight per broker, built for the partitions that have nothing
    buffered. After any pause in draining (a checkpoint holding the worker for 0.2 s), the busy
    partitions still had records buffered, so the fetch in flight asked only for idle ones (other
    topics, quiet partitions) and the broker held it the full `fetch_max_wait_ms`: the busy
    partitions waited 1.5 s behind it. Traced at 22k events/s: a 1.5 s gap after every checkpoint,
    raw-event p99 2.5 s; with 100 ms the gap is gone (benchmarks/results/freshness.json).
    """

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = self.consumer.app.fetch_max_wait_ms  # read by its Fetcher at start()
        return consumer

    async def _fetch_records(self, consumer: Any, active_partitions: Any, timeout: float | None = None,
                             max_records: int | None = None) -> Any:
        lean_records(consumer._fetcher, self.consumer.app.batch_routes)
        return await super()._fetch_records(consumer, active_partitions, timeout=timeout, max_records=max_records)


def _as_read(tp: Any, record: Any) -> Any:
    return record


def lean_records(fetcher: Any, routes: Container[str]) -> None:
    """Fetched partitions of routed topics hand over aiokafka's records as read from the batch.

    aiokafka wraps every record in a `ConsumerRecord` (a Python function call and a dataclass per
    message, ~0.4 us, a quarter of a plain consumer's cost, measured) that `to_batch` reads three fields
    of; the C record it wraps has the same `value`, `offset` and `headers`. Only partitions already
    fetched and not yet read are changed (a fetch landing during the wait is read the usual way:
    slower, same batch); topics without a route keep Faust's path, which needs the full record.
    """
    for tp, result in fetcher._records.items():
        records = getattr(result, "_partition_records", None)
        if records is not None and tp.topic in routes:
            records._consumer_record = _as_read


class AiokafkaBatchConsumer(BatchDrain, faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> AiokafkaBatchConsumerThread:
        return AiokafkaBatchConsumerThread(self, loop=self.loop, beacon=self.beacon)


class ConfluentBatchConsumer(BatchDrain, faust_confluent.Consumer):
    to_batch = staticmethod(to_batch_confluent)


class AiokafkaBatchTransport(faust_aiokafka.Transport):
    Consumer = AiokafkaBatchConsumer


class ConfluentBatchTransport(faust_confluent.Transport):
    Consumer = ConfluentBatchConsumer


TRANSPORTS: dict[str, type] = {"aiokafka": AiokafkaBatchTransport, "confluent": ConfluentBatchTransport}

class BatchApp(faust.App):
    """A Faust app whose consumer delivers batches to `batch_routes` (topic -> coroutine)."""

    batch_routes: dict[str, BatchRoute]

    def __init__(self, *args: Any, consumer_driver: str = "aiokafka", fetch_max_wait_ms: int = 100,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if consumer_driver not in TRANSPORTS:
            raise ValueError(f"unknown Faust transport {consumer_driver!r}: {' or '.join(TRANSPORTS)}")
        if fetch_max_wait_ms < 0:
            raise ValueError(f"fetch_max_wait_ms={fetch_max_wait_ms}: must be >= 0")
        self.consumer_driver = consumer_driver
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.batch_routes = {}

    def _new_transport(self) -> Any:
        return TRANSPORTS[self.consumer_driver](self.conf.broker_consumer, self)
