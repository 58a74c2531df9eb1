"""`ioc bench scaling`: one worker process against two, on this 2-core machine; how it scales beyond.

Method (the same for 1 and 2 workers): the workers start first, on an empty network topic, and the
run waits until the group is stable (with two, each owns half of the 4 partitions of every topic);
then N pre-encoded JSON events (the bytes and keys `ioc replay --format json` sends) are produced as
fast as librdkafka takes them, and the clock runs from the first input reaching a worker to the last
raw row in ClickHouse. Production overlaps the start of consumption for both runs alike; the rate
after production ended (`tail`) is reported too. The load must be started after the group is stable:
pre-loading the topic would let the first worker to join consume alone until the second arrives.

Store: each worker writes its own chDB store (a separate path per process), and the rows are summed.
Why not one shared store: a chDB store belongs to one process, and the only shared stand-in here
(tests/clickhouse_stand_in.py) is a single-threaded Python HTTP front that serialises every insert,
so it would measure itself, not the workers. In production the workers share a ClickHouse server (or
cluster) whose insert capacity is far above one worker's output (DESIGN.md s.5: ~2.4M rows/s into
chDB from Arrow on this box); separate stores are the closest local stand-in for that.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.data import telemetry
from benchmarks.machine import machine_info
from benchmarks.runtime import (
    WORKER,
    Broker,
    Contender,
    bench_broker,
    drain,
    fresh_topic,
    produce_json_fast,
    scratch_dir,
)
from models.events import FAMILY_BY_TOPIC, NETWORK
from models.schema import table_to_json_messages

SCALING_NOTES = [
    "Partitions are the unit of parallelism: one partition is processed by one worker at a time, so a topic "
    "with P partitions feeds at most P busy workers (IOC_TOPIC_PARTITIONS, default 8 in docker-compose; "
    "raising it later reshuffles keys, so provision ahead, e.g. 4x the expected workers).",
    "Workers share nothing but Kafka and ClickHouse: each owns its partitions' window state and checkpoints "
    "it with the partition's offset, so adding a worker is a consumer-group rebalance (seconds), and per-worker "
    "throughput stays flat until the broker or ClickHouse saturates. CPU cost per event is constant, so "
    "cores (and workers) grow linearly with the event rate: about one core per worker-rate of (a) for JSON, "
    "far less for Arrow.",
    "One Python process uses one core for processing (the GIL): scale with processes (`docker compose up "
    "--scale worker=N`), one per core, not threads.",
    "Kafka: one broker takes several hundred thousand small messages/s; beyond that add brokers and spread "
    "partitions (cost: brokers grow linearly with bytes/s; JSON ~200 B/event, Arrow batches ~4x smaller per event).",
    "ClickHouse: inserts are batched (200k rows or 500 ms per table per worker), so insert count grows with "
    "workers, not events; one server takes millions of rows/s of batched inserts. Beyond it, a cluster: "
    "shard the raw_* tables by entity key (Distributed table), replicate for reads; the windowed agg_* "
    "tables are ~60x smaller than raw (1 row per key per minute), so dashboards stay fast.",
    "Cost growth: linear in event rate (worker cores, broker bytes, ClickHouse storage of raw_*), and in "
    "active keys for memory (see memory.json: per-key state in bytes, RSS dominated by a fixed ~0.5 GB per "
    "worker process for Python, Faust and the embedded chDB engine, which a ClickHouse server removes).",
]


@dataclass(frozen=True)
class ScalingParams:
    events: int
    worker_counts: tuple[int, ...] = (1, 2)
    nodes: int = 1_000
    timeout_s: float = 300

    @classmethod
    def sized(cls, quick: bool) -> ScalingParams:
        return cls(events=150_000 if quick else 500_000)


def worker_partitions(contender: Contender) -> int:
    """Partitions the worker owns, from its own stats file (rewritten every second)."""
    assert contender.process is not None
    try:
        stats = json.loads((contender.workdir / f"worker-{contender.process.pid}.json").read_text())
    except (OSError, ValueError):
        return -1
    return int(stats.get("partitions", -1))


def wait_balanced(workers: list[Contender], partitions: int, timeout_s: float) -> None:
    """Until every worker owns its share of all family topics' partitions, twice in a row."""
    total = partitions * len(FAMILY_BY_TOPIC)
    want = total // len(workers)
    deadline = time.monotonic() + timeout_s
    stable = 0
    while time.monotonic() < deadline:
        for w in workers:
            w.check_alive()
        owned = [worker_partitions(w) for w in workers]
        stable = stable + 1 if all(o == want for o in owned) else 0
        if stable >= 2:
            return
        time.sleep(1.0)
    raise TimeoutError(f"group never balanced: {[worker_partitions(w) for w in workers]} of {total} partitions")


