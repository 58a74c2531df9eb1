"""The worker's Kafka transport against a real broker: what aiokafka hands the batch routes."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord, TopicPartition

from ioc.broker import LocalBroker, create_topics
from models.events import ARROW_CONTENT_TYPE, ARROW_CONTENT_TYPE_HEADER
from models.settings import bootstrap_servers
from streams.decode import MessageBatch
from streams.transport import lean_records, to_batch

TOPIC = "ioc.test.lean"
MESSAGES = 300


async def produce(url: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=url)
    await producer.start()
    try:
        for i in range(MESSAGES):
            # every tenth message marked as Arrow, so headers must survive the lean path
            headers = [(ARROW_CONTENT_TYPE_HEADER, ARROW_CONTENT_TYPE)] if i % 10 == 0 else []
            await producer.send(TOPIC, f'{{"i": {i}}}'.encode(), key=b"k", partition=0, headers=headers)
        await producer.flush()
    finally:
        await producer.stop()


async def buffered(consumer: AIOKafkaConsumer, tp: TopicPartition, timeout_s: float = 30) -> None:
    """Until a fetch of the partition has arrived and waits to be read (the state lean_records changes)."""
    for _ in range(int(timeout_s / 0.01)):
        if tp in consumer._fetcher._records:
            return
        await asyncio.sleep(0.01)


async def read_all(url: str, lean: bool) -> tuple[list[Any], MessageBatch]:
    """Every record of the partition, through aiokafka's fetcher as Faust's consumer thread calls it."""
    consumer = AIOKafkaConsumer(bootstrap_servers=url, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    tp = TopicPartition(TOPIC, 0)
    consumer.assign([tp])
    records: list[Any] = []
    try:
        for _ in range(200):
            if len(records) >= MESSAGES:
                break
            if lean:  # the worker's consumer thread does this before each read
                await buffered(consumer, tp)
                lean_records(consumer._fetcher, {TOPIC})
            fetched = await consumer._fetcher.fetched_records([tp], timeout=1.0)
            records += fetched.get(tp, [])
    finally:
        await consumer.stop()
    return records, to_batch(tp, records)  # type: ignore[arg-type]


def test_lean_records_build_the_same_batch_as_consumer_records(broker: LocalBroker) -> None:
    url = bootstrap_servers(broker.url)
    create_topics(broker.url, [TOPIC], partitions=1)
    asyncio.run(produce(url))
    full, expected = asyncio.run(read_all(url, lean=False))
    lean, batch = asyncio.run(read_all(url, lean=True))

    assert all(isinstance(r, ConsumerRecord) for r in full)
    assert not any(isinstance(r, ConsumerRecord) for r in lean)  # the records as read: nothing built per message
    assert len(batch) == len(expected) == MESSAGES
    assert batch.values == expected.values
    assert np.array_equal(batch.offsets, expected.offsets)
    assert np.array_equal(batch.partitions, expected.partitions)
    assert np.array_equal(batch.arrow, expected.arrow) and batch.arrow.sum() == MESSAGES // 10


def test_topics_without_a_route_keep_the_full_record(broker: LocalBroker) -> None:
    # Faust's own per-message path (topics without a batch route) reads timestamps, keys and sizes
    async def read() -> list[Any]:
        url = bootstrap_servers(broker.url)
        consumer = AIOKafkaConsumer(bootstrap_servers=url, auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        tp = TopicPartition(TOPIC, 0)
        consumer.assign([tp])
        try:
            await buffered(consumer, tp)
            lean_records(consumer._fetcher, {"another.topic"})
            return (await consumer._fetcher.fetched_records([tp], timeout=5.0)).get(tp, [])
        finally:
            await consumer.stop()

    create_topics(broker.url, [TOPIC], partitions=1)
    records = asyncio.run(read())
    assert records and all(isinstance(r, ConsumerRecord) for r in records)
