"""Run real `ioc worker` processes in tests and read what they wrote.

A worker owns its chDB store (one process per path), so the test reads it from a short-lived
subprocess after the worker stopped, as Parquet files: no second chDB path in the test process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from ioc.broker import LocalBroker
from models.settings import Settings
from streams.pipeline import Outputs, process_tables

AGG_KEYS = {
    "agg_service_center": ["window_start", "center_id"],
    "agg_filings": ["window_start", "agency_code", "channel", "level"],
    "agg_network": ["window_start", "node_id"],
    "network_outages": ["node_id", "start"],
}
IGNORED = {"version", "ingested_at"}


@dataclass
class WorkerProcess:
    data_dir: Path
    broker_url: str
    dsn: str
    app_id: str
    extra_env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        return os.environ | {"IOC_DATA_DIR": str(self.data_dir), "IOC_BROKER_URL": self.broker_url,
                             "IOC_CLICKHOUSE_DSN": self.dsn, "IOC_APP_ID": self.app_id,
                             "IOC_CHECKPOINT_INTERVAL_S": "1", "IOC_IDLE_FLUSH_S": "2"} | self.extra_env

    def start(self) -> WorkerProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "worker.log").open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "ioc.cli", "worker"], env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT)
        return self

    def stats(self) -> dict:
        assert self.process is not None
        try:
            return json.loads((self.data_dir / f"worker-{self.process.pid}.json").read_text())
        except (OSError, ValueError):
            return {}

    def wait_ready(self, timeout_s: float = 120) -> None:
        self._wait(lambda s: s.get("partitions", 0) > 0, timeout_s, "joined the group")

    def _wait(self, done, timeout_s: float, what: str) -> dict:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited {self.process.returncode}:\n{self.log()[-4000:]}")
            stats = self.stats()
            if stats and done(stats):
                return stats
            time.sleep(0.25)
        raise AssertionError(f"worker never {what}; stats {self.stats()}\n{self.log()[-4000:]}")

    def log(self) -> str:
        path = self.data_dir / "worker.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def wait_all_done(workers: Iterable[WorkerProcess], events: int, timeout_s: float = 240) -> None:
    """Until the workers together processed `events` messages, have no lag, nothing buffered, and the
    idle flush emitted the last windows (stats quiet for a few seconds)."""
    workers = list(workers)
    deadline = time.monotonic() + timeout_s
    quiet_since = None
    last = None
    while time.monotonic() < deadline:
        stats = [w.stats() for w in workers]
        for w in workers:
            assert w.process is not None and w.process.poll() is None, w.log()[-4000:]
        seen = sum(int(s.get("events_in", 0)) + int(s.get("skipped", 0)) for s in stats)
        snapshot = [(s.get("events_in"), s.get("windows_out"), s.get("writer", {}).get("rows_inserted")) for s in stats]
        settled = (seen >= events and all(s.get("lag", 1) == 0 for s in stats)
                   and all(s.get("writer", {}).get("buffered_rows", 1) == 0 for s in stats))
        if settled and snapshot == last:
            quiet_since = quiet_since or time.monotonic()
            if time.monotonic() - quiet_since > 4:
                return
        else:
            quiet_since = None
        last = snapshot
        time.sleep(0.5)
    raise AssertionError(f"workers not done: {[w.stats() for w in workers]}\n{workers[0].log()[-3000:]}")


_DUMP = """
import sys, clickhouse_connect, pyarrow.parquet as pq
client = clickhouse_connect.get_client(dsn=sys.argv[1])
for table, out in zip(sys.argv[2::2], sys.argv[3::2]):
    pq.write_table(client.query_arrow(f"SELECT * FROM {table} FINAL"), out)
client.close()
"""


def dump_tables(dsn: str, tables: list[str], out_dir: Path) -> dict[str, pa.Table]:
    """Read tables (FINAL) from a store in a subprocess: a chDB store or a server DSN."""
    out_dir.mkdir(parents=True, exist_ok=True)
    args = [a for t in tables for a in (t, str(out_dir / f"{t}.parquet"))]
    subprocess.run([sys.executable, "-c", _DUMP, dsn, *args], check=True, capture_output=True, timeout=120)
    return {t: pq.read_table(out_dir / f"{t}.parquet") for t in tables}


def comparable(table: pa.Table, name: str) -> pa.Table:
    """Sorted by the table's idempotency key, without bookkeeping columns; times as UTC ms."""
    table = table.select([c for c in table.column_names if c not in IGNORED])
    columns = {}
    for n in table.column_names:
        col = table.column(n)
        if pa.types.is_timestamp(col.type):
            col = pc.cast(pc.cast(col, pa.timestamp("ms", tz="UTC")), pa.int64())
        columns[n] = col
    table = pa.table(columns)
    return table.sort_by([(k, "ascending") for k in AGG_KEYS[name]])


