"""The physical limits the pipeline benchmark's worker is compared with, measured in the same run.

- `chdb_insert_limit`: the rows/s (and CPU seconds per row) of a plain `insert_arrow` of the same
  Arrow rows into `raw_network` of a fresh chDB store, at the worker's insert size: what storing the
  raw events costs by itself. Run in a subprocess (`python -m benchmarks.limits chdb ...`), since one
  process holds one chDB store.
- `in_process_limit`: the worker's own work (decode, validation, duplicate check, windows, outage
  sessions: `FamilyPipeline.process`) over the same Arrow messages on one core, without Kafka or
  ClickHouse.
- (e) a plain aiokafka consumer is a contender like the others (benchmarks.baselines.plain_consumer).

On one machine the worker and its embedded ClickHouse share the cores, so the most a worker can
reach here is about `cores x events per CPU second` (`bound`), whatever each part's own limit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from models.events import NETWORK
from models.settings import Settings


def in_process_limit(table: pa.Table, batch: int) -> dict[str, Any]:
    """`FamilyPipeline.process` over the messages (one partition, one message per call, as a fetch of
    one 10k-event message), best of two passes on fresh pipelines; outputs built, not written."""
    from streams.pipeline import arrow_messages_by_partition, pipelines

    batches = arrow_messages_by_partition(table, NETWORK.key_field, partitions=1, batch=batch)
    now_ms = int(pa.compute.max(table.column("event_time").cast(pa.int64())).as_py()) + 1_000
    best = None
    for _ in range(2):
        pipeline = pipelines(Settings())[NETWORK.topic]
        started, cpu = time.perf_counter(), time.process_time()
        for b in batches:
            pipeline.process(b, now_ms)
        pipeline.close_all()
        seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        if best is None or seconds < best[0]:
            best = (seconds, cpu_s)
    seconds, cpu_s = best
    return {"what": "FamilyPipeline.process over the Arrow messages, one core, no Kafka, no ClickHouse",
            "events": table.num_rows, "seconds": round(seconds, 3), "events_per_s": round(table.num_rows / seconds),
            "events_per_cpu_s": round(table.num_rows / cpu_s)}


def _chdb_insert(parquet: Path, batch_rows: int) -> dict[str, Any]:
    from sinks.client import connect
    from sinks.migrate import migrate_client
    from sinks.writer import INSERT_SETTINGS

    table = pq.read_table(parquet)
    settings = Settings()
    with tempfile.TemporaryDirectory(prefix="ioc-limit-") as work:
        client = connect(f"chdb://{Path(work) / 'store.chdb'}", settings)
        migrate_client(client, settings)
        slices = [table.slice(lo, batch_rows) for lo in range(0, table.num_rows, batch_rows)]
        started, cpu = time.perf_counter(), time.process_time()
        for part in slices:
            client.insert_arrow(f"raw_{NETWORK.name}", part, settings=INSERT_SETTINGS)
        seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        client.close()
    return {"what": f"plain insert_arrow into raw_{NETWORK.name}, fresh chDB store, {batch_rows:,}-row inserts",
            "rows": table.num_rows, "seconds": round(seconds, 3), "rows_per_s": round(table.num_rows / seconds),
            "rows_per_cpu_s": round(table.num_rows / cpu_s), "cores_used": round(cpu_s / seconds, 2)}


def chdb_insert_limit(parquet: Path, batch_rows: int) -> dict[str, Any]:
    """`_chdb_insert` in its own process (a chDB store per process); the recording's parquet file."""
    done = subprocess.run([sys.executable, "-m", "benchmarks.limits", "chdb", str(parquet), str(batch_rows)],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], check=False)
    if done.returncode != 0:
        raise RuntimeError(f"chDB insert limit failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) != 4 or sys.argv[1] != "chdb":
        raise SystemExit("usage: python -m benchmarks.limits chdb PARQUET BATCH_ROWS")
    print(json.dumps(_chdb_insert(Path(sys.argv[2]), int(sys.argv[3]))))


if __name__ == "__main__":
    main()
