"""The pipeline dashboard's worker panels, through a real Prometheus (Debian's `prometheus`, `make
system-tools`) scraping a real worker exporter (streams/exporter.py) over live counters: every PromQL
target returns series, and the labels its legend names are on them. Also: Prometheus accepts the
compose scrape config (deploy/prometheus.yml)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboards.catalog import dashboard_models
from dashboards.datasource import PROMETHEUS_TYPE, PROMETHEUS_UID
from dashboards.targets import Targets
from ioc.broker import free_port
from sinks.writer import WriterStats
from streams.exporter import WorkerView, serve_metrics
from streams.stats import WorkerStats

REPO = Path(__file__).resolve().parent.parent
SCRAPE_S = 1
# Grafana's $__rate_interval: max($__interval + scrape interval, 4 x scrape interval); a short range here.
RATE_INTERVAL = f"{4 * SCRAPE_S}s"


def tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (`make system-tools` installs Debian's prometheus package)")
    return found


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.loads(reply.read())


def query(base: str, expr: str) -> list[dict[str, Any]]:
    reply = get_json(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert reply["status"] == "success", reply
    return list(reply["data"]["result"])


@pytest.fixture
def worker_metrics() -> Iterator[tuple[WorkerStats, WriterStats, int]]:
    stats, writer = WorkerStats(), WriterStats()
    server = serve_metrics(WorkerView(stats, lambda: writer), "127.0.0.1", 0)
    try:
        yield stats, writer, server.server_port
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def prometheus(tmp_path: Path, worker_metrics: tuple[WorkerStats, WriterStats, int]) -> Iterator[str]:
    binary = tool("prometheus")
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""global:
  scrape_interval: {SCRAPE_S}s
scrape_configs:
  - job_name: ioc-worker
    static_configs:
      - targets: ["127.0.0.1:{worker_metrics[2]}"]
""")
    port = free_port()
    process = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                f"--web.listen-address=127.0.0.1:{port}"],
                               stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("wb"))
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/-/ready", timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("prometheus did not start:\n"
                                       + (tmp_path / "prometheus.log").read_text()[-2000:]) from None
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def prometheus_targets(model: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(panel["title"], target) for panel in model["panels"] for target in panel.get("targets", [])
            if (target.get("datasource") or {}).get("uid") == PROMETHEUS_UID]


def test_worker_panels_read_the_exporter_through_prometheus(
        prometheus: str, worker_metrics: tuple[WorkerStats, WriterStats, int]) -> None:
    stats, writer, _ = worker_metrics
    stats.partitions = 4
    stats.dead_by_reason = {"invalid_json": 0}
    stats.lag_by_partition = {"ioc.network.telemetry:0": 1_200, "ioc.network.telemetry:1": 0}
    stats.checkpoint_last_s, writer.insert_last_s, writer.buffered_rows = 0.21, 0.05, 40_000
    # A worker at work: counters grow between scrapes, so rates have two points and more.
    deadline = time.monotonic() + 60
    while True:
        stats.per_topic = {t: stats.per_topic.get(t, 0) + 5_000
                           for t in ("ioc.network.telemetry", "ioc.filings.events")}
        stats.dead_by_reason["invalid_json"] += 1
        time.sleep(0.25)
        scraped = query(prometheus, 'count_over_time(up{job="ioc-worker"}[1m])')
        if scraped and float(scraped[0]["value"][1]) >= 6:
            break
        assert time.monotonic() < deadline, "prometheus did not scrape the exporter"

    targets = prometheus_targets(dashboard_models(Targets.from_scenario())["ioc-pipeline"])
    assert len(targets) >= 5
    for title, target in targets:
        assert target["datasource"]["type"] == PROMETHEUS_TYPE
        series = query(prometheus, target["expr"].replace("$__rate_interval", RATE_INTERVAL))
        assert series, f"{title!r}: {target['expr']} returned nothing"
        legend_labels = {part.split("}}")[0] for part in target["legendFormat"].split("{{")[1:]}
        for s in series:
            assert legend_labels <= set(s["metric"]), f"{title!r}: legend {target['legendFormat']} on {s['metric']}"
    by_title = {(t, target["refId"]): target["expr"] for t, target in targets}
    lag = query(prometheus, by_title[("Worker: consumer lag", "A")])
    assert {(s["metric"]["partition"], float(s["value"][1])) for s in lag} == {("0", 1_200.0), ("1", 0.0)}
    rate = query(prometheus, by_title[("Worker: events in per second", "A")].replace("$__rate_interval", "10s"))
    assert all(float(s["value"][1]) > 0 for s in rate)


def test_prometheus_accepts_the_compose_scrape_config() -> None:
    done = subprocess.run([tool("promtool"), "check", "config", str(REPO / "deploy" / "prometheus.yml")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
