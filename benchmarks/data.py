"""Synthetic network telemetry for the end-to-end benchmarks (the volume family, DESIGN.md s.4).

Every node reports every `interval_ms` with its own phase, so the table is what a fleet of pollers
sends: time-ordered, one sample per node per interval, realistic value ranges for a healthy
network (all valid, links up, loss low: the benchmarks measure steady-state throughput, not
dead-lettering or an alert storm). Node ids look like the simulator's and the count
is a parameter, so the same generator drives 1k-node throughput runs and 100k-key memory runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from models.events import NETWORK

T0_MS = 1_752_451_200_000  # 2025-07-14 00:00 UTC: a fixed day, so runs are reproducible


def node_ids(nodes: int) -> pa.Array:
    return pc.binary_join_element_wise(pa.scalar("N-"), pc.utf8_lpad(pa.array(np.arange(nodes)).cast(pa.string()),
                                                                     width=6, padding="0"), "")


def telemetry(events: int, nodes: int = 1_000, t0_ms: int = T0_MS, interval_ms: int = 1_000, seed: int = 0,
              id_prefix: str = "b") -> pa.Table:
    """`events` samples, round-robin over `nodes` nodes, ordered by event time."""
    rng = np.random.default_rng(seed)
    seq = np.arange(events, dtype=np.int64)
    node = seq % nodes
    phase = rng.integers(0, interval_ms, nodes)
    times = t0_ms + (seq // nodes) * interval_ms + phase[node]
    order = np.argsort(times, kind="stable")
    node, times = node[order], times[order]
    capacity = np.full(events, 1e9)
    rx = rng.uniform(0.05, 0.7, events) * capacity
    ids = pc.binary_join_element_wise(pa.scalar(f"{id_prefix}-"), pa.array(seq).cast(pa.string()), "")
    return pa.Table.from_arrays(
        [
            ids,
            pa.array(times, pa.timestamp("ms", tz="UTC")),
            pc.take(node_ids(nodes), pa.array(node)),
            pa.array(rng.lognormal(2.5, 0.4, events)),
            pa.array(rng.exponential(1.0, events)),
            pa.array(rng.exponential(0.05, events)),
            pa.array(rx),
            pa.array(rx * rng.uniform(0.2, 0.9, events)),
            pa.array(capacity),
            pa.array(np.ones(events, dtype=bool)),  # a healthy network: no outages, no alert storm
        ],
        schema=NETWORK.schema,
    )


def write_recording(table: pa.Table, directory: Path) -> Path:
    """As `ioc simulate --out DIR` writes it (`<topic>.parquet`), so `ioc replay DIR` reads it."""
    directory.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, directory / f"{NETWORK.topic}.parquet")
    return directory
