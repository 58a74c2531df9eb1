"""In-process progress probe for every measured stream processor (our worker and the baselines).

The worker's own stats file is rewritten once a second, too coarse to time a few-second drain. Each
measured process therefore runs a `Probe`: the processing loop calls `begin()` when input arrives
and `add(n)` when n events are done (a few attribute writes, negligible next to the per-event cost
of the baselines), and a daemon thread rewrites a small JSON file every `interval_s` (atomic
replace). All four contenders report through the same fields, so the parent times them alike:

    pid, ready_at, first_at (first input seen), events, events_at (when `events` last grew),
    sunk, sunk_at (rows of the raw table in ClickHouse, our worker only), extra (free-form)

Times are `time.time()` (wall clock, comparable across processes on the machine).
"""

from __future__ import annotations

import contextlib
import cProfile
import json
import marshal
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ProbeState:
    pid: int = field(default_factory=os.getpid)
    ready_at: float | None = None
    first_at: float | None = None
    events: int = 0
    events_at: float | None = None
    sunk: int = 0
    sunk_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Probe:
    def __init__(self, path: Path, interval_s: float = 0.05, sample: Callable[[ProbeState], None] | None = None):
        self.path, self.interval_s, self.sample = Path(path), interval_s, sample
        self.state = ProbeState()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-probe", daemon=True)

    @classmethod
    def from_env(cls, sample: Callable[[ProbeState], None] | None = None) -> Probe:
        return cls(Path(os.environ["IOC_BENCH_STATS"]), sample=sample)

    def start(self) -> Probe:
        self._thread.start()
        return self

    def ready(self) -> None:
        if self.state.ready_at is None:
            self.state.ready_at = time.time()

    def begin(self) -> None:
        if self.state.first_at is None:
            self.state.first_at = time.time()

    def add(self, n: int = 1) -> None:
        self.state.events += n
        self.state.events_at = time.time()

    def set_events(self, total: int) -> None:
        if total != self.state.events:
            self.state.events = total
            self.state.events_at = time.time()

    def set_sunk(self, total: int) -> None:
        if total != self.state.sunk:
            self.state.sunk = total
            self.state.sunk_at = time.time()

    def write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self.state)))
        tmp.replace(self.path)

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self.write()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            if self.sample is not None:
                try:
                    self.sample(self.state)
                except Exception as exc:  # a probe must never take the measured process down
                    self.state.extra["probe_error"] = repr(exc)[:200]
            self.write()


@contextlib.contextmanager
def profiled() -> Iterator[None]:
    """With IOC_BENCH_PROFILE=FILE, cProfile every thread of the process: the calling thread (the
    event loop) to FILE, every thread started meanwhile (Faust's consumer thread, the ClickHouse
    writer, executors) to FILE.<thread name>. Threads are snapshotted, not stopped: at exit the
    daemon threads are still running."""
    path = os.environ.get("IOC_BENCH_PROFILE", "")
    if not path:
        yield
        return
    threads: dict[str, cProfile.Profile] = {}
    bootstrap = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def profiled_bootstrap(self: threading.Thread) -> None:
        profiler = cProfile.Profile()
        threads[self.name] = profiler
        profiler.enable()
        try:
            bootstrap(self)
        finally:
            profiler.disable()

    threading.Thread._bootstrap_inner = profiled_bootstrap  # type: ignore[attr-defined]
    main = cProfile.Profile()
    main.enable()
    try:
        yield
    finally:
        main.disable()
        threading.Thread._bootstrap_inner = bootstrap  # type: ignore[attr-defined]
        main.dump_stats(path)
        for name, profiler in list(threads.items()):
            profiler.snapshot_stats()  # not dump_stats: that would disable the profiler of *this* thread
            with open(f"{path}.{_safe(name)}", "wb") as f:
                marshal.dump(profiler.stats, f)  # type: ignore[attr-defined]


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
