"""The Faust worker: one app, one agent per event topic, batches in, ClickHouse out.

Data path per fetch: `BatchConsumer` (streams.transport) -> channel -> agent -> `FamilyPipeline`
(decode, validate, dedupe, window) -> `ClickHouseWriter` (buffered, retried, batched); dead letters go
to `ioc.deadletter`, the emitted windows to `ioc.signals`, whose agent runs the incident stage
(streams.signals: rules -> incidents, to ClickHouse and, opened or resolved, to `ioc.alerts`).

This module only wires the parts: the hot path and backpressure are `streams.worker`, checkpoints
and rebalances `streams.recovery`, what the worker reports `streams.stats`, Kafka security
`streams.credentials`.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from faust.types import TP

from models.settings import Settings, bootstrap_servers
from sinks.client import connect
from sinks.migrate import migrate_client
from sinks.writer import ClickHouseWriter
from streams import recovery
from streams.allocator import keep_freed_memory
from streams.credentials import broker_credentials
from streams.decode import MessageBatch
from streams.exporter import WorkerView, serve_metrics
from streams.transport import BatchApp
from streams.worker import StreamWorker

log = logging.getLogger(__name__)


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
        broker_commit_every=10**9,  # we commit our own offsets after checkpoints (streams.recovery)
        producer_max_request_size=settings.max_arrow_batch_bytes,
    )
    client = connect(settings.clickhouse_dsn, settings)
    migrate_client(client, settings)
    writer = ClickHouseWriter(settings.clickhouse_dsn, settings)
    worker = StreamWorker(app, settings, writer, client)

    for topic, stage in worker.pipelines.items():
        channel = app.channel(maxsize=4)  # a few fetches of buffer: then the consumer waits (backpressure)
        app.topics.add(app.topic(topic, key_serializer="raw", value_serializer="raw"))

        async def route(tp: TP, batch: MessageBatch, channel: faust.ChannelT = channel) -> None:
            worker.parse_ahead(tp.topic, batch)
            await channel.put(batch)

        app.batch_routes[topic] = route

        async def consume(stream: faust.StreamT, topic: str = topic) -> None:
            async for batch in stream:
                await worker.on_batch(topic, batch)

        consume.__name__ = consume.__qualname__ = f"consume_{stage.family_name}"
        app.agent(channel, name=f"ioc.{stage.family_name}")(consume)

    @app.on_partitions_assigned.connect
    async def assigned(sender: Any, assigned: set[TP], **_: Any) -> None:
        await recovery.on_assigned(worker, {tp for tp in assigned if tp.topic in worker.pipelines})

    @app.on_partitions_revoked.connect
    async def revoked(sender: Any, revoked: set[TP], **_: Any) -> None:
        await recovery.on_revoked(worker, {tp for tp in revoked if tp.topic in worker.pipelines})

    @app.timer(interval=settings.checkpoint_interval_s)
    async def checkpoint() -> None:
        await recovery.checkpoint(worker)

    if settings.metrics_port >= 0:

        @app.task
        async def serve_worker_metrics() -> None:
            server = serve_metrics(WorkerView(worker.stats, worker.writer.stats), settings.metrics_host,
                                   settings.metrics_port)
            worker.stats.metrics_port = server.server_port
            log.info("metrics on http://%s:%d/metrics", settings.metrics_host, server.server_port)

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
        worker.close()