def expected_aggregates(outputs: list[Outputs]) -> dict[str, pa.Table]:
    """The latest version of every window (and outage) the pipelines emitted."""
    parts: dict[str, list[pa.Table]] = {}
    for out in outputs:
        for table, rows in out.rows:
            if table in AGG_KEYS and rows.num_rows:
                parts.setdefault(table, []).append(rows)
    result = {}
    for table, chunks in parts.items():
        rows = pa.concat_tables(chunks)
        keys = AGG_KEYS[table]
        order = rows.sort_by([*[(k, "ascending") for k in keys], ("version", "descending")])
        seen: set[tuple] = set()
        keep = []
        key_rows = order.select(keys).to_pylist()
        for i, k in enumerate(key_rows):
            t = tuple(k.values())
            if t not in seen:
                seen.add(t)
                keep.append(i)
        result[table] = order.take(pa.array(keep))
    return result


def assert_same_tables(actual: pa.Table, expected: pa.Table, name: str) -> None:
    a, e = comparable(actual, name), comparable(expected, name)
    assert a.num_rows == e.num_rows, f"{name}: {a.num_rows} rows in ClickHouse, {e.num_rows} expected"
    for column in e.column_names:
        got, want = a.column(column).to_pylist(), e.column(column).to_pylist()
        if got != want:
            bad = next(i for i, (g, w) in enumerate(zip(got, want, strict=True)) if g != w)
            raise AssertionError(f"{name}.{column} differs at row {bad}: {got[bad]!r} != {want[bad]!r}; "
                                 f"key {a.select(AGG_KEYS[name]).slice(bad, 1).to_pylist()}")


# ---------------------------------------------------------------- reliability tests (tests/test_reliability*.py)

_QUERY = """
import sys, clickhouse_connect, pyarrow.parquet as pq
client = clickhouse_connect.get_client(dsn=sys.argv[1])
pq.write_table(client.query_arrow(sys.argv[2]), sys.argv[3])
client.close()
"""


def query_store(dsn: str, sql: str, out: Path | None = None) -> pa.Table:
    """One read-only query against a store from a subprocess (a worker may own the chDB path, see above)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = out or Path(tmp) / "result.parquet"
        subprocess.run([sys.executable, "-c", _QUERY, dsn, sql, str(path)], check=True, capture_output=True,
                       timeout=120)
        return pq.read_table(path)


def assert_same_aggregates(actual: pa.Table, expected: pa.Table, name: str, rel: float = 1e-9) -> None:
    """Like `assert_same_tables`, but float columns may differ in their last bits.

    Events that arrive in another order (shuffled within the allowed lateness) reach a window in
    another order, and a float sum depends on the order of its terms (2479.7000000000003 vs 2479.7).
    Counts, keys, versions, maxima, sketches and quantiles must still be exactly equal.
    """
    import math

    a, e = comparable(actual, name), comparable(expected, name)
    assert a.num_rows == e.num_rows, f"{name}: {a.num_rows} rows in ClickHouse, {e.num_rows} expected"
    for column in e.column_names:
        got, want = a.column(column).to_pylist(), e.column(column).to_pylist()
        floating = pa.types.is_floating(e.column(column).type)
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            close = floating and g is not None and w is not None and (
                math.isclose(g, w, rel_tol=rel, abs_tol=1e-9) or (math.isnan(g) and math.isnan(w)))
            if g != w and not close:
                raise AssertionError(f"{name}.{column} differs at row {i}: {g!r} != {w!r}; "
                                     f"key {a.select(AGG_KEYS[name]).slice(i, 1).to_pylist()}")


class PacedProducer:
    """Produces messages (`simulators.replay.Outgoing`, in order) over about `seconds` in a thread, so a
    test can disturb the system mid-stream; `sent` is the progress. librdkafka retries through a broker
    restart, and `join()` raises whatever went wrong. `held()` stops the stream for a while (a test
    restarting a worker), so the rest of it still arrives after the restart.

    `hold_at` (a share of the messages) stops the stream there by itself until `resume()`: a test that
    disturbs the system at that point knows how much of the stream is still to come, however fast or
    slow the machine runs the worker (`wait_held()` returns once everything before it is flushed)."""

    def __init__(self, url: str, messages: list, seconds: float,  # type: ignore[type-arg]
                 hold_at: float | None = None):
        import threading

        self.url, self.messages, self.seconds = url, messages, seconds
        self.hold_index = None if hold_at is None else round(hold_at * len(messages))
        self.sent = 0
        self.error: BaseException | None = None
        self.running = threading.Event()
        self.running.set()
        self.holding = threading.Event()  # set while the stream waits, everything before it flushed
        self.thread = threading.Thread(target=self._run, name="paced-producer", daemon=True)

    def start(self) -> PacedProducer:
        self.thread.start()
        return self

    @property
    def progress(self) -> float:
        return self.sent / max(1, len(self.messages))

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self.running.clear()
        try:
            yield
        finally:
            self.running.set()

    def wait_held(self, timeout_s: float = 300) -> None:
        """Until the stream stands at `hold_at`, everything before it delivered to the broker."""
        assert self.hold_index is not None, "no hold_at given"
        deadline = time.monotonic() + timeout_s
        while not self.holding.wait(0.25):
            assert self.error is None, self.error
            assert time.monotonic() < deadline, f"stream never reached its hold point ({self.progress:.2f})"

    def resume(self) -> None:
        self.running.set()

    def _run(self) -> None:
        from confluent_kafka import Producer

        from models.settings import bootstrap_servers

        try:
            producer = Producer({"bootstrap.servers": bootstrap_servers(self.url), "partitioner": "murmur2_random",
                                 "linger.ms": 5, "message.timeout.ms": 300_000})
            started = time.monotonic()
            per_message = self.seconds / max(1, len(self.messages))
            for i, m in enumerate(self.messages):
                if i == self.hold_index:
                    self.running.clear()
                if not self.running.is_set():
                    held_at = time.monotonic()
                    producer.flush(300)
                    self.holding.set()
                    self.running.wait()
                    self.holding.clear()
                    started += time.monotonic() - held_at  # the schedule resumes where it stopped
                while True:
                    try:
                        kwargs = {"partition": m.partition} if m.partition >= 0 else {}
                        producer.produce(m.topic, key=m.key, value=m.value, headers=m.headers, **kwargs)
                        break
                    except BufferError:
                        producer.poll(0.05)
                self.sent = i + 1
                ahead = started + (i + 1) * per_message - time.monotonic()
                if ahead > 0.02:
                    producer.poll(0)
                    time.sleep(ahead)
            if producer.flush(300) != 0:
                raise RuntimeError("messages left unsent after 300 s")
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    def join(self, timeout_s: float = 400) -> None:
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "producer did not finish"
        if self.error is not None:
            raise self.error


class StatsRecorder:
    """Samples a worker's stats file in a thread: what the worker reported while a test disturbed it."""

    def __init__(self, worker: WorkerProcess, every_s: float = 0.25):
        import threading

        self.worker, self.every_s = worker, every_s
        self.samples: list[tuple[float, dict]] = []  # type: ignore[type-arg]
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="stats-recorder", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            stats = self.worker.stats() if self.worker.process is not None else {}
            if stats:
                self.samples.append((time.monotonic(), stats))

    def between(self, start: float, end: float) -> list[dict]:  # type: ignore[type-arg]
        return [s for t, s in self.samples if start <= t <= end]

    def stop(self) -> None:
        self._stop.set()
        self.thread.join()


