"""The worker's /metrics and /health (streams/exporter.py) served from its stats objects, and the
compose health check that calls /health. (A whole worker's endpoint is scraped in tests/test_worker.py.)"""

from __future__ import annotations

import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from sinks.writer import WriterStats
from streams.exporter import WorkerView, serve_metrics
from streams.stats import WorkerStats

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def served() -> Iterator[tuple[WorkerStats, WriterStats, str]]:
    stats, writer = WorkerStats(), WriterStats()
    server = serve_metrics(WorkerView(stats, lambda: writer), "127.0.0.1", 0)
    try:
        yield stats, writer, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_read_the_live_counters(served: tuple[WorkerStats, WriterStats, str]) -> None:
    stats, writer, url = served
    stats.per_topic = {"ioc.network.telemetry": 120, "ioc.filings.events": 30}
    stats.dead_by_reason = {"invalid_json": 2, "future_time": 1}
    stats.lag_by_partition = {"ioc.network.telemetry:3": 17}
    stats.incidents_opened, writer.buffered_rows, writer.insert_seconds = 4, 2_000, 0.25
    status, text = get(url + "/metrics")
    assert status == 200
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples[("ioc_events_in_total", (("topic", "ioc.network.telemetry"),))] == 120
    assert samples[("ioc_dead_letters_total", (("reason", "invalid_json"),))] == 2
    assert samples[("ioc_consumer_lag", (("partition", "3"), ("topic", "ioc.network.telemetry")))] == 17
    assert samples[("ioc_incidents_opened_total", ())] == 4
    assert samples[("ioc_sink_buffered_rows", ())] == 2_000 and samples[("ioc_insert_seconds_total", ())] == 0.25
    stats.per_topic["ioc.network.telemetry"] = 500  # read at scrape time: no copy to refresh
    assert 'ioc_events_in_total{topic="ioc.network.telemetry"} 500.0' in get(url + "/metrics")[1]
    assert get(url + "/nothing")[0] == 404


def test_health_and_the_compose_check(served: tuple[WorkerStats, WriterStats, str]) -> None:
    stats, _, url = served
    check = [sys.executable, str(REPO / "deploy" / "worker_healthy.py"), url + "/health"]
    assert get(url + "/health")[0] == 503  # not in its group yet
    assert subprocess.run(check, timeout=30).returncode == 1
    stats.partitions = 4
    assert get(url + "/health") == (200, '{"status": "ok", "partitions": 4, "paused": false, "lag": 0, '
                                         '"last_error": ""}')
    assert subprocess.run(check, timeout=30).returncode == 0
    stats.paused, stats.last_error = True, "SinkUnavailable: ClickHouse down"
    assert get(url + "/health")[0] == 503
    assert subprocess.run(check, timeout=30).returncode == 1
