"""`ioc bench sink`: rows/s through the sink (`ClickHouseWriter`) per insert batch size.

For each batch size (1k, 10k, 50k, 200k rows) the same Arrow rows (network telemetry, the widest raw
family) go through `writer.add` (one insert per full batch, synchronously, no background thread, so
the clock measures inserts and nothing else) and a final `flush`, into a scratch database
`ioc_bench` that is dropped afterwards. Rows are counted back before a result is reported.

Without a DSN the target is a temporary chDB store (deleted afterwards); with one, any server or
chDB store works, e.g. the HTTP stand-in of the tests.

CPU seconds are this process's, all threads: with chDB that is the inserts themselves (its engine
runs here, on several threads), over HTTP only the client's side. The per-insert cost they show
(a new part however few rows) is why the worker inserts 200k rows at a time (IOC_SINK_BATCH_ROWS).
"""

from __future__ import annotations

import json
import platform
import shutil
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from models.events import NETWORK
from models.settings import Settings
from sinks.client import connect
from sinks.dsn import is_chdb, normalize_dsn, redact_dsn
from sinks.migrate import migrate
from sinks.sql import identifier
from sinks.writer import ClickHouseWriter

BATCH_SIZES = (1_000, 10_000, 50_000, 200_000)
BENCH_DATABASE = "ioc_bench"
TABLE = "raw_network"


def network_rows(n: int, seed: int = 0) -> pa.Table:
    """`n` telemetry samples over 1,000 nodes and one hour, in the family's Arrow schema."""
    rng = np.random.default_rng(seed)
    start = 1_752_451_200_000  # 2025-07-14 00:00 UTC
    numbers = pa.array(np.arange(n)).cast(pa.string())
    nodes = pa.array([f"N-{i:04d}" for i in range(1_000)])
    return pa.Table.from_arrays(
        [
            pc.binary_join_element_wise(pa.scalar("bench-"), numbers, ""),
            pa.array(start + rng.integers(0, 3_600_000, n), pa.timestamp("ms", tz="UTC")),
            pc.take(nodes, pa.array(rng.integers(0, len(nodes), n))),
            pa.array(rng.lognormal(3, 0.5, n)),
            pa.array(rng.exponential(2, n)),
            pa.array(rng.uniform(0, 1, n)),
            pa.array(rng.uniform(0, 1e8, n)),
            pa.array(rng.uniform(0, 1e8, n)),
            pa.array(np.full(n, 1e9)),
            pa.array(rng.random(n) > 0.01),
        ],
        schema=NETWORK.schema,
    )


def rows_for(batch: int) -> int:
    """Enough rows for a stable rate: at least 10 inserts and 200k rows."""
    return max(10 * batch, 200_000)


def bench_one(dsn: str, settings: Settings, data: pa.Table, batch: int) -> dict[str, Any]:
    admin = connect(dsn, settings, database=BENCH_DATABASE)
    try:
        admin.command(f"TRUNCATE TABLE {TABLE}")
        writer = ClickHouseWriter(
            dsn, settings, database=BENCH_DATABASE, batch_rows=batch, flush_ms=10**9, background=False
        )
        try:
            writer.add(TABLE, data.slice(0, batch))  # warm-up: connection, first part, caches
            writer.flush()
            admin.command(f"TRUNCATE TABLE {TABLE}")
            started, cpu_started = time.perf_counter(), time.process_time()
            for offset in range(0, data.num_rows, batch):
                writer.add(TABLE, data.slice(offset, batch))
            writer.flush()
            seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
            stats = writer.stats()
        finally:
            writer.close()
        stored = int(admin.command(f"SELECT count() FROM {TABLE}"))
    finally:
        admin.close()
    if stored != data.num_rows:
        raise RuntimeError(f"benchmark lost rows: wrote {data.num_rows}, found {stored}")
    inserts = stats.inserts - 1  # minus the warm-up
    return {
        "batch_rows": batch,
        "rows": data.num_rows,
        "inserts": inserts,
        "seconds": round(seconds, 4),
        "rows_per_s": round(data.num_rows / seconds),
        "ms_per_insert": round(1000 * seconds / max(inserts, 1), 3),
        "cpu_s": round(cpu_s, 3),
        "rows_per_cpu_s": round(data.num_rows / cpu_s) if cpu_s > 0 else None,
        "cores_used": round(cpu_s / seconds, 2),
    }


def run_sink_bench(
    dsn: str | None, out: Path | None, settings: Settings, *, batch_sizes: tuple[int, ...] = BATCH_SIZES,
    rows: int | None = None,
) -> dict[str, Any]:
    """Rows/s per batch size; `rows` overrides the per-size row count (tests use small ones)."""
    scratch = None
    if dsn is None:
        scratch = Path(tempfile.mkdtemp(prefix="ioc-bench-"))
        dsn = f"chdb://{scratch}/bench.chdb"
    dsn = normalize_dsn(dsn)
    if rows is not None:  # a batch bigger than the rows would be one partial insert under its label
        batch_sizes = tuple(b for b in batch_sizes if b <= rows)
    try:
        migrate(dsn, settings, database=BENCH_DATABASE)
        largest = max(rows or rows_for(b) for b in batch_sizes)
        data = network_rows(largest)
        results = [bench_one(dsn, settings, data.slice(0, rows or rows_for(b)), b) for b in batch_sizes]
        admin = connect(dsn, settings, database="default")
        try:
            admin.command(f"DROP DATABASE IF EXISTS {identifier(BENCH_DATABASE)}")
        finally:
            admin.close()
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    report: dict[str, Any] = {
        "benchmark": "sink",
        "engine": "chdb (in-process)" if is_chdb(dsn) else "clickhouse over http",
        "dsn": "temporary chDB store" if scratch is not None else redact_dsn(dsn),
        "table": TABLE,
        "columns": len(NETWORK.fields),
        "path": "ClickHouseWriter.add -> insert_arrow (Arrow IPC)",
        "results": results,
        "host": {
            "machine": platform.machine(),
            "python": platform.python_version(),
            "clickhouse_connect": metadata.version("clickhouse-connect"),
            "chdb": metadata.version("chdb"),
        },
    }
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
    return report