RAW_COUNTS = """
SELECT (SELECT count() FROM {t} FINAL), (SELECT uniqExact(event_id) FROM {t}), (SELECT count() FROM {t})
"""


def raw_counts(dsn: str, family: str) -> tuple[int, int, int]:
    """(rows with FINAL, distinct event ids, rows without FINAL) of a raw table. A redelivered event
    may be inserted twice (count() without FINAL), but FINAL must show each event once."""
    row = query_store(dsn, RAW_COUNTS.format(t=f"raw_{family}")).to_pylist()[0]
    final, distinct, inserted = row.values()
    return int(final), int(distinct), int(inserted)


def own_broker(kind: str, tmp_path: Path, partitions: int = 4, long: bool = True) -> LocalBroker:
    """A fresh broker for one test (empty topics). Long scenarios run on Apache Kafka, the production
    broker; on Tansu (the zero-install fallback) only when IOC_TEST_BROKER=tansu asks for it."""
    if long and kind == "tansu" and os.environ.get("IOC_TEST_BROKER") != "tansu":
        pytest.skip("long scenario: run on Apache Kafka (IOC_TEST_BROKER=tansu runs it on Tansu)")
    broker = LocalBroker(kind, tmp_path / "broker", partitions=partitions)  # type: ignore[arg-type]
    broker.start()
    return broker


def incident_facts(table: pa.Table) -> list[tuple]:
    return sorted((r["incident_id"], r["subject"], r["start"], r["detected_at"], tuple(r["subjects"]),
                   tuple(r["rules"]), r["severity"]) for r in table.to_pylist())


def assert_incidents_match(dsn: str, tables: dict[str, pa.Table], out: Path) -> None:
    """The incident stage behind Kafka (signals repartitioned by province, partition watermarks) finds
    the incidents the same stage finds on the same tables in-process, with the same ids and times. Only
    whether the last ones resolved may differ: a live worker keeps the newest windows open."""
    from streams.signals import latest_incidents, replay_signals

    stored = dump_tables(dsn, ["incidents"], out)["incidents"]
    offline = latest_incidents(replay_signals(process_tables(tables, Settings())))
    assert offline.num_rows >= 2  # the morning's queue surge and node outage at least
    live, direct = incident_facts(stored), incident_facts(offline)
    assert live == direct, (f"behind Kafka only: {sorted(set(live) - set(direct))}\n"
                            f"in-process only: {sorted(set(direct) - set(live))}")
