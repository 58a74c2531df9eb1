"""Baseline (c): an idiomatic Faust agent updating windowed Faust Tables per event, as the Faust docs show.

Same broker, topic and data as our worker; same windows: tumbling 1-minute windows on the event's own
`event_time` (not the Kafka timestamp), per node, counting samples and summing latency. The value is
a `faust.Record` (the documented way to get `relative_to_field`), the table is the docs' windowed
`app.Table(...).tumbling(..., expires=...)`, updated per event the way `table[key] += value` does it,
in an in-memory store with its changelog topic (Faust's durability). It does less than our worker
(2 aggregates instead of 15, no raw-event storage, nothing written to ClickHouse), so the ratio
against it is conservative.

Run as `python -m benchmarks.baselines.faust_table` with IOC_BROKER_URL, IOC_APP_ID, IOC_DATA_DIR and
IOC_BENCH_STATS (the progress probe, benchmarks.probe).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import faust

from benchmarks.probe import Probe, profiled
from models.events import NETWORK
from models.settings import bootstrap_servers


class Telemetry(faust.Record, serializer="json", isodates=True):
    event_id: str
    event_time: datetime
    node_id: str
    latency_ms: float
    jitter_ms: float
    loss_pct: float
    rx_bps: float
    tx_bps: float
    capacity_bps: float
    link_up: bool


def empty_stats() -> list[float]:
    return [0, 0.0]


def add_sample(current: list[float], latency_ms: float) -> list[float]:
    return [current[0] + 1, current[1] + latency_ms]


def make_app(probe: Probe) -> faust.App:
    data_dir = Path(os.environ.get("IOC_DATA_DIR", "var"))
    app = faust.App(
        os.environ["IOC_APP_ID"],
        broker=f"kafka://{bootstrap_servers(os.environ['IOC_BROKER_URL'])}",
        store="memory://",
        datadir=str(data_dir / "faust-baseline"),
        web_enabled=False,
        topic_partitions=int(os.environ.get("IOC_TOPIC_PARTITIONS", "4")),
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=6,  # as our worker (Tansu joins wait half of it)
    )
    topic = app.topic(NETWORK.topic, key_type=str, value_type=Telemetry)
    # One windowed table holding (samples, latency sum) per node and window: one changelog message per
    # event. `WindowSet.apply(op, value)` is what the documented `table[key] += value` runs, with an op
    # for a pair; two tables (`samples[k] += 1; latency_sum[k] += v`) would send two and run ~2x slower.
    stats = app.Table("node_stats", default=empty_stats).tumbling(
        60.0, expires=timedelta(minutes=10)).relative_to_field(Telemetry.event_time)

    @app.agent(topic)
    async def aggregate(stream: faust.StreamT[Telemetry]) -> None:
        async for sample in stream:
            probe.begin()
            stats[sample.node_id].apply(add_sample, sample.latency_ms)
            probe.add(1)

    @app.on_partitions_assigned.connect
    async def ready(sender: Any, assigned: Any, **_: Any) -> None:
        if assigned:
            probe.ready()

    return app


def main() -> None:
    probe = Probe.from_env().start()
    app = make_app(probe)
    try:
        with profiled():
            faust.Worker(app, loglevel="warn", quiet=True, redirect_stdouts=False).execute_from_commandline()
    finally:
        probe.close()


if __name__ == "__main__":
    main()
