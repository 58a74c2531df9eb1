"""Test data for the sink tests: Arrow tables shaped like what the streams emit (no engine needed)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from models.events import Family
from models.schema import Field
from streams.sketch import quantiles, sketch_of

T0 = int(datetime(2025, 7, 14, 0, 0, tzinfo=UTC).timestamp() * 1000)
MINUTE = 60_000
HOUR = 60 * MINUTE
DAY = 24 * HOUR
TZ_OFFSET = 7 * HOUR  # Asia/Ho_Chi_Minh, no DST

TS = pa.timestamp("ms", tz="UTC")
SKETCH = pa.map_(pa.int32(), pa.uint64())


def ids(prefix: str, start: int, n: int) -> pa.Array:
    numbers = pa.array(np.arange(start, start + n)).cast(pa.string())
    return pc.binary_join_element_wise(pa.scalar(prefix), numbers, "")


def _column(field: Field, n: int, rng: np.random.Generator, start_ms: int, span_ms: int) -> pa.Array:
    if field.kind == "enum":
        return pc.take(pa.array(field.choices), pa.array(rng.integers(0, len(field.choices), n)))
    if field.kind == "str":
        return ids(f"{field.name}-", 0, n)
    if field.kind == "int":
        lo, hi = int(field.min or 0), int(field.max if field.max is not None else 1000)
        return pa.array(rng.integers(lo, hi + 1, n), pa.int64())
    if field.kind == "float":
        lo, hi = float(field.min or 0), float(min(field.max if field.max is not None else 1e3, 1e4))
        return pa.array(rng.uniform(lo, hi, n))
    if field.kind == "bool":
        return pa.array(rng.random(n) < 0.5)
    return pa.array(start_ms + rng.integers(0, span_ms, n), TS)


def raw_table(
    family: Family, n: int, *, seed: int = 0, start_ms: int = T0, span_ms: int = HOUR,
    keys: Sequence[str] = ("K1", "K2", "K3"), id_prefix: str = "e", id_start: int = 0,
) -> pa.Table:
    """`n` events of `family` with the family's Arrow schema, unique event ids, ~20 % of optional
    fields null."""
    rng = np.random.default_rng(seed)
    columns: list[pa.Array] = []
    for field in family.fields:
        if field.name == "event_id":
            column = ids(id_prefix, id_start, n)
        elif field.name == family.key_field:
            column = pc.take(pa.array(list(keys)), pa.array(rng.integers(0, len(keys), n)))
        else:
            column = _column(field, n, rng, start_ms, span_ms)
        if not field.required:
            column = pc.if_else(pa.array(rng.random(n) < 0.2), pa.nulls(n, column.type), column)
        columns.append(column.cast(field.arrow_type))
    return pa.Table.from_arrays(columns, schema=family.schema)


def _sketch_array(sketches: list[dict[int, int]]) -> pa.Array:
    return pa.array([list(s.items()) for s in sketches], SKETCH)


def agg_filings(windows: Sequence[tuple[int, str, str, str, int]], seed: int = 0) -> pa.Table:
    """One row per (window_start_ms, agency_code, channel, level, version), 5-minute windows."""
    rng = np.random.default_rng(seed)
    n = len(windows)
    counts = {name: rng.integers(0, 50, n).astype(np.uint32) for name in (
        "submitted", "processed", "on_time", "late", "result_issued", "electronic", "rejected",
        "paid_online", "digitised", "reused_data")}
    ratio = np.where(counts["processed"] > 0, counts["on_time"] / np.maximum(counts["processed"], 1), np.nan)
    return pa.table({
        "window_start": pa.array([w[0] for w in windows], TS),
        "window_end": pa.array([w[0] + 5 * MINUTE for w in windows], TS),
        "agency_code": [w[1] for w in windows],
        "channel": [w[2] for w in windows],
        "level": [w[3] for w in windows],
        "version": pa.array([w[4] for w in windows], pa.uint32()),
        **{name: pa.array(values) for name, values in counts.items()},
        "on_time_ratio": pa.array(ratio, from_pandas=True),
        "paid_online_ratio": pa.array(np.full(n, 0.5)),
    })


def agg_service_center(windows: Sequence[tuple[int, str, int]], seed: int = 0) -> tuple[pa.Table, list[np.ndarray]]:
    """One row per (window_start_ms, center_id, version), 1-minute windows; also the wait times
    behind each row's sketch (for exact-quantile checks)."""
    rng = np.random.default_rng(seed)
    waits = [np.round(rng.exponential(300, rng.integers(0, 40)), 3) for _ in windows]
    waits = [np.concatenate([w, np.zeros(1)]) if i % 7 == 0 else w for i, w in enumerate(waits)]  # some zeros
    sketches = [sketch_of(w) for w in waits]
    n = len(windows)
    table = pa.table({
        "window_start": pa.array([w[0] for w in windows], TS),
        "window_end": pa.array([w[0] + MINUTE for w in windows], TS),
        "center_id": [w[1] for w in windows],
        "version": pa.array([w[2] for w in windows], pa.uint32()),
        "issued": pa.array(rng.integers(0, 60, n), pa.uint32()),
        "called": pa.array([len(w) for w in waits], pa.uint32()),
        "served": pa.array(rng.integers(0, 50, n), pa.uint32()),
        "abandoned": pa.array(rng.integers(0, 5, n), pa.uint32()),
        "counters_opened": pa.array(rng.integers(0, 2, n), pa.uint32()),
        "counters_closed": pa.array(rng.integers(0, 2, n), pa.uint32()),
        "wait_count": pa.array([len(w) for w in waits], pa.uint32()),
        "wait_sum": [float(w.sum()) for w in waits],
        "wait_max": [float(w.max()) if len(w) else None for w in waits],
        "wait_p50": [quantiles(s, [0.5])[0] for s in sketches],
        "wait_p90": [quantiles(s, [0.9])[0] for s in sketches],
        "wait_p99": [quantiles(s, [0.99])[0] for s in sketches],
        "wait_sketch": _sketch_array(sketches),
        "service_count": pa.array(rng.integers(0, 50, n), pa.uint32()),
        "service_sum": rng.uniform(0, 5000, n),
        "service_p90": rng.uniform(0, 600, n),
        "rating_count": pa.array(rng.integers(0, 20, n), pa.uint32()),
        "rating_sum": rng.uniform(0, 80, n),
    })
    return table, waits


