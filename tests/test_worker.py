"""The Faust worker end to end on a real broker (Apache Kafka 3.9 and Tansu) into real ClickHouse.

Each test replays the same simulated morning and compares ClickHouse with the pipelines run directly
on the same tables (`process_tables`): the windowing engine without Kafka, partitioned as Kafka does.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from clickhouse_stand_in import StandIn
from confluent_kafka import Consumer, Producer, TopicPartition
from worker_support import (
    AGG_KEYS,
    WorkerProcess,
    assert_incidents_match,
    assert_same_tables,
    dump_tables,
    expected_aggregates,
    wait_all_done,
)

from ioc.broker import LocalBroker
from models.events import DEADLETTER_TOPIC, FAMILIES, SERVICE_CENTER
from models.settings import Settings, bootstrap_servers
from simulators.generate import generate
from simulators.replay import replay_dir
from streams.pipeline import process_tables

pytestmark = [pytest.mark.broker, pytest.mark.slow]

LOCAL_0800 = 1752454800000  # 2025-07-14T01:00Z = 08:00 in Vietnam
INCIDENT_NODES = {"N-000.05.00.H55", "N-000.00.03.H55"}  # outage 10:00-10:45, degraded link (default.toml)


def hash_bucket(node: str) -> int:
    return sum(node.encode()) % 4


@pytest.fixture(scope="module")
def morning(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, pa.Table]]:
    """08:00-11:00 local on a Monday (a queue surge and a node outage): tickets, filings, some nodes' telemetry."""
    out = tmp_path_factory.mktemp("morning")
    tables = {}
    for name, table in generate("default", date(2025, 7, 14), 12, seed=7).items():
        t = pc.cast(table.column("event_time"), pa.int64()).to_numpy()
        keep = (t >= LOCAL_0800) & (t < LOCAL_0800 + 180 * 60_000)
        if name == "network":  # a quarter of the nodes, with the two of the scenario's incidents
            nodes = table.column("node_id").to_pylist()
            keep &= np.array([n in INCIDENT_NODES or hash_bucket(n) == 0 for n in nodes])
        tables[name] = table.filter(pa.array(keep))
        pq.write_table(tables[name], out / f"{FAMILIES[name].topic}.parquet")
    return out, tables


@pytest.fixture(scope="module")
def expected(morning: tuple[Path, dict[str, pa.Table]], broker: LocalBroker) -> dict[str, pa.Table]:
    return expected_aggregates(process_tables(morning[1], Settings(), partitions=broker.partitions))


def kafka_only(broker: LocalBroker) -> None:
    """Tansu is the zero-install fallback: it runs the core test; the long scenarios run on Apache
    Kafka (the production broker) unless IOC_TEST_BROKER=tansu asks for all of them on Tansu."""
    if broker.kind == "tansu" and os.environ.get("IOC_TEST_BROKER") != "tansu":
        pytest.skip("long scenario: run on Apache Kafka (IOC_TEST_BROKER=tansu runs it on Tansu)")


def total_events(tables: dict[str, pa.Table]) -> int:
    return sum(t.num_rows for t in tables.values())


def tansu_env(b: LocalBroker) -> dict[str, str]:
    """Tansu's group joins wait half the session timeout (DESIGN.md s.5): keep it short there."""
    return {"IOC_KAFKA_SESSION_TIMEOUT_S": "6"} if b.kind == "tansu" else {}


def fresh_broker(broker: LocalBroker, tmp_path: Path) -> LocalBroker:
    b = LocalBroker(broker.kind, tmp_path / "broker", partitions=broker.partitions)
    b.start()
    return b


def assert_store_matches(dsn: str, expected: dict[str, pa.Table], tables: dict[str, pa.Table], out: Path) -> None:
    raw = [f"raw_{name}" for name in tables]
    stored = dump_tables(dsn, [*AGG_KEYS, *raw], out)
    for name in AGG_KEYS:
        assert_same_tables(stored[name], expected[name], name)
    for name, table in tables.items():  # every event once, none lost
        assert sorted(stored[f"raw_{name}"].column("event_id").to_pylist()) == sorted(
            table.column("event_id").to_pylist())


def test_replayed_morning_equals_the_engine_run_directly(broker: LocalBroker, morning, expected,
                                                         tmp_path: Path) -> None:
    directory, tables = morning
    b = fresh_broker(broker, tmp_path)
    dsn = f"chdb://{tmp_path / 'store.chdb'}"
    env = tansu_env(b) | {"IOC_METRICS_PORT": "0"}  # a free port, written to the stats file
    worker = WorkerProcess(tmp_path / "w", b.url, dsn, f"t-{uuid.uuid4().hex[:8]}", env).start()
    try:
        worker.wait_ready()
        replay_dir(directory, b.url, fmt="json", settings=Settings(), progress=False)
        wait_all_done([worker], total_events(tables))
        stats = worker.stats()
        metrics, health = scrape(stats["metrics_port"])
    finally:
        worker.stop()
        b.stop()
    assert stats["dead_letters"] == 0 and stats["late"] == 0
    assert_store_matches(dsn, expected, tables, tmp_path / "dump")
    assert_incidents_match(dsn, tables, tmp_path / "dump")
    # the Prometheus endpoint tells the same story as the stats file
    assert health == (200, "ok")
    assert sum(v for (name, _), v in metrics.items() if name == "ioc_events_in_total") == total_events(tables)
    assert metrics[("ioc_rows_inserted_total", ())] == stats["writer"]["rows_inserted"]
    assert metrics[("ioc_incidents_opened_total", ())] == stats["incidents_opened"] > 0
    assert {labels for name, labels in metrics if name == "ioc_consumer_lag"} and all(
        v == 0 for (name, _), v in metrics.items() if name == "ioc_consumer_lag")


