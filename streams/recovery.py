"""Checkpoints and rebalances: each partition's state stored with its offset, restored by its next owner.

Delivery: outputs are idempotent in ClickHouse (ReplacingMergeTree on event id / window + key, and
window versions that grow with the events a window holds), and every `checkpoint_interval_s` the
worker cuts each partition's state with its next offset, flushes the writer, stores the states
(streams.checkpoints), then commits those offsets to Kafka; batches wait only for the cut. A
worker killed with SIGKILL restarts from its last checkpoint and skips offsets below it: the same
aggregates as an uninterrupted run.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any

from faust.types import TP

from models.events import SIGNALS_TOPIC
from sinks.writer import SinkError
from streams.checkpoints import (
    CHECKPOINT_TABLE,
    SEEN_IDS_TABLE,
    Cut,
    checkpoint_rows,
    load_checkpoints,
    load_seen_ids,
    seen_id_rows,
)
from streams.pipeline import Stage
from streams.stats import count_checkpoint
from streams.worker import StreamWorker

log = logging.getLogger(__name__)


async def checkpoint(worker: StreamWorker, only: set[TP] | None = None) -> bool:
    """Flush outputs, store states with their offsets, then commit those offsets to Kafka.

    Batches wait only for the cut (the states pickled with their offsets, under the lock): the
    ClickHouse writes run while batches keep flowing. Holding the lock through them stalled the
    consumer for the whole insert (0.2 s, growing to 1.7 s when every checkpoint carried minutes
    of seen event ids; they are deltas now, streams.checkpoints).
    The order still holds: every output a state reflects was handed to the writer before the cut,
    and `flush` returns once all of it (and whatever came after) is inserted.
    """
    async with worker.checkpointing:  # one at a time: a later cut must not be committed before an earlier one
        started = time.monotonic()
        async with worker.lock:
            taken = _cuts(worker.pipelines, worker.checkpointed, only)
        cut_s = time.monotonic() - started
        if not taken:
            return True
        cuts = {topic: {p: cut for p, (_, cut) in parts.items()} for topic, parts in taken.items()}
        writer, loop = worker.writer, asyncio.get_running_loop()
        try:
            for topic, parts in cuts.items():  # the ids first: a checkpoint row vouches for its ids
                writer.add(SEEN_IDS_TABLE, seen_id_rows(worker.group, topic, parts))
            await loop.run_in_executor(None, writer.flush)
            for topic, parts in cuts.items():
                writer.add(CHECKPOINT_TABLE, checkpoint_rows(worker.group, topic, parts))
            await loop.run_in_executor(None, writer.flush)
        except SinkError as exc:
            worker.sink_failed(exc)
            return False
        offsets = {TP(topic, p): cut.next_offset for topic, parts in cuts.items() for p, cut in parts.items()}
        worker.checkpointed.update(offsets)
        for parts in taken.values():
            for state, cut in parts.values():
                state.mark_stored(cut)
        try:
            await worker.app.consumer._commit_offsets(offsets)  # Faust's commit path, for our own offsets
        except Exception as exc:
            log.warning("Kafka offset commit failed (the ClickHouse checkpoint stands): %r", exc)
        count_checkpoint(worker.stats, time.monotonic() - started, cut_s)
        return True


def _cuts(pipelines: dict[str, Stage], checkpointed: dict[TP, int], only: set[TP] | None
          ) -> dict[str, dict[int, tuple[Any, Cut]]]:
    """{topic: {partition: (state, cut)}} of the partitions changed since their last checkpoint."""
    cuts: dict[str, dict[int, tuple[Any, Cut]]] = {}
    for topic, pipeline in pipelines.items():
        taken = {p: (s, s.cut()) for p, s in pipeline.partitions.items()
                 if s.next_offset > checkpointed.get(TP(topic, p), 0)
                 and (only is None or TP(topic, p) in only)}
        if taken:
            cuts[topic] = taken
    return cuts


async def on_assigned(worker: StreamWorker, assigned: set[TP]) -> None:
    """New partitions start from their last checkpoint (or empty); partitions no longer ours are dropped."""
    async with worker.lock:
        for topic, pipeline in worker.pipelines.items():
            mine = sorted(tp.partition for tp in assigned if tp.topic == topic)
            new = [p for p in mine if p not in pipeline.partitions]
            loop = asyncio.get_running_loop()
            stored = await loop.run_in_executor(None, load_checkpoints, worker.reader, worker.group, topic, new)
            for p in new:
                if p in stored:
                    offset, blob = stored[p]
                    ids = functools.partial(load_seen_ids, worker.reader, worker.group, topic, p, offset)
                    state = await loop.run_in_executor(None, pipeline.restore, blob, offset, ids)
                    # Its open windows must be emitted even if no new event ever arrives.
                    worker.last_event_at[TP(topic, p)] = time.monotonic()
                    log.info("restored %s[%d] at offset %d", topic, p, state.next_offset)
                else:
                    state = pipeline.new_state()
                pipeline.partitions[p] = state
                worker.checkpointed[TP(topic, p)] = state.next_offset
            for p in [p for p in pipeline.partitions if p not in mine]:
                del pipeline.partitions[p]
        count_partitions(worker)


async def on_revoked(worker: StreamWorker, revoked: set[TP]) -> None:
    await checkpoint(worker, only=revoked)
    # A batch queued before the revoke may still run between the cut and this: the new owner
    # redoes it from the cut, as after a crash (idempotent outputs), so nothing is lost or doubled.
    async with worker.lock:
        for tp in revoked:
            pipeline = worker.pipelines.get(tp.topic)
            if pipeline is not None:
                pipeline.partitions.pop(tp.partition, None)
        count_partitions(worker)


def count_partitions(worker: StreamWorker) -> None:
    """Event partitions (the families' topics) and the incident stage's `ioc.signals` ones, apart: the
    first is how a group splits the load, the second follows the provinces."""
    owned = {topic: len(p.partitions) for topic, p in worker.pipelines.items()}
    worker.stats.signal_partitions = owned.pop(SIGNALS_TOPIC, 0)
    worker.stats.partitions = sum(owned.values())
