"""Window kernel benchmark: the numpy engine against a plain-Python reference, same data, same process.

Workload: `events` latency samples over `keys` keys, uniformly random keys, lognormal values, times
in near order over `windows` one-minute tumbling windows with up to 2 s of disorder. Aggregates per
(window, key): count, sum, min, max and the log-bucket sketch, with p50/p90/p99 and the serialized
sketch in the output. The engine gets `batch`-event batches and is timed end to end: `ingest` for
every batch plus the final `close_all`, including building the emitted Arrow tables. The reference
is the same semantics written as an idiomatic per-event Python loop (dicts of accumulators), timed
on the first `baseline_events` events (it is linear in events); both report events per second on
one core. The engine's results on that subsample are checked against the reference's. Memory: the
peak window state, and for the headline workload the checkpoint size (the pickled engine after the
last batch, as the worker stores it), taken in an extra, untimed run.

The numpy floor (`numpy_floor`) times, on the same data in the same process, only the primitives
the engine cannot do without: one scatter per accumulator and one sort per window. It bounds what
any engine of this design reaches on the machine, and shows how much of the engine's time is its
own overhead (`engine_vs_floor`).
"""

from __future__ import annotations

import json
import math
import os
import pickle
import platform
import struct
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from models.events import NETWORK
from streams import sketch as sk
from streams.allocator import keep_freed_memory
from streams.windows import Count, Max, Min, Number, Quantile, SketchMap, Sum, WindowEngine, WindowSpec, tumbling

T0 = 1_752_480_000_000
WINDOW_MS = 60_000
DELAY_MS = LATENESS_MS = 120_000
QS = (0.5, 0.9, 0.99)

SPEC = WindowSpec(
    family=NETWORK,
    keys=("node_id",),
    windowing=tumbling(minutes=1),
    inputs={"v": Number("latency_ms")},
    aggs=(Count("n", "v"), Sum("v_sum", "v"), Min("v_min", "v"), Max("v_max", "v"),
          *(Quantile(f"v_p{round(q * 100)}", "v", q) for q in QS), SketchMap("v_sketch", "v")),
)


