"""The worker's Prometheus `/metrics` and its `/health`, on `IOC_METRICS_PORT` (0: off).

A collector reads the worker's own counters (`streams.stats.WorkerStats`, the writer's `WriterStats`) at
scrape time, so nothing on the hot path counts twice; the server is prometheus_client's WSGI app on a
daemon thread, beside a `/health` answer in JSON: 200 while the worker is consuming, 503 while it is
paused by a ClickHouse outage or has not joined its group yet (docker-compose's health check calls it).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from sinks.writer import WriterStats
from streams.stats import WorkerStats


@dataclass
class WorkerView:
    """What a scrape reads: the live stats objects (plain ints and floats, read without a lock)."""

    stats: WorkerStats
    writer: Callable[[], WriterStats]


class WorkerCollector(Collector):
    def __init__(self, view: WorkerView) -> None:
        self.view = view

    def collect(self) -> Iterator[Any]:
        s, w = self.view.stats, self.view.writer()
        events = CounterMetricFamily("ioc_events_in", "Events consumed, by topic", labels=["topic"])
        for topic, n in sorted(s.per_topic.items()):
            events.add_metric([topic], n)
        yield events
        for name, doc, value in (
            ("ioc_messages_in", "Kafka messages consumed (event topics)", s.messages_in),
            ("ioc_events_valid", "Events that passed validation", s.events_valid),
            ("ioc_windows_out", "Window rows emitted", s.windows_out),
            ("ioc_late_events", "Events beyond the allowed lateness (late_events)", s.late),
            ("ioc_signals_out", "Window batches sent to the incident stage", s.signals_out),
            ("ioc_signals_in", "Window batches judged by this worker's incident stage", s.signals_in),
            ("ioc_incidents_opened", "Incidents opened", s.incidents_opened),
            ("ioc_incidents_resolved", "Incidents resolved", s.incidents_resolved),
            ("ioc_checkpoints", "Checkpoints stored", s.checkpoints),
            ("ioc_sink_errors", "ClickHouse outages seen by the worker", s.sink_errors),
            ("ioc_rows_inserted", "Rows inserted into ClickHouse", w.rows_inserted),
            ("ioc_inserts", "Inserts into ClickHouse", w.inserts),
            ("ioc_insert_retries", "Insert retries", w.retries),
            ("ioc_insert_seconds", "Time spent in successful inserts", w.insert_seconds),
        ):
            yield CounterMetricFamily(name, doc, value=value)
        dead = CounterMetricFamily("ioc_dead_letters", "Messages dead-lettered, by reason", labels=["reason"])
        for reason, n in sorted(s.dead_by_reason.items()):
            dead.add_metric([reason], n)
        yield dead
        lag = GaugeMetricFamily("ioc_consumer_lag", "Offsets not yet processed", labels=["topic", "partition"])
        for key, n in sorted(s.lag_by_partition.items()):
            topic, _, partition = key.rpartition(":")
            lag.add_metric([topic, partition], n)
        yield lag
        for name, doc, value in (
            ("ioc_checkpoint_last_seconds", "Last checkpoint: cut + ClickHouse writes + Kafka commit",
             s.checkpoint_last_s),
            ("ioc_checkpoint_max_seconds", "Longest checkpoint since start", s.checkpoint_max_s),
            ("ioc_checkpoint_cut_last_seconds", "Last checkpoint's cut (what batches wait for)",
             s.checkpoint_cut_last_s),
            ("ioc_insert_last_seconds", "Last insert into ClickHouse", w.insert_last_s),
            ("ioc_insert_max_seconds", "Longest insert since start", w.insert_max_s),
            ("ioc_sink_buffered_rows", "Rows waiting in the writer's buffer", w.buffered_rows),
            ("ioc_partitions", "Partitions of the event topics owned", s.partitions),
            ("ioc_signal_partitions", "Partitions of ioc.signals owned (the incident stage)", s.signal_partitions),
            ("ioc_paused", "1 while consumption is paused (ClickHouse unavailable)", int(s.paused)),
            ("ioc_started_at_seconds", "Unix time the worker started", s.started_at),
        ):
            yield GaugeMetricFamily(name, doc, value=value)


def health(stats: WorkerStats) -> tuple[bool, dict[str, object]]:
    ok = stats.partitions > 0 and not stats.paused
    return ok, {"status": "ok" if ok else "degraded", "partitions": stats.partitions, "paused": stats.paused,
                "lag": stats.lag, "last_error": stats.last_error}


def worker_app(view: WorkerView) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """The WSGI app: /metrics (Prometheus text format), /health (JSON), 404 otherwise."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WorkerCollector(view))
    metrics = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics(environ, start_response)
        if path == "/health":
            ok, body = health(view.stats)
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")])
            return [json.dumps(body).encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"/metrics or /health\n"]

    return app


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes every few seconds: not worth a log line
        pass


def serve_metrics(view: WorkerView, host: str, port: int) -> WSGIServer:
    """Start serving on a daemon thread; `server.server_port` is the port (0 picks a free one)."""
    server = make_server(host, port, worker_app(view), _ThreadingServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="ioc-metrics", daemon=True).start()
    return server
