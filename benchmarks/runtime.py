"""What the end-to-end benchmarks share: a real broker, empty topics, measured subprocesses, drains.

- `bench_broker()`: Apache Kafka 3.9 via `LocalBroker` when java + mvn exist, else Tansu (or a given
  URL); one broker serves a whole `ioc bench all` run, each measurement gets an empty topic
  (`fresh_topic`: delete + create, well under a second on Kafka) instead of a 15 s broker restart.
- `Contender`: one measured process (our instrumented worker, or a baseline) with its own data dir,
  consumer group and progress probe file (benchmarks.probe); `rss_mb()` and `cpu_s()` through psutil.
- `drain()`: the timing loop shared by every contender: poll the probe files every `poll_s` until
  `total` events are done (or the time box ends), and keep the progress series (lag over time).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from ioc.broker import LocalBroker, choose_kind, create_topics
from models.events import NETWORK
from models.settings import bootstrap_servers

WORKER = "benchmarks.worker_main"
FAUST_BASELINE = "benchmarks.baselines.faust_table"
QUIX_BASELINE = "benchmarks.baselines.quix_app"
PLAIN_CONSUMER = "benchmarks.baselines.plain_consumer"


@dataclass
class Broker:
    url: str
    kind: str
    partitions: int
    pid: int | None = None  # a local broker's process (its CPU is measured beside the contenders')

    def cpu_s(self) -> float | None:
        """The broker process's CPU seconds so far (None for a remote broker, or once it is gone)."""
        if self.pid is None:
            return None
        try:
            return process_cpu_s(self.pid)
        except psutil.Error:
            return None


def process_cpu_s(pid: int) -> float:
    """CPU seconds a process used so far, all its threads (a worker's embedded ClickHouse included)."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


@contextlib.contextmanager
def bench_broker(workdir: Path, kind: str = "auto", url: str = "", partitions: int = 4) -> Iterator[Broker]:
    """A broker for the run: the given URL, or a fresh local one stopped afterwards."""
    if url:
        yield Broker(url, kind if kind != "auto" else "external", partitions)
        return
    local = LocalBroker(choose_kind(kind), workdir / "broker", partitions=partitions)
    local.start()
    try:
        warm_up_group_coordinator(local.url)
        yield Broker(local.url, local.kind, partitions, local.info().pid)
    finally:
        local.stop()


def warm_up_group_coordinator(url: str, timeout_s: float = 120) -> None:
    """Join and commit one throwaway consumer group. On a new Kafka cluster the first group creates
    `__consumer_offsets`; a worker that is first meets "coordinator dead" for a while and may stall
    mid-run, which would be measured as the worker's time."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap_servers(url), "group.id": f"warm-up-{uuid.uuid4().hex[:6]}",
                         "enable.auto.commit": False})
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                consumer.commit(offsets=[TopicPartition(NETWORK.topic, 0, 0)], asynchronous=False)
                return
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        consumer.close()