def measure_workers(broker: Broker, work: Path, count: int, params: ScalingParams, messages: list[bytes],
                    keys: list[bytes]) -> dict[str, Any]:
    fresh_topic(broker.url, partitions=broker.partitions)
    app_id = f"bench-scale-{count}-{time.time_ns() % 10**6}"
    workers = [Contender(f"scale{count}-worker{i}", WORKER, work / f"scale{count}-worker{i}", broker.url,
                         env={"IOC_TOPIC_PARTITIONS": str(broker.partitions)}, app_id=app_id)
               for i in range(count)]
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.wait_ready(timeout_s=params.timeout_s)
        wait_balanced(workers, broker.partitions, params.timeout_s)
        cpu_before = [w.cpu_s() for w in workers]
        produce_s = produce_json_fast(broker.url, messages, keys)
        produced_at = time.time()
        at_production_end = sum(int(w.stats().get("events", 0)) for w in workers)
        result = drain(workers, len(messages), sink=True, timeout_s=params.timeout_s)
        per_worker = [int(w.stats().get("events", 0)) for w in workers]
        cpu_s = [round(w.cpu_s() - before, 2) for w, before in zip(workers, cpu_before, strict=True)]
    finally:
        for w in workers:
            w.stop()
    end = result.sunk_at or result.processed_at
    tail_events = len(messages) - at_production_end
    return {
        "workers": count, **result.as_dict(), "produce_s": round(produce_s, 3), "events_per_worker": per_worker,
        # Per worker and per core: each worker's share of the run, and events per CPU second of all of them
        # (a worker's embedded ClickHouse included), i.e. what one more core buys.
        "events_per_s_per_worker": [round(n / result.seconds) for n in per_worker], "cpu_s_per_worker": cpu_s,
        "cores_used": round(sum(cpu_s) / result.seconds, 2),
        "events_per_cpu_s": round(result.events / sum(cpu_s)) if sum(cpu_s) > 0 else None,
        "tail_events": tail_events,
        "tail_events_per_s": round(tail_events / max(end - produced_at, 1e-6)) if tail_events > 0 else None,
    }


def measure_scaling(broker: Broker, work: Path, params: ScalingParams) -> dict[str, Any]:
    table = telemetry(params.events, params.nodes, id_prefix="s")
    messages = table_to_json_messages(NETWORK, table)
    keys = [k.encode() for k in table.column(NETWORK.key_field).to_pylist()]
    runs = [measure_workers(broker, work, n, params, messages, keys) for n in params.worker_counts]
    base = runs[0]["events_per_s"]
    for run in runs:
        run["speedup"] = round(run["events_per_s"] / base, 2) if base else None
        run["efficiency"] = round(run["speedup"] / (run["workers"] / runs[0]["workers"]), 2) if base else None
    return {
        "benchmark": "scaling",
        "workload": f"{params.events:,} network telemetry events, one JSON event per message, {params.nodes} nodes",
        "method": "workers started first, group balanced, then the load produced as fast as possible; from the "
                  "first input to the last raw row in ClickHouse; each worker its own chDB store (see module doc)",
        "params": asdict(params),
        "runs": runs,
        "how_it_scales": SCALING_NOTES,
        "machine": machine_info(broker.kind),
    }


def run_scaling_bench(out: Path | None = None, *, quick: bool = False, broker: Broker | None = None,
                      broker_kind: str = "auto", params: ScalingParams | None = None) -> dict[str, Any]:
    params = params or ScalingParams.sized(quick)
    with scratch_dir() as work, (bench_broker(work, broker_kind) if broker is None
                                 else contextlib.nullcontext(broker)) as b:
        result = measure_scaling(b, work, params)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
    return result