def make_data(events: int, keys: int, windows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    key = rng.integers(0, keys, events, dtype=np.int64)
    base = T0 + np.arange(events, dtype=np.int64) * (windows * WINDOW_MS) // max(events, 1)
    times = base - rng.integers(0, 2000, events)  # out of order by up to 2 s
    values = rng.lognormal(3.0, 1.0, events)
    return key, times, values


def run_engine(key: np.ndarray, times: np.ndarray, values: np.ndarray, keys: int, batch: int,
               snapshot: bool = False) -> tuple[float, list[pa.Table], int, int]:
    """(seconds, emitted tables, peak state bytes, checkpoint bytes if `snapshot` else 0)."""
    engine = WindowEngine(SPEC, delay_ms=DELAY_MS, lateness_ms=LATENESS_MS, max_future_skew_ms=0)
    engine.keys.encode([f"node-{i}" for i in range(keys)])
    now = int(times.max())
    tables, peak = [], 0
    start = time.perf_counter()
    for lo in range(0, len(times), batch):
        out = engine.ingest(key[lo:lo + batch], times[lo:lo + batch], {"v": values[lo:lo + batch]}, now)
        tables.append(out.windows)
        peak = max(peak, engine.state_nbytes())
    # A snapshot folds the sketches (work close_all would do otherwise): only untimed runs take one.
    size = len(pickle.dumps(engine, protocol=pickle.HIGHEST_PROTOCOL)) if snapshot else 0
    tables.append(engine.close_all().windows)
    return time.perf_counter() - start, tables, peak, size


def numpy_floor(key: np.ndarray, times: np.ndarray, values: np.ndarray, keys: int, chunk: int = 1 << 16) -> float:
    """Seconds for the bare numpy primitives this design needs per event, nothing else: one scatter
    per accumulator (`np.add.at` count and sum, `np.minimum.at`, `np.maximum.at`, in the engine's
    64k-event chunks) and one `np.sort` of each window's int32 sketch codes. No windowing, run
    lengths, quantiles or output: what the machine allows any numpy engine of this design."""
    window = (times // WINDOW_MS - int(times.min()) // WINDOW_MS).astype(np.intp)
    cells = window * keys + key
    codes = (key.astype(np.int32) << sk.INDEX_BITS) + sk.INDEX_OFFSET + sk.bucket_index(values)
    per_window = [codes[window == w] for w in np.unique(window)]
    size = (int(window.max()) + 1) * keys
    count, total = np.zeros(size, dtype=np.int32), np.zeros(size)
    low, high = np.full(size, np.inf), np.full(size, -np.inf)
    start = time.perf_counter()
    for lo in range(0, len(cells), chunk):
        c, v = cells[lo:lo + chunk], values[lo:lo + chunk]
        np.add.at(count, c, np.int32(1))
        np.add.at(total, c, v)
        np.minimum.at(low, c, v)
        np.maximum.at(high, c, v)
    for part in per_window:
        np.sort(part)
    return time.perf_counter() - start


def python_reference(key: list[int], times: list[int], values: list[float]) -> tuple[float, dict]:
    """The same windows, one event at a time, the way one writes it without numpy."""
    pack_float, unpack_int = struct.Struct("<f").pack, struct.Struct("<i").unpack
    start = time.perf_counter()
    windows: dict[tuple[int, int], list] = {}
    late = 0
    high = None
    for k, t, v in zip(key, times, values, strict=True):
        if high is not None and (t // WINDOW_MS + 1) * WINDOW_MS <= high - DELAY_MS - LATENESS_MS:
            late += 1
            continue
        high = t if high is None or t > high else high
        acc = windows.get((t // WINDOW_MS, k))
        if acc is None:
            acc = windows[(t // WINDOW_MS, k)] = [0, 0.0, math.inf, -math.inf, {}]
        acc[0] += 1
        acc[1] += v
        if v < acc[2]:
            acc[2] = v
        if v > acc[3]:
            acc[3] = v
        bucket = unpack_int(pack_float(v))[0] >> sk.SHIFT  # the same bucket: float32 bits
        sketch = acc[4]
        sketch[bucket] = sketch.get(bucket, 0) + 1
    for acc in windows.values():  # emit: quantiles from each sketch
        acc.append(_quantiles(acc[4], acc[0]))
    return time.perf_counter() - start, windows


def _quantiles(sketch: dict[int, int], n: int) -> list[float]:
    items = sorted(sketch.items())
    out = []
    for q in QS:
        rank, seen = math.floor(q * (n - 1) + sk.RANK_EPSILON), 0
        for bucket, c in items:
            seen += c
            if seen > rank:
                out.append(_bucket_value(bucket))
                break
    return out


def _bucket_value(bucket: int) -> float:
    """The bucket's representative, as streams.sketch defines it (values here are > 0)."""
    lo = _F32.unpack(_I32.pack(bucket << sk.SHIFT))[0]
    hi = _F32.unpack(_I32.pack((bucket + 1) << sk.SHIFT))[0]
    return 2.0 * lo * hi / (lo + hi)


_F32, _I32 = struct.Struct("<f"), struct.Struct("<i")


def _check(tables: list[pa.Table], reference: dict, keys: int) -> bool:
    table = pa.concat_tables(tables)
    starts = pc.cast(table.column("window_start"), pa.int64()).to_numpy() // WINDOW_MS
    codes = np.array([int(s.split("-")[1]) for s in table.column("node_id").to_pylist()])
    latest: dict[tuple[int, int], dict] = {}
    for (w, k), row in zip(zip(starts.tolist(), codes.tolist(), strict=True), table.to_pylist(), strict=True):
        latest[(w, k)] = row
    if set(latest) != set(reference):
        return False
    for wk, (n, total, lo, hi, _, qs) in reference.items():
        row = latest[wk]
        if (row["n"], row["v_sum"], row["v_min"], row["v_max"]) != (n, total, lo, hi):
            return False
        if [row[f"v_p{round(q * 100)}"] for q in QS] != qs:
            return False
    return True


def measure(events: int, keys: int, windows: int, batch: int, baseline_events: int, seed: int,
            repeats: int = 3, snapshot: bool = False) -> dict:
    """Engine vs reference on one workload; best of `repeats` runs each (the machine may be shared)."""
    key, times, values = make_data(events, keys, windows, seed)
    warm = min(events, 4 * batch)
    run_engine(key[:warm], times[:warm], values[:warm], keys, batch)
    runs = [run_engine(key, times, values, keys, batch) for _ in range(repeats)]
    elapsed, peak_bytes = min(r[0] for r in runs), max(r[2] for r in runs)

    # The reference runs on the events of the first keys only: the same events per (window, key) and
    # the same time order as the full workload, so the per-event work is comparable.
    sub_keys = max(1, round(keys * min(1.0, baseline_events / max(events, 1))))
    pick = key < sub_keys
    sk_, st_, sv_ = key[pick], times[pick], values[pick]
    base = [python_reference(sk_.tolist(), st_.tolist(), sv_.tolist()) for _ in range(max(1, repeats - 1))]
    base_elapsed, reference = min(b[0] for b in base), base[0][1]
    _, sub_tables, _, _ = run_engine(sk_, st_, sv_, sub_keys, batch)
    rate, base_rate = events / elapsed, len(sk_) / base_elapsed
    floor = min(numpy_floor(key, times, values, keys) for _ in range(repeats))
    extra = {"checkpoint_kb": run_engine(key, times, values, keys, batch, snapshot=True)[3] / 1024} if snapshot else {}
    return {
        "events_per_s": rate,
        "baseline_events_per_s": base_rate,
        "ratio": rate / base_rate,
        "events": events,
        "keys": keys,
        "windows": windows,
        "events_per_window_key": events / (windows * keys),
        "batch": batch,
        "elapsed_s": elapsed,
        "ns_per_event": elapsed / events * 1e9,
        "baseline_events": len(sk_),
        "baseline_keys": sub_keys,
        "baseline_elapsed_s": base_elapsed,
        "baseline_matches": _check(sub_tables, reference, sub_keys),
        "peak_state_mb": peak_bytes / 2**20,
        "numpy_floor_events_per_s": events / floor,
        "numpy_floor_ns_per_event": floor / events * 1e9,
        "engine_vs_floor": elapsed / floor,
        **extra,
    }


def run_kernel_bench(events: int = 2_000_000, keys: int = 10_000, out: Path | None = None, *,
                     batch: int = 100_000, windows: int = 2, baseline_events: int = 200_000,
                     seed: int = 7, variants: bool = True) -> dict:
    """The headline workload, plus variants (denser, sparser, worker-sized batches) for context."""
    kept = keep_freed_memory()  # as the worker runs the engine (streams.allocator)
    result = measure(events, keys, windows, batch, baseline_events, seed, snapshot=True)
    result |= {
        "aggregates": "count, sum, min, max, log-bucket sketch (p50/p90/p99 + serialized map) per (1-min window, key)",
        "timed": "engine: every ingest() + close_all(), Arrow output included; reference: per-event Python loop "
                 "+ quantiles at the end; best of 3 / best of 2 runs, one core each",
        "cores_used": 1,
        "allocator": "glibc keeps freed memory, as in the worker" if kept else "C library defaults",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
                    "loadavg": os.getloadavg()[0]},
    }
    if variants:
        small = max(baseline_events // 4, 1)
        result["variants"] = {
            "dense_1_window": measure(events, keys, 1, batch, small, seed),
            "sparse_10_windows": measure(events, keys, 10, batch, small, seed),
            "worker_batch_20k": measure(events, keys, windows, 20_000, small, seed),
        }
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    print(json.dumps(run_kernel_bench(), indent=2))
