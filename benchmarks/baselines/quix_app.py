"""Baseline (d): a Quix Streams 3.28 application doing the same tumbling aggregation.

The documented shape: `Application`, a JSON topic with a timestamp extractor (windows on the event's
own `event_time`, as ours), `sdf.tumbling_window(60_000, grace_ms=...).agg(...)` with `.final()`
(a row per closed window, as our worker emits), count and latency sum per node. State lives in
RocksDB with changelog topics (Quix's durability). Like the Faust baseline it does less than our
worker (2 aggregates, nothing stored in ClickHouse), so the ratio against it is conservative.

Run as `python -m benchmarks.baselines.quix_app` with IOC_BROKER_URL, IOC_APP_ID, IOC_DATA_DIR and
IOC_BENCH_STATS (the progress probe, benchmarks.probe).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from quixstreams import Application
from quixstreams.dataframe.windows import Count, Sum

from benchmarks.probe import Probe, profiled
from models.events import NETWORK
from models.settings import bootstrap_servers

LATENESS_MS = 120_000  # the worker's default IOC_ALLOWED_LATENESS_S


def event_time_ms(value: Any, headers: Any, timestamp: float, timestamp_type: Any) -> int:
    return int(datetime.fromisoformat(value["event_time"]).timestamp() * 1000)


def make_app(probe: Probe) -> Application:
    data_dir = Path(os.environ.get("IOC_DATA_DIR", "var"))
    app = Application(
        broker_address=bootstrap_servers(os.environ["IOC_BROKER_URL"]),
        consumer_group=os.environ["IOC_APP_ID"],
        auto_offset_reset="earliest",
        state_dir=str(data_dir / "quix-state"),
        loglevel="WARNING",
    )
    topic = app.topic(NETWORK.topic, key_deserializer="str", value_deserializer="json",
                      timestamp_extractor=event_time_ms)
    sdf = app.dataframe(topic)

    def arrived(_: Any) -> None:
        # Quix runs each message through the whole dataframe before taking the next, so counting on
        # arrival is exact to one message and costs two attribute writes.
        probe.begin()
        probe.add(1)

    sdf = sdf.update(arrived)
    sdf = sdf.tumbling_window(duration_ms=60_000, grace_ms=LATENESS_MS).agg(
        samples=Count(), latency_sum=Sum("latency_ms")).final()
    sdf.update(lambda _: None)  # the windowed rows end here: no sink, as the Faust baseline
    return app


def main() -> None:
    probe = Probe.from_env().start()
    app = make_app(probe)
    try:
        with profiled():
            app.run()
    finally:
        probe.close()


if __name__ == "__main__":
    main()