def scrape(port: int) -> tuple[dict[tuple[str, tuple], float], tuple[int, str]]:
    """The worker's /metrics as {(sample name, labels): value} and its /health (status code, status)."""
    import json
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as reply:
        return samples, (reply.status, json.loads(reply.read())["status"])


def test_malformed_messages_are_dead_lettered_and_the_rest_unaffected(broker: LocalBroker, morning, expected,
                                                                      tmp_path: Path) -> None:
    kafka_only(broker)
    directory, tables = morning
    b = fresh_broker(broker, tmp_path)
    dsn = f"chdb://{tmp_path / 'store.chdb'}"
    worker = WorkerProcess(tmp_path / "w", b.url, dsn, f"t-{uuid.uuid4().hex[:8]}").start()
    bad = {b"{not json": "undecodable", b'{"event_id": "x"}': "missing_field",
           b'{"event_id":"y","event_time":"2025-07-14T01:00:00Z","center_id":"QNG-HCC","kind":"teleport"}':
           "unknown_enum", b"\x00" * 100_000: "oversized"}
    try:
        worker.wait_ready()
        producer = Producer({"bootstrap.servers": bootstrap_servers(b.url)})
        for value in bad:
            producer.produce(SERVICE_CENTER.topic, key=b"QNG-HCC", value=value)
        producer.flush(30)
        replay_dir(directory, b.url, fmt="arrow", batch=2000, settings=Settings(), progress=False)
        wait_all_done([worker], total_events(tables) + len(bad))
        stats = worker.stats()
    finally:
        worker.stop()
    letters = read_deadletters(b, len(bad))
    b.stop()
    assert stats["dead_letters"] == len(bad)
    assert sorted(reason for reason, _ in letters) == sorted(bad.values())
    assert {payload for _, payload in letters} == set(bad)  # the original bytes, untouched
    assert_store_matches(dsn, expected, tables, tmp_path / "dump")
    counts = dump_tables(dsn, ["deadletters"], tmp_path / "dl")["deadletters"]
    assert sorted(counts.column("reason").to_pylist()) == sorted(bad.values())


def read_deadletters(b: LocalBroker, n: int) -> list[tuple[str, bytes]]:
    consumer = Consumer({"bootstrap.servers": bootstrap_servers(b.url), "group.id": "dl-reader",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    parts = consumer.list_topics(timeout=10).topics[DEADLETTER_TOPIC].partitions
    consumer.assign([TopicPartition(DEADLETTER_TOPIC, p, 0) for p in parts])
    out: list[tuple[str, bytes]] = []
    deadline = time.monotonic() + 30
    while len(out) < n and time.monotonic() < deadline:
        for m in consumer.consume(100, timeout=1.0):
            if not m.error():
                headers = dict(m.headers() or [])
                assert headers["ioc-source-topic"] == SERVICE_CENTER.topic.encode()
                out.append((headers["ioc-reason"].decode(), m.value()))
    consumer.close()
    return out


def test_two_workers_split_the_partitions_and_total_the_same(broker: LocalBroker, morning, expected,
                                                             tmp_path: Path) -> None:
    """Against a ClickHouse server (here the HTTP stand-in: no server can be installed) two workers share."""
    kafka_only(broker)
    directory, tables = morning
    b = fresh_broker(broker, tmp_path)
    group = f"t-{uuid.uuid4().hex[:8]}"
    with StandIn(tmp_path / "server.chdb") as server:
        workers = [WorkerProcess(tmp_path / f"w{i}", b.url, server.dsn, group).start() for i in range(2)]
        try:
            for w in workers:
                w.wait_ready()
            deadline = time.monotonic() + 300  # both in the group, partitions split (a liveness bound only)
            while time.monotonic() < deadline and not all(0 < w.stats().get("partitions", 0) < 12 for w in workers):
                time.sleep(0.5)
            split = [w.stats()["partitions"] for w in workers]
            replay_dir(directory, b.url, fmt="json", settings=Settings(), progress=False)
            wait_all_done(workers, total_events(tables))
            processed = [w.stats()["events_in"] for w in workers]
        finally:
            for w in workers:
                w.stop()
            b.stop()
        assert sum(split) == 12 and all(0 < p < 12 for p in split)
        assert all(p > 0 for p in processed)
        assert_store_matches(server.dsn, expected, tables, tmp_path / "dump")


def test_sigkill_mid_replay_then_restart_gives_the_same_aggregates(broker: LocalBroker, morning, expected,
                                                                   tmp_path: Path) -> None:
    kafka_only(broker)
    directory, tables = morning
    b = fresh_broker(broker, tmp_path)
    dsn = f"chdb://{tmp_path / 'store.chdb'}"
    group = f"t-{uuid.uuid4().hex[:8]}"
    worker = WorkerProcess(tmp_path / "w", b.url, dsn, group).start()
    try:
        worker.wait_ready()
        replay_dir(directory, b.url, fmt="json", settings=Settings(), progress=False)
        worker._wait(lambda s: s.get("checkpoints", 0) >= 1 and s.get("events_in", 0) > total_events(tables) // 3,
                     120, "processed a third")
        worker.stop(signal.SIGKILL)
        restarted = WorkerProcess(tmp_path / "w2", b.url, dsn, group).start()
        restarted.wait_ready()
        wait_all_done([restarted], 0)
        stats = restarted.stats()
        restarted.stop()
    finally:
        worker.stop()
        b.stop()
    assert stats["skipped"] >= 0
    assert_store_matches(dsn, expected, tables, tmp_path / "dump")
