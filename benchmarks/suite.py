"""`ioc bench NAME|all [--quick]`: run benchmarks, write benchmarks/results/<name>.json, rebuild the report.

`all` runs kernel, sink (chDB and HTTP), alerts (always the full 5 simulated days: its figures are
detection quality, not speed), then pipeline, freshness (at half the pipeline's JSON rate),
memory and scaling against one broker started once. A benchmark that fails leaves no result file
behind (its stale one is removed, so the table says "not run" rather than showing an old number),
the others still run, and the command exits non-zero.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.runtime import Broker, bench_broker, ensure_topics, scratch_dir, stand_in_class
from models.settings import Settings

RESULTS_DIR = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parents[1] / "README.md"
BROKER_BENCHES = ("pipeline", "freshness", "memory", "scaling")
NAMES = ("kernel", "sink", "alerts", *BROKER_BENCHES)


@dataclass
class BenchOptions:
    quick: bool = False
    results_dir: Path = RESULTS_DIR
    broker_kind: str = "auto"
    clickhouse: str = ""  # sink: a DSN instead of a temporary chDB store
    events: int | None = None  # kernel
    keys: int | None = None  # kernel
    profile: bool = False  # pipeline: one more (a) and (b) run each under cProfile


def _kernel(opts: BenchOptions) -> dict[str, Any]:
    from benchmarks.kernel import run_kernel_bench

    if opts.quick:
        return run_kernel_bench(events=opts.events or 1_000_000, keys=opts.keys or 10_000,
                                baseline_events=100_000, variants=False)
    return run_kernel_bench(events=opts.events or 2_000_000, keys=opts.keys or 10_000)


def _sink(opts: BenchOptions, settings: Settings) -> dict[str, Any]:
    from benchmarks.sink import run_sink_bench

    return run_sink_bench(dsn=opts.clickhouse or None, out=None, settings=settings,
                          rows=100_000 if opts.quick else None)


def _sink_http(opts: BenchOptions, settings: Settings) -> dict[str, Any]:
    """The sink over ClickHouse's HTTP interface (the stand-in: no server can be installed here)."""
    from benchmarks.sink import run_sink_bench

    with scratch_dir() as work:
        stand_in = stand_in_class()(work / "http-store.chdb")
        stand_in.start()
        try:
            return run_sink_bench(dsn=stand_in.dsn, out=None, settings=settings, rows=50_000 if opts.quick else None)
        finally:
            stand_in.stop()


def _broker_bench(name: str, opts: BenchOptions, broker: Broker) -> dict[str, Any]:
    if name == "pipeline":
        from benchmarks.pipeline import run_pipeline_bench

        profile_out = opts.results_dir / "pipeline_profile.txt" if opts.profile else None
        return run_pipeline_bench(quick=opts.quick, broker=broker, profile_out=profile_out)
    if name == "freshness":
        from benchmarks.freshness import run_freshness_bench

        return run_freshness_bench(quick=opts.quick, broker=broker, results_dir=opts.results_dir)
    if name == "memory":
        from benchmarks.memory import run_memory_bench

        return run_memory_bench(quick=opts.quick, broker=broker)
    if name == "scaling":
        from benchmarks.scaling import run_scaling_bench

        return run_scaling_bench(quick=opts.quick, broker=broker)
    raise ValueError(f"unknown benchmark {name!r}")


def save(result: dict[str, Any], out: Path, seconds: float, quick: bool) -> None:
    result["run"] = {"finished_at": datetime.now(UTC).isoformat(timespec="seconds"), "seconds": round(seconds, 1),
                     "quick": quick}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


def run_one(name: str, opts: BenchOptions, out: Path | None = None, settings: Settings | None = None,
            broker: Broker | None = None) -> dict[str, Any]:
    """One benchmark; the result goes to `out` (default results_dir/<name>.json)."""
    settings = settings or Settings.from_env()
    out = out or opts.results_dir / f"{name}.json"
    started = time.monotonic()
    if name == "kernel":
        result = _kernel(opts)
    elif name == "sink":
        result = _sink(opts, settings)
    elif name == "sink_http":
        result = _sink_http(opts, settings)
    elif name == "alerts":
        from benchmarks.alerts import run_alerts_bench

        result = run_alerts_bench(settings=settings)
    elif broker is not None:
        result = _broker_bench(name, opts, broker)
    else:
        with scratch_dir() as work, bench_broker(work, opts.broker_kind) as own:
            ensure_topics(own.url, own.partitions)
            result = _broker_bench(name, opts, own)
    save(result, out, time.monotonic() - started, opts.quick)
    if name == "pipeline" and out == opts.results_dir / "pipeline.json":
        from benchmarks.pipeline import append_step

        append_step(result, opts.results_dir / "pipeline_steps.json")
    return result


def run_all(opts: BenchOptions, readme: Path | None = README, log: Callable[[str], None] = print) -> tuple[str, bool]:
    """Every benchmark; returns the Markdown table and whether all succeeded."""
    from benchmarks.report import write_report

    settings = Settings.from_env()
    ok = True
    started = time.monotonic()

    def attempt(name: str, broker: Broker | None = None) -> None:
        nonlocal ok
        out = opts.results_dir / f"{name}.json"
        log(f"[{time.monotonic() - started:6.0f}s] bench {name} ...")
        try:
            run_one(name, opts, out, settings, broker)
        except Exception:
            ok = False
            out.unlink(missing_ok=True)
            log(f"bench {name} failed:\n{traceback.format_exc()}")

    for name in ("kernel", "sink", "sink_http", "alerts"):
        attempt(name)
    with scratch_dir() as work, bench_broker(work, opts.broker_kind) as broker:
        for name in BROKER_BENCHES:
            attempt(name, broker)
    log(f"[{time.monotonic() - started:6.0f}s] done")
    return write_report(opts.results_dir, readme), ok
