"""The worker's hot path: each batch through its family's pipeline, its outputs handed on.

Backpressure: if ClickHouse is down, the writer's buffer fills, the agents stop taking batches
(`StreamWorker.on_batch` waits for room), the channels fill, and the consumer stops fetching:
consumption pauses instead of dropping.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from faust.types import TP

from models.events import SIGNALS_TOPIC
from models.settings import Settings
from sinks.writer import ClickHouseWriter, SinkError
from streams.decode import MessageBatch
from streams.outputs import OutputTopics, send_outputs
from streams.pipeline import Outputs, Stage, pipelines
from streams.signals import incident_pipeline
from streams.stats import WorkerStats, broker_end_offsets, consumer_lag, count_outputs, known_highwater, write_stats
from streams.transport import BatchApp

log = logging.getLogger(__name__)


class StreamWorker:
    """Owns the pipelines, the writer and the checkpoints; the Faust agents call `on_batch`.

    The checkpoint and rebalance protocol over this state is `streams.recovery`."""

    def __init__(self, app: BatchApp, settings: Settings, writer: ClickHouseWriter, reader: Any) -> None:
        self.app, self.settings, self.writer, self.reader = app, settings, writer, reader
        self.group = app.conf.id
        # The three families' pipelines and the incident stage, by topic (streams.signals).
        self.pipelines: dict[str, Stage] = {**pipelines(settings), SIGNALS_TOPIC: incident_pipeline(settings)}
        self.stats = WorkerStats()
        self.last_event_at: dict[TP, float] = {}
        self.checkpointed: dict[TP, int] = {}  # next offset of each partition's last checkpoint
        self.end_offsets: dict[TP, int] = {}  # from the broker, while paused (see refresh_end_offsets)
        self.topics = OutputTopics.of(app, settings.province)
        self.lock = asyncio.Lock()  # batches, checkpoint cuts and rebalances never interleave
        self.checkpointing = asyncio.Lock()
        self.parsers = (ThreadPoolExecutor(settings.parse_threads, thread_name_prefix="ioc-parse")
                        if settings.parse_threads > 0 else None)

    def parse_ahead(self, topic: str, batch: MessageBatch) -> None:
        """A fetched batch starts being read now, on the parse threads, while it waits for its turn."""
        if self.parsers is None:
            return
        try:
            self.pipelines[topic].parse_ahead(batch, self.parsers)
        except RuntimeError:  # the pool is shut down (the worker is stopping): the batch is read in its turn
            batch.reading = None

    def close(self) -> None:
        """At exit: batches still being read ahead are dropped (uncommitted: re-read after a restart),
        then the writer flushes what it holds."""
        if self.parsers is not None:
            self.parsers.shutdown(wait=False, cancel_futures=True)
        self.writer.close()

    async def on_batch(self, topic: str, batch: MessageBatch) -> None:
        async with self.lock:
            pipeline = self.pipelines[topic]
            owned = [int(p) for p in set(batch.partitions.tolist()) if int(p) in pipeline.partitions]
            if not owned:
                batch.drop_reading()
                return  # revoked while queued: the new owner processes these from its checkpoint
            # CPU-bound (decode, windows): off the event loop, so Faust's timers and consumer keepalive run.
            out = await asyncio.get_running_loop().run_in_executor(None, pipeline.process, batch)
            await self._emit(topic, out)
            now = time.monotonic()
            for p in owned:
                self.last_event_at[TP(topic, p)] = now
        await self._wait_for_sink_room()

    async def _emit(self, topic: str, out: Outputs) -> None:
        await send_outputs(out, self.writer, self.topics)
        count_outputs(self.stats, topic, out)

    async def _wait_for_sink_room(self) -> None:
        """Backpressure: while the writer's buffer is over its bound, take no more batches."""
        while self.writer.should_pause:
            self.stats.paused = True
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.writer.flush)
            except SinkError as exc:
                self.sink_failed(exc)
                await asyncio.sleep(1.0)
        self.stats.paused = False

    def sink_failed(self, exc: Exception) -> None:
        self.stats.sink_errors += 1
        self.stats.last_error = f"{type(exc).__name__}: {exc}"[:300]
        log.warning("ClickHouse unavailable, consumption paused until it is back: %s", exc)

    async def flush_idle(self) -> None:
        """Partitions quiet for `idle_flush_s` emit their open windows (end of a replay, a quiet night)."""
        async with self.lock:
            now = time.monotonic()
            for tp, last in list(self.last_event_at.items()):
                if now - last < self.settings.idle_flush_s:
                    continue
                pipeline = self.pipelines[tp.topic]
                state = pipeline.partitions.get(tp.partition)
                if state is None:  # revoked: its new owner emits those windows
                    del self.last_event_at[tp]
                    continue
                high = known_highwater(self.app.consumer, tp)
                if high is not None and high > state.next_offset:
                    continue  # backlogged, not idle: its windows will close by event time
                del self.last_event_at[tp]
                await self._emit(tp.topic, pipeline.emit_pending(state))

    async def refresh_end_offsets(self) -> None:
        """While consumption is paused, ask the broker for the partitions' end offsets (see
        `streams.stats.broker_end_offsets` for why only then)."""
        self.end_offsets = {}
        if not self.stats.paused or self.app.consumer is None:
            return
        self.end_offsets = await broker_end_offsets(self.app.consumer, self.pipelines)

    def write_stats(self) -> None:
        self.stats.lag_by_partition = consumer_lag(self.app.consumer, self.pipelines, self.end_offsets)
        self.stats.lag = sum(self.stats.lag_by_partition.values())
        write_stats(self.settings.data_dir, self.stats, self.writer.stats())
