"""Replay into a real broker (Apache Kafka 3.9 and Tansu), read back with a plain consumer.

Every event arrives exactly once, and one entity always lands on one partition (DESIGN.md s.4).
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import date
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, TopicPartition

from ioc.broker import LocalBroker
from models.events import FAMILIES, FAMILY_BY_TOPIC
from models.settings import Settings, bootstrap_servers
from simulators.generate import generate
from simulators.replay import kafka_partition, replay_dir
from streams.decode import is_arrow_message

pytestmark = [pytest.mark.broker]


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Monday 07:00-10:00 local of the default scenario, telemetry thinned to one sample a minute."""
    out = tmp_path_factory.mktemp("recording")
    tables = generate("default", date(2025, 7, 14), 10, seed=7)
    for name, table in tables.items():
        times = pc.cast(table.column("event_time"), pa.int64()).to_numpy()
        keep = times >= 1752451200000  # 2025-07-14T00:00Z = 07:00 local
        if name == "network":
            keep &= times % 60_000 == 0
        pq.write_table(table.filter(pa.array(keep)), out / f"{FAMILIES[name].topic}.parquet")
    return out


def read_back(broker: LocalBroker, expected: int, timeout_s: float = 60) -> list[tuple[str, int, bytes | None,
                                                                                      bytes, list]]:
    consumer = Consumer({"bootstrap.servers": bootstrap_servers(broker.url), "group.id": "test-readback",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    meta = consumer.list_topics(timeout=10)
    consumer.assign([TopicPartition(t, p, 0) for t in FAMILY_BY_TOPIC for p in meta.topics[t].partitions])
    out: list[tuple[str, int, bytes | None, bytes, list]] = []
    events = 0
    deadline = time.monotonic() + timeout_s
    while events < expected and time.monotonic() < deadline:
        for m in consumer.consume(10_000, timeout=1.0):
            if m.error():
                continue
            out.append((m.topic(), m.partition(), m.key(), m.value(), m.headers() or []))
            events += (pa.ipc.open_stream(m.value()).read_all().num_rows if is_arrow_message(m.headers())
                       else 1)
    consumer.close()
    return out


def expected_ids(recording: Path) -> dict[str, list[str]]:
    return {f.topic: pq.read_table(recording / f"{f.topic}.parquet").column("event_id").to_pylist()
            for f in FAMILIES.values()}


@pytest.mark.parametrize("fmt", ["json", "arrow"])
def test_replay_delivers_every_event_once_keyed_by_entity(broker: LocalBroker, recording: Path, fmt: str,
                                                          tmp_path: Path) -> None:
    # A fresh set of topics per format: the module's broker is shared.
    fresh = LocalBroker(broker.kind, tmp_path / "b")
    fresh.start()
    try:
        summary = replay_dir(recording, fresh.url, speed=0, fmt=fmt, batch=500, settings=Settings(),
                             progress=False)
        ids = expected_ids(recording)
        assert summary.events == {t: len(v) for t, v in ids.items()}
        messages = read_back(fresh, summary.total)
    finally:
        fresh.stop()

    partitions = fresh.partitions
    seen: dict[str, list[str]] = defaultdict(list)
    partition_of_key: dict[tuple[str, str], set[int]] = defaultdict(set)
    for topic, partition, key, value, headers in messages:
        family = FAMILY_BY_TOPIC[topic]
        if fmt == "arrow":
            assert is_arrow_message(headers)
            table = pa.ipc.open_stream(value).read_all()
            rows = table.select(["event_id", family.key_field]).to_pylist()
        else:
            record = orjson.loads(value)
            assert key == record[family.key_field].encode()  # keyed by the entity
            rows = [record]
        for row in rows:
            seen[topic].append(row["event_id"])
            entity = row[family.key_field]
            partition_of_key[(topic, entity)].add(partition)
            assert partition == kafka_partition(entity.encode(), partitions)  # Kafka's murmur2, like Java
    for topic, want in ids.items():
        assert sorted(seen[topic]) == sorted(want), f"{topic}: every event exactly once"
    assert all(len(p) == 1 for p in partition_of_key.values())


def test_replay_paces_event_time_at_the_given_speed(broker: LocalBroker, tmp_path: Path) -> None:
    """20 minutes of event time at 600x real time take about 2 s of wall time."""
    tables = generate("default", date(2025, 7, 14), 2, seed=7, families=["network"])
    net = tables["network"]
    times = pc.cast(net.column("event_time"), pa.int64())
    first = times[0].as_py()
    window = net.filter(pc.and_(pc.less(times, pa.scalar(first + 20 * 60_000)),
                                pc.equal(net.column("node_id"), "CORE-01")))
    pq.write_table(window, tmp_path / f"{FAMILIES['network'].topic}.parquet")
    started = time.monotonic()
    replay_dir(tmp_path, broker.url, speed=600, fmt="json", settings=Settings(), progress=False)
    assert time.monotonic() - started >= 1.9  # paced, not as fast as possible (a lower bound only)


def test_replay_of_an_empty_directory_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="ioc simulate"):
        replay_dir(tmp_path, "kafka://127.0.0.1:1", settings=Settings(), progress=False)
