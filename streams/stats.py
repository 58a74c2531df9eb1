"""What a worker reports: its counters, written to DATA_DIR/worker-<pid>.json every second.

The demo's live view, `ioc worker`, the compose health check (deploy/worker_healthy.py) and the
benchmarks read these files; nothing in the worker reads them back.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from faust.types import TP

from models.events import SIGNALS_TOPIC
from sinks.writer import WriterStats
from streams.pipeline import Outputs, Stage

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
    signals_out: int = 0  # messages of windows sent to the incident stage (ioc.signals)
    signals_in: int = 0  # of them, received by this worker's incident stage
    skipped_signals: int = 0
    incidents_opened: int = 0
    incidents_resolved: int = 0
    skipped: int = 0
    checkpoints: int = 0
    checkpoint_last_s: float = 0.0  # cut + ClickHouse writes + Kafka commit
    checkpoint_max_s: float = 0.0
    checkpoint_cut_last_s: float = 0.0  # the part batches wait for (states pickled under the lock)
    checkpoint_cut_max_s: float = 0.0
    sink_errors: int = 0
    lag: int = 0
    partitions: int = 0  # of the event families' topics
    signal_partitions: int = 0  # of ioc.signals (the incident stage)
    paused: bool = False
    metrics_port: int = -1  # where /metrics and /health answer (-1: not served)
    last_error: str = ""
    per_topic: dict[str, int] = field(default_factory=dict)
    dead_by_reason: dict[str, int] = field(default_factory=dict)
    lag_by_partition: dict[str, int] = field(default_factory=dict)  # "topic:partition" -> offsets behind


def count_outputs(stats: WorkerStats, topic: str, out: Outputs) -> None:
    stats.dead_letters += len(out.dead)
    for letter in out.dead:
        stats.dead_by_reason[letter.reason] = stats.dead_by_reason.get(letter.reason, 0) + 1
    stats.incidents_opened += sum(1 for m in out.alerts if m["event"] == "opened")
    stats.incidents_resolved += sum(1 for m in out.alerts if m["event"] == "resolved")
    if topic == SIGNALS_TOPIC:  # the incident stage: its messages are windows, not events
        stats.signals_in += out.messages_in
        stats.skipped_signals += out.skipped
        return
    stats.messages_in += out.messages_in
    stats.events_in += out.events_in
    stats.events_valid += out.events_valid
    stats.windows_out += out.windows_out
    stats.late += out.late
    stats.signals_out += len(out.signals)
    stats.skipped += out.skipped
    stats.per_topic[topic] = stats.per_topic.get(topic, 0) + out.events_in


def count_checkpoint(stats: WorkerStats, total_s: float, cut_s: float) -> None:
    stats.checkpoints += 1
    stats.checkpoint_last_s = round(total_s, 3)
    stats.checkpoint_max_s = max(stats.checkpoint_max_s, stats.checkpoint_last_s)
    stats.checkpoint_cut_last_s = round(cut_s, 3)
    stats.checkpoint_cut_max_s = max(stats.checkpoint_cut_max_s, stats.checkpoint_cut_last_s)


async def broker_end_offsets(consumer: Any, pipelines: Mapping[str, Stage]) -> dict[TP, int]:
    """The owned partitions' end offsets, asked of the broker (for a paused worker only).

    The consumer learns high watermarks from fetch responses, and a paused worker fetches
    nothing: through a ClickHouse outage the reported lag stayed flat while the backlog grew
    (tests/test_reliability.py). Only while paused: Tansu answers this request wrongly after
    multi-record batches (DESIGN.md s.5), and fetch responses are exact otherwise.
    """
    tps = [TP(topic, p) for topic, pipeline in pipelines.items() for p in pipeline.partitions]
    try:
        ends = await asyncio.wait_for(consumer.highwaters(*tps), timeout=2.0)
    except Exception as exc:  # the broker may be the thing that is down: keep reporting what we know
        log.debug("end offsets unavailable: %r", exc)
        return {}
    return {tp: int(off) for tp, off in ends.items() if off is not None}


def known_highwater(consumer: Any, tp: TP) -> int | None:
    """The end offset the consumer last saw for `tp`, None if unknown. Mid-rebalance a partition we
    still hold may have left aiokafka's assignment, where `highwater` asserts: unknown, not a crash."""
    if consumer is None:
        return None
    try:
        high = consumer.highwater(tp)
    except AssertionError:
        return None
    return None if high is None else int(high)


def consumer_lag(consumer: Any, pipelines: Mapping[str, Stage], end_offsets: Mapping[TP, int]) -> dict[str, int]:
    """Offsets not yet processed per owned partition ("topic:partition") whose end is known."""
    lag = {}
    for topic, pipeline in pipelines.items():
        for p, state in pipeline.partitions.items():
            tp = TP(topic, p)
            fetched = known_highwater(consumer, tp)
            high = max(fetched if fetched is not None else -1, end_offsets.get(tp, -1))
            if high >= 0:
                lag[f"{topic}:{p}"] = max(0, high - state.next_offset)
    return lag


def write_stats(data_dir: Path, stats: WorkerStats, writer: WriterStats) -> None:
    path = data_dir / f"worker-{os.getpid()}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(stats) | {"writer": asdict(writer)}, default=str))
    tmp.replace(path)


def stats_files(data_dir: Path) -> list[Path]:
    return sorted(data_dir.glob("worker-*.json"))