def fresh_topic(url: str, topic: str = NETWORK.topic, partitions: int = 4, timeout_s: float = 60) -> None:
    """Delete and re-create `topic` so a measurement starts from an empty log."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap_servers(url)})
    if topic in admin.list_topics(timeout=10).topics:
        for future in admin.delete_topics([topic], operation_timeout=30).values():
            future.result()
    deadline = time.monotonic() + timeout_s
    while True:  # deletion completes asynchronously: creating too early fails with "already exists"/"marked"
        try:
            for future in admin.create_topics([NewTopic(topic, partitions, 1)], operation_timeout=30).values():
                future.result()
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    while time.monotonic() < deadline:  # every partition has a leader before anyone produces
        meta = admin.list_topics(topic, timeout=10).topics.get(topic)
        if meta is not None and len(meta.partitions) == partitions and all(
                p.leader >= 0 for p in meta.partitions.values()):
            return
        time.sleep(0.1)
    raise TimeoutError(f"topic {topic} not ready after {timeout_s}s")


def ensure_topics(url: str, partitions: int = 4) -> None:
    from models.events import ALL_TOPICS

    create_topics(url, list(ALL_TOPICS), partitions)


@dataclass
class Contender:
    """One measured process: `python -m MODULE` with the IOC_* environment and a probe file."""

    name: str
    module: str
    workdir: Path
    broker_url: str
    env: dict[str, str] = field(default_factory=dict)
    app_id: str = ""
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.app_id = self.app_id or f"bench-{self.name}-{uuid.uuid4().hex[:6]}"
        self.workdir.mkdir(parents=True, exist_ok=True)

    @property
    def stats_path(self) -> Path:
        return self.workdir / "probe.json"

    @property
    def log_path(self) -> Path:
        return self.workdir / "process.log"

    def start(self) -> Contender:
        env = os.environ | {
            "IOC_DATA_DIR": str(self.workdir), "IOC_BROKER_URL": self.broker_url, "IOC_APP_ID": self.app_id,
            "IOC_BENCH_STATS": str(self.stats_path), "IOC_CLICKHOUSE_DSN": f"chdb://{self.workdir / 'store.chdb'}",
        } | self.env
        self.stats_path.unlink(missing_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", self.module], env=env, stdout=log,
                                            stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1])
        return self

    def stats(self) -> dict[str, Any]:
        try:
            return json.loads(self.stats_path.read_text())
        except (OSError, ValueError):
            return {}

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            code = None if self.process is None else self.process.returncode
            raise RuntimeError(f"{self.name} exited ({code}):\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def wait(self, done: Callable[[dict[str, Any]], bool], timeout_s: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            stats = self.stats()
            if stats and done(stats):
                return stats
            time.sleep(0.05)
        raise TimeoutError(f"{self.name} never {what} within {timeout_s}s; probe {self.stats()}\n{self.log_tail()}")

    def wait_ready(self, timeout_s: float = 120) -> dict[str, Any]:
        return self.wait(lambda s: s.get("ready_at") is not None, timeout_s, "joined its group")

    def rss_mb(self) -> float:
        assert self.process is not None
        return psutil.Process(self.process.pid).memory_info().rss / 2**20

    def cpu_s(self) -> float:
        assert self.process is not None
        return process_cpu_s(self.process.pid)

    def stop(self, timeout_s: float = 60) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextlib.contextmanager
def running(*contenders: Contender) -> Iterator[tuple[Contender, ...]]:
    try:
        yield tuple(c.start() for c in contenders)
    finally:
        for c in contenders:
            c.stop()


@dataclass
class Drain:
    """How a set of contenders worked through `total` events (times relative to the first input)."""

    total: int
    events: int
    first_at: float
    processed_at: float  # the last event processed (in memory)
    sunk_at: float | None  # the last raw row in ClickHouse (our worker only)
    series: list[tuple[float, int]]  # (seconds since first input, events not yet processed)
    complete: bool

    @property
    def seconds(self) -> float:
        end = self.sunk_at if self.sunk_at is not None else self.processed_at
        return max(end - self.first_at, 1e-6)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events, "complete": self.complete, "seconds": round(self.seconds, 3),
            "events_per_s": round(self.events_per_s), "processed_s": round(self.processed_at - self.first_at, 3),
            "processed_events_per_s": round(self.events / max(self.processed_at - self.first_at, 1e-6)),
            "into_clickhouse_s": None if self.sunk_at is None else round(self.sunk_at - self.first_at, 3),
            "lag_series": downsample(self.series),
        }


def drain(contenders: list[Contender], total: int, *, sink: bool, timeout_s: float, time_box_s: float | None = None,
          poll_s: float = 0.1) -> Drain:
    """Until the contenders together processed `total` events (and, with `sink`, stored them all in
    ClickHouse), or `time_box_s` after their first input. Baselines are time-boxed: their rate is
    steady after a few seconds and a full drain would take minutes."""
    deadline = time.monotonic() + timeout_s
    series: list[tuple[float, int]] = []
    while True:
        for c in contenders:
            c.check_alive()
        stats = [c.stats() for c in contenders]
        firsts = [s["first_at"] for s in stats if s.get("first_at")]
        events = sum(int(s.get("events", 0)) for s in stats)
        sunk = sum(int(s.get("sunk", 0)) for s in stats)
        now = time.time()
        if firsts:
            series.append((round(now - min(firsts), 3), total - events))
        done = events >= total and (not sink or sunk >= total)
        boxed = time_box_s is not None and firsts and now - min(firsts) >= time_box_s
        if done or boxed or time.monotonic() > deadline:
            if not firsts:
                raise TimeoutError(f"no input reached {[c.name for c in contenders]} in {timeout_s}s:\n"
                                   + contenders[0].log_tail())
            processed_at = max((s.get("events_at") or 0.0) for s in stats)
            sunk_at = max((s.get("sunk_at") or 0.0) for s in stats) if sink else None
            return Drain(total, events, min(firsts), processed_at, sunk_at if sink and sunk else None, series,
                         complete=bool(done))
        time.sleep(poll_s)


def downsample(series: list[tuple[float, int]], points: int = 60) -> list[tuple[float, int]]:
    if len(series) <= points:
        return series
    step = len(series) / points
    picked = [series[int(i * step)] for i in range(points)]
    return [*picked, series[-1]]


@contextlib.contextmanager
def scratch_dir(parent: Path | None = None, prefix: str = "ioc-bench-") -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def stand_in_class() -> type:
    """`tests/clickhouse_stand_in.StandIn`: ClickHouse's HTTP interface over a chDB store, in its own
    process. The benchmarks that must query ClickHouse while a worker writes to it (freshness) use
    it, since a chDB store belongs to one process. It ships with the checkout, not the package."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tests" / "clickhouse_stand_in.py"
    if not path.exists():
        raise RuntimeError(f"{path} is missing: run this benchmark from a checkout of the repository")
    spec = importlib.util.spec_from_file_location("clickhouse_stand_in", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("clickhouse_stand_in", module)
    spec.loader.exec_module(module)
    return module.StandIn  # type: ignore[no-any-return]


def produce_json_fast(url: str, messages: list[bytes], keys: list[bytes], topic: str = NETWORK.topic) -> float:
    """Pre-encoded JSON messages as fast as librdkafka takes them, keyed like `ioc replay` (murmur2).
    For runs that start the workers first (scaling): the load must arrive much faster than it is
    consumed. Returns the seconds it took, delivery included."""
    from models.settings import Settings
    from simulators.replay import make_producer

    producer = make_producer(url, Settings())
    started = time.monotonic()
    for i, (key, value) in enumerate(zip(keys, messages, strict=True)):
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.01)
        if i % 10_000 == 0:
            producer.poll(0)
    if producer.flush(120):
        raise RuntimeError("not every benchmark message was delivered")
    return time.monotonic() - started
