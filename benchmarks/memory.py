"""`ioc bench memory`: worker RSS with 1k, 10k and 100k active keys.

For each key count K, a fresh worker (its own chDB store, default settings: 120 s allowed lateness)
joins an empty network topic; its RSS is read once idle (imports, Faust, chDB engine, migrations);
then `ioc replay --format arrow` sends K nodes x `samples` telemetry samples spread over 2 minutes of
event time, so every key has open windows that the allowed lateness keeps in state (nothing is due
yet: this is the live working set of K active keys, plus their recently seen event ids). After the
worker has processed and stored every event, RSS is read again (and its peak while processing,
sampled every 0.1 s via psutil). The worker also reports its own state sizes (window slots and
sketches, key table, seen ids; benchmarks.worker_main.state_sizes), which separate the state from
what chDB, Arrow buffers and the allocators hold.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks.data import T0_MS, telemetry, write_recording
from benchmarks.machine import machine_info
from benchmarks.runtime import WORKER, Broker, Contender, bench_broker, fresh_topic, scratch_dir
from models.settings import Settings
from simulators.replay import replay_dir

KEY_COUNTS = (1_000, 10_000, 100_000)
SPAN_MS = 120_000  # every key's samples fall in 2 minutes of event time: open windows, none due


@dataclass(frozen=True)
class MemoryParams:
    key_counts: tuple[int, ...] = KEY_COUNTS
    samples_per_key: int = 6
    timeout_s: float = 300

    @classmethod
    def sized(cls, quick: bool) -> MemoryParams:
        return cls(samples_per_key=3 if quick else 10)


class PeakRss:
    """Samples a process's RSS every `interval_s` in a thread; `peak_mb` is the maximum seen."""

    def __init__(self, contender: Contender, interval_s: float = 0.1):
        self.contender, self.interval_s, self.peak_mb = contender, interval_s, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            with contextlib.suppress(Exception):  # the process may be exiting
                self.peak_mb = max(self.peak_mb, self.contender.rss_mb())


def measure_keys(broker: Broker, work: Path, keys: int, params: MemoryParams) -> dict[str, Any]:
    events = keys * params.samples_per_key
    fresh_topic(broker.url, partitions=broker.partitions)
    load = write_recording(telemetry(events, nodes=keys, t0_ms=T0_MS, interval_ms=SPAN_MS // params.samples_per_key,
                                     id_prefix=f"m{keys}"), work / f"memory-{keys}")
    worker = Contender(f"worker-{keys}-keys", WORKER, work / f"worker-{keys}-keys", broker.url,
                       env={"IOC_TOPIC_PARTITIONS": str(broker.partitions)})
    try:
        worker.start()
        worker.wait_ready(timeout_s=params.timeout_s)
        time.sleep(1.0)  # let startup garbage settle
        idle_mb = worker.rss_mb()
        with PeakRss(worker) as peak:
            replay_dir(load, broker.url, fmt="arrow", batch=10_000, settings=Settings(), progress=False)
            stats = worker.wait(lambda s: s.get("events", 0) >= events and s.get("sunk", 0) >= events
                                and s.get("extra", {}).get("buffered_rows", 1) == 0, params.timeout_s,
                                f"processed {events} events")
            time.sleep(1.0)  # one more state sample from the worker's probe
            stats = worker.stats()
            after_mb = worker.rss_mb()
    finally:
        worker.stop()
    extra = stats.get("extra", {})
    if "probe_error" in extra:  # the state figures below would be silently stale
        raise RuntimeError(f"{worker.name}: the state probe failed: {extra['probe_error']}")
    return {
        "keys": keys, "events": events, "rss_idle_mb": round(idle_mb, 1), "rss_after_mb": round(after_mb, 1),
        "rss_peak_mb": round(max(peak.peak_mb, after_mb), 1), "rss_growth_mb": round(after_mb - idle_mb, 1),
        "growth_bytes_per_key": round((after_mb - idle_mb) * 2**20 / keys),
        "window_state_mb": extra.get("window_state_mb"), "seen_ids_mb": extra.get("seen_ids_mb"),
        "keys_in_worker": extra.get("keys"), "windows_out": extra.get("windows_out"),
    }


def measure_memory(broker: Broker, work: Path, params: MemoryParams) -> dict[str, Any]:
    runs = [measure_keys(broker, work, k, params) for k in params.key_counts]
    return {
        "benchmark": "memory",
        "workload": f"network telemetry, K nodes x {params.samples_per_key} samples over {SPAN_MS // 1000} s of event "
                    "time (Arrow batches), default lateness: every key active, every window open",
        "params": asdict(params),
        "runs": runs,
        "target": "bounded and reported at 100k keys (DESIGN.md s.6)",
        "machine": machine_info(broker.kind),
    }


def run_memory_bench(out: Path | None = None, *, quick: bool = False, broker: Broker | None = None,
                     broker_kind: str = "auto", params: MemoryParams | None = None) -> dict[str, Any]:
    params = params or MemoryParams.sized(quick)
    with scratch_dir() as work, (bench_broker(work, broker_kind) if broker is None
                                 else contextlib.nullcontext(broker)) as b:
        result = measure_memory(b, work, params)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
    return result
