"""`ioc bench freshness`: how soon an event's effects are queryable in ClickHouse, at half the maximum rate.

Setup: our worker on the broker, writing over HTTP to ClickHouse (the stand-in: ClickHouse's HTTP
interface over chDB, in its own process, so this process can query while the worker writes, as a
dashboard does). A paced producer sends network telemetry at `rate` events/s (default: half the
sustained JSON rate of `ioc bench pipeline` (a), from its result file, else from a short probe run),
one JSON event per message, over 1,000 nodes, each event's `event_time` = the wall clock at the
moment it is produced. The worker runs with IOC_ALLOWED_LATENESS_S=`lateness_s` (default 2): a 1-min
window is due once its partition has seen an event at least `lateness_s` past the window's end. With
the production default (120 s) the same windows appear 118 s later by policy, not by pipeline delay.

Measured (all on this machine's one clock):
- window rows: for every (window, node) row of `agg_network`, `ingested_at` of its first version
  (ClickHouse's own insert time) minus the production time of the event that closed the window, i.e.
  the first event on the row's partition with event_time >= window end + lateness. This is
  event-to-queryable for the event that made the window due.
- windows (poll): ClickHouse is queried every `poll_s` (0.2 s) and the time a window is first seen
  complete (a row for every node) minus the production time of its last closing event (over the
  partitions); resolution `poll_s`, an upper bound.
- raw events: for every event, `ingested_at` of its raw row minus its production time (event_time).
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from benchmarks.machine import machine_info
from benchmarks.pipeline import measure, preload
from benchmarks.runtime import WORKER, Broker, Contender, bench_broker, fresh_topic, scratch_dir, stand_in_class
from models.events import NETWORK
from models.schema import format_time
from models.settings import Settings
from simulators.replay import kafka_partition
from streams.stats import stats_files

WINDOW_MS = 60_000
TARGET_P99_S = 2.0


@dataclass(frozen=True)
class FreshnessParams:
    windows: int  # how many window closings to observe; 0: raw events only, for `duration_s` (tests)
    lateness_s: int = 2
    nodes: int = 1_000
    poll_s: float = 0.2
    settle_s: float = 5.0  # load kept on after the last closing (http: until its rows are polled, at most this)
    store: str = "chdb"  # or "http": the stand-in server, polled live
    profile: str = ""  # a path: cProfile the worker (benchmarks.probe.profiled)
    duration_s: float = 5.0  # with windows=0 only
    # Also measured at these fractions of the half-max rate: where the worker keeps up, the same numbers
    # show the pipeline's own latency rather than a growing backlog.
    lower_rates: tuple[float, ...] = (0.25,)

    @classmethod
    def sized(cls, quick: bool) -> FreshnessParams:
        return cls(windows=1 if quick else 3)


def half_max_rate(results_dir: Path | None, broker: Broker, work: Path) -> tuple[float, str]:
    """Half the sustained JSON rate of our worker: from pipeline.json when present, else a probe run."""
    if results_dir is not None and (results_dir / "pipeline.json").exists():
        pipeline = json.loads((results_dir / "pipeline.json").read_text())
        rate = pipeline["contenders"]["a_worker_json"]["events_per_s"]
        return rate / 2, f"half of pipeline (a) = {rate:,.0f} events/s (pipeline.json of this run)"
    events = 60_000
    preload(broker, work, events, 1_000, "json", 10_000)
    probe = measure("rate-probe", WORKER, broker, work, events, sink=True, timeout_s=300)
    return probe["events_per_s"] / 2, f"half of a {events:,}-event probe of pipeline (a) = {probe['events_per_s']:,}"


class PacedProducer:
    """Network telemetry at `rate` events/s with event_time = now; remembers, per partition, when each
    window end + lateness was first passed (the closing event's production time).

    Messages are assembled from per-node byte templates (a few microseconds each, about what the
    worker's JSON codec expects from any producer): the producer shares the 2 cores with the worker
    and the broker, and a slow one would both miss the rate and starve the worker it measures."""

    def __init__(self, url: str, rate: float, nodes: int, lateness_ms: int, partitions: int):
        from simulators.replay import make_producer

        self.producer = make_producer(url, Settings())
        self.rate, self.lateness_ms = rate, lateness_ms
        self.nodes = [f"N-{i:06d}".encode() for i in range(nodes)]
        self.partition_of = [kafka_partition(k, partitions) for k in self.nodes]
        rng = np.random.default_rng(3)
        self.bodies = [orjson.dumps({
            "node_id": node.decode(), "latency_ms": lat, "jitter_ms": lat * 0.1, "loss_pct": 0.01, "rx_bps": 3e8,
            "tx_bps": 1e8, "capacity_bps": 1e9, "link_up": True})[1:] for node, lat in zip(
                self.nodes, rng.lognormal(2.5, 0.4, nodes).tolist(), strict=True)]
        self.closed_at: dict[tuple[int, int], int] = {}  # (partition, window end ms) -> production ms
        self.next_end = [0] * partitions
        self.sent = 0
        self.max_behind = 0  # events the producer was late at worst (it could not keep the rate)

    def start(self) -> None:
        self.t0, self.base = time.monotonic(), self.sent

    def pump(self) -> None:
        """Produce the events due by now, at most 50 ms worth per call (one pacing clock since
        `start`, so time spent elsewhere between pumps is caught up, not lost)."""
        due = self.base + int((time.monotonic() - self.t0) * self.rate)
        self.max_behind = max(self.max_behind, due - self.sent)
        n = min(due - self.sent, max(1, int(self.rate * 0.05)))
        if n > 0:
            now_ms = int(time.time() * 1000)
            stamp = format_time(now_ms).encode()
            for _ in range(n):
                self._send(now_ms, stamp)
        self.producer.poll(0)

    def _send(self, now_ms: int, stamp: bytes) -> None:
        i = self.sent % len(self.nodes)
        node, part = self.nodes[i], self.partition_of[i]
        if self.next_end[part] == 0:
            self.next_end[part] = (now_ms // WINDOW_MS + 1) * WINDOW_MS
        while now_ms >= self.next_end[part] + self.lateness_ms:  # this event makes the window due
            self.closed_at[(part, self.next_end[part])] = now_ms
            self.next_end[part] += WINDOW_MS
        value = b'{"event_id":"f-%d","event_time":"%s",%s' % (self.sent, stamp, self.bodies[i])
        while True:
            try:
                self.producer.produce(NETWORK.topic, value=value, key=node)
                break
            except BufferError:
                self.producer.poll(0.01)
        self.sent += 1


def quantiles(values: list[float] | np.ndarray) -> dict[str, Any]:
    arr = np.asarray(values, dtype=float)
    if not len(arr):
        return {"n": 0}
    return {"n": len(arr), "p50_s": round(float(np.percentile(arr, 50)), 3),
            "p99_s": round(float(np.percentile(arr, 99)), 3), "max_s": round(float(arr.max()), 3),
            "min_s": round(float(arr.min()), 3)}


# Per (window, node): when its final content (highest version) was first inserted. Earlier, lower versions
# exist when a partition went quiet for IOC_IDLE_FLUSH_S and emitted its open windows early.
ROWS_SQL = ("SELECT toUnixTimestamp64Milli(window_start), node_id, "
            "argMax(toUnixTimestamp64Milli(ingested_at), (version, -toUnixTimestamp64Milli(ingested_at))), "
            "count() FROM agg_network GROUP BY 1, 2")
RAW_SQL = ("SELECT quantiles(0.5, 0.99)(d), max(d), count() FROM (SELECT (toUnixTimestamp64Milli(ingested_at) "
           "- toUnixTimestamp64Milli(event_time)) / 1000 AS d FROM raw_network)")
_QUERY = """
import json, sys, clickhouse_connect
client = clickhouse_connect.get_client(dsn=sys.argv[1])
print(json.dumps([client.query(sql).result_rows for sql in sys.argv[2:]], default=list))
client.close()
"""


def query_store(dsn: str, *sqls: str) -> list[list[Any]]:
    """Queries in a subprocess: a chDB store opens in one process only, and ours is done with it."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _QUERY, dsn, *sqls], check=True, capture_output=True, timeout=300)
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def measure_freshness(broker: Broker, work: Path, params: FreshnessParams, rate: float, rate_source: str
                      ) -> dict[str, Any]:
    from sinks.client import connect

    fresh_topic(broker.url, partitions=broker.partitions)
    stand_in = stand_in_class()(work / "fresh-store.chdb") if params.store == "http" else None
    if stand_in is not None:
        stand_in.start()
    dsn = stand_in.dsn if stand_in is not None else f"chdb://{work / 'fresh-store.chdb'}"
    env = {"IOC_CLICKHOUSE_DSN": dsn, "IOC_ALLOWED_LATENESS_S": str(params.lateness_s),
           "IOC_TOPIC_PARTITIONS": str(broker.partitions)}
    if params.profile:
        env["IOC_BENCH_PROFILE"] = params.profile
    worker = Contender("worker-freshness", WORKER, work / "worker-freshness", broker.url, env=env)
    client = None
    seen_first: dict[int, float] = {}
    seen_complete: dict[int, float] = {}
    try:
        worker.start()
        worker.wait_ready(timeout_s=180)
        client = connect(dsn, Settings()) if stand_in is not None else None
        producer = PacedProducer(broker.url, rate, params.nodes, params.lateness_s * 1000, broker.partitions)
        start_ms = int(time.time() * 1000)
        # The first observed window holds at least 5 s of the run, so every node has a row in it.
        first_end = ((start_ms + 5_000) // WINDOW_MS + 1) * WINDOW_MS
        wanted = [first_end + k * WINDOW_MS for k in range(params.windows)]
        run_s = ((wanted[-1] + params.lateness_s * 1000 - start_ms) / 1000 + params.settle_s if wanted
                 else params.duration_s)
        stop_at = time.monotonic() + run_s
        producer.start()
        next_poll = 0.0
        while time.monotonic() < stop_at and not (client and wanted
                                                  and all(w - WINDOW_MS in seen_complete for w in wanted)):
            producer.pump()
            if client is not None and time.monotonic() >= next_poll:
                next_poll = time.monotonic() + params.poll_s
                _poll(client, seen_first, seen_complete, params.nodes)
            time.sleep(0.002)
        producer.producer.flush(30)
        produced_s = (int(time.time() * 1000) - start_ms) / 1000
        backlog = producer.sent - int(worker.stats().get("events", 0))
        worker.wait(lambda st: st.get("events", 0) >= producer.sent and st.get("sunk", 0) >= producer.sent
                    and st.get("extra", {}).get("buffered_rows", 1) == 0, 300, "caught up")
        if client is not None:
            rows, raw = client.query(ROWS_SQL).result_rows, client.query(RAW_SQL).result_rows
        else:
            worker.stop()  # the store is the worker's until it exits
            rows, raw = query_store(dsn, ROWS_SQL, RAW_SQL)
    finally:
        if client is not None:
            client.close()
        worker.stop()
        if stand_in is not None:
            stand_in.stop()

    checkpoints = worker_checkpoint_stats(work / "worker-freshness")
    partition_of = dict(zip((n.decode() for n in producer.nodes), producer.partition_of, strict=True))
    row_delays = [(ingested - producer.closed_at[(partition_of[node], start + WINDOW_MS)]) / 1000
                  for start, node, ingested, _emissions in rows
                  if start + WINDOW_MS in wanted and (partition_of[node], start + WINDOW_MS) in producer.closed_at]
    window_delays = {}
    for end in wanted:
        closes = [at for (_p, e), at in producer.closed_at.items() if e == end]
        if end - WINDOW_MS in seen_complete and len(closes) == broker.partitions:
            window_delays[format_time(end - WINDOW_MS)] = round(seen_complete[end - WINDOW_MS] - max(closes) / 1000, 3)
    window_rows = quantiles(row_delays)
    (raw_q, raw_max, raw_n), = raw
    result: dict[str, Any] = {
        "benchmark": "freshness",
        "rate_events_per_s": round(rate),
        "rate_source": rate_source,
        "produced_events": producer.sent,
        "achieved_rate_events_per_s": round(producer.sent / max(produced_s, 1e-9)),
        "backlog_when_production_stopped": backlog,
        "producer_max_behind_events": producer.max_behind,
        "params": asdict(params),
        "store": ("ClickHouse HTTP interface (tests/clickhouse_stand_in.py over chDB), polled while the worker writes"
                  if stand_in is not None else "chDB in the worker (the local default), read after the run"),
        "window_rows": window_rows,
        "window_closings_observed": sum(1 for (_p, e) in producer.closed_at if e in wanted),
        "window_rows_emitted_more_than_once": sum(1 for *_, emissions in rows if emissions > 1),
        "raw_events": {"n": int(raw_n), "p50_s": round(float(raw_q[0]), 3), "p99_s": round(float(raw_q[1]), 3),
                       "max_s": round(float(raw_max), 3)},
        "definition": "window rows: ClickHouse's ingested_at of a (window, node) row's first version minus the "
                      "production time of the event that made the window due on that row's partition (the first "
                      "event with event_time >= window end + lateness; event_time = production wall clock); a row "
                      "is queryable when its insert returns, milliseconds after ingested_at. raw: ingested_at - "
                      "event_time per event.",
        "target": {"p99_s_at_most": TARGET_P99_S, "met": window_rows.get("p99_s", 1e9) <= TARGET_P99_S},
        "worker_checkpoints": checkpoints,
        "machine": machine_info(broker.kind),
    }
    if stand_in is not None:
        result["windows_polled_complete_s"] = window_delays
        result["windows_polled"] = quantiles(list(window_delays.values()))
        result["definition"] += (" windows (poll): first poll seeing every node's row minus the last partition's "
                                 "closing event (resolution poll_s).")
    return result


def _poll(client: Any, first: dict[int, float], complete: dict[int, float], nodes: int) -> None:
    rows = client.query("SELECT toUnixTimestamp64Milli(window_start), count() FROM agg_network GROUP BY 1"
                        ).result_rows
    now = time.time()
    for start, count in rows:
        first.setdefault(int(start), now)
        if count >= nodes:
            complete.setdefault(int(start), now)


def run_freshness_bench(out: Path | None = None, *, quick: bool = False, broker: Broker | None = None,
                        broker_kind: str = "auto", rate: float | None = None, results_dir: Path | None = None,
                        params: FreshnessParams | None = None) -> dict[str, Any]:
    params = params or FreshnessParams.sized(quick)
    with scratch_dir() as work, (bench_broker(work, broker_kind) if broker is None
                                 else contextlib.nullcontext(broker)) as b:
        if rate is None:
            rate, source = half_max_rate(results_dir, b, work)
        else:
            source = "given"
        result = measure_freshness(b, work, params, rate, source)
        result["lower_rates"] = [
            {k: v for k, v in measure_freshness(b, work / f"low-{fraction}", params, rate * fraction,
                                                f"{fraction} x the rate above").items()
             if k not in ("machine", "definition", "store", "params", "benchmark", "target")}
            for fraction in params.lower_rates]
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
    return result


def worker_checkpoint_stats(data_dir: Path) -> dict[str, Any]:
    """The worker's own checkpoint figures (its stats file, written at exit): how long checkpoints
    took in all, and the cut, the only part batches wait for."""
    keys = ("checkpoints", "checkpoint_max_s", "checkpoint_last_s", "checkpoint_cut_max_s", "checkpoint_cut_last_s")
    files = sorted(stats_files(data_dir), key=lambda f: f.stat().st_mtime)
    if not files:
        return {}
    stats = json.loads(files[-1].read_text())
    return {k: stats.get(k) for k in keys}