def agg_network(windows: Sequence[tuple[int, str, int]], seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    latencies = [rng.lognormal(3, 0.5, rng.integers(1, 13)) for _ in windows]
    sketches = [sketch_of(x) for x in latencies]
    n = len(windows)
    samples = np.array([len(x) for x in latencies], dtype=np.uint32)
    up = np.minimum(samples, rng.integers(0, 13, n)).astype(np.uint32)
    return pa.table({
        "window_start": pa.array([w[0] for w in windows], TS),
        "window_end": pa.array([w[0] + MINUTE for w in windows], TS),
        "node_id": [w[1] for w in windows],
        "version": pa.array([w[2] for w in windows], pa.uint32()),
        "samples": pa.array(samples),
        "up_samples": pa.array(up),
        "latency_p50": [quantiles(s, [0.5])[0] for s in sketches],
        "latency_p95": [quantiles(s, [0.95])[0] for s in sketches],
        "latency_max": [float(x.max()) for x in latencies],
        "latency_sketch": _sketch_array(sketches),
        "latency_sum": [float(x.sum()) for x in latencies],
        "jitter_sum": rng.uniform(0, 100, n),
        "loss_sum": rng.uniform(0, 10, n),
        "loss_max": rng.uniform(0, 5, n),
        "rx_bps_sum": rng.uniform(0, 1e9, n),
        "tx_bps_sum": rng.uniform(0, 1e9, n),
        "capacity_bps": np.full(n, 1e9),
        "util_max": rng.uniform(0, 1, n),
        "availability": up / np.maximum(samples, 1),
    })


def outages(rows: Sequence[tuple[str, int, int, int]]) -> pa.Table:
    """(node_id, start_ms, end_ms, version) rows."""
    return pa.table({
        "node_id": [r[0] for r in rows],
        "start": pa.array([r[1] for r in rows], TS),
        "end": pa.array([r[2] for r in rows], TS),
        "duration_s": [(r[2] - r[1]) / 1000 for r in rows],
        "samples": pa.array([max(1, (r[2] - r[1]) // 10_000) for r in rows], pa.uint32()),
        "version": pa.array([r[3] for r in rows], pa.uint32()),
    })


def local_day(ms: int) -> str:
    """The Asia/Ho_Chi_Minh calendar day of a UTC instant, as YYYY-MM-DD."""
    return datetime.fromtimestamp((ms + TZ_OFFSET) / 1000, tz=UTC).date().isoformat()
