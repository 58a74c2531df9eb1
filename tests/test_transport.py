"""Faust transport wiring that needs no broker: what the worker's Kafka consumer is built with."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from models.settings import Settings
from streams.app import make_app
from streams.transport import AiokafkaBatchConsumerThread, BatchApp


def test_worker_consumer_fetch_wait_comes_from_settings_not_fausts_1500_ms(tmp_path: Path) -> None:
    # Faust builds its aiokafka consumer with fetch_max_wait_ms=1500; with one fetch in flight per broker,
    # busy partitions then waited 1.5 s behind a fetch for idle ones (freshness bench trace, transport.py).
    async def built_with(settings: Settings) -> int:
        app, worker = make_app(settings)
        try:
            thread = app.consumer._thread
            assert isinstance(thread, AiokafkaBatchConsumerThread)
            consumer = thread._create_worker_consumer(app.consumer.transport)
            wait: int = consumer._fetch_max_wait_ms  # what aiokafka's Fetcher is given at start()
            await consumer.stop()
            return wait
        finally:
            worker.close()

    base = dict(data_dir=tmp_path, clickhouse_dsn=f"chdb://{tmp_path / 'store.chdb'}",
                broker_url="kafka://127.0.0.1:9")  # never connected to: the consumer is only built
    assert asyncio.run(built_with(Settings(**base))) == 100
    from_env = Settings.from_env({"IOC_KAFKA_FETCH_MAX_WAIT_MS": "40"})
    assert asyncio.run(built_with(dataclasses.replace(from_env, **base))) == 40


def test_negative_fetch_wait_is_refused() -> None:
    with pytest.raises(ValueError, match="fetch_max_wait_ms"):
        BatchApp("ioc-test", fetch_max_wait_ms=-1)
