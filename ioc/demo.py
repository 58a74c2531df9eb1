"""`ioc demo`: the whole pipeline on one machine, with the embedded defaults.

local broker -> simulated day -> `ioc worker` (a subprocess: it owns the chDB store, which only one
process may open) -> replay at high speed with a live view -> the day's KPIs read back from
ClickHouse, next to what the simulator generated, so the numbers check each other.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from ioc import broker
from models.settings import Settings
from sinks.dsn import chdb_path, is_chdb, normalize_dsn

console = Console()


@dataclass(frozen=True)
class DemoOptions:
    scenario: str = "default"
    start: date = date(2025, 7, 14)
    hours: float = 24.0
    seed: int = 7
    speed: float = 0.0  # 0 = as fast as possible
    fmt: str = "json"
    broker_kind: str = "auto"
    keep_broker: bool = False  # leave a broker the demo started running afterwards


def _latest_stats(data_dir: Path, pid: int) -> dict[str, Any]:
    path = data_dir / f"worker-{pid}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _view(stats: dict[str, Any], sent: int, total: int, elapsed: float) -> Table:
    """The live figures as label/value pairs, two pairs a line: fits a standard 80-column terminal (one
    column per figure was cut at 80: "repla…", "event…")."""
    events = int(stats.get("events_in", 0))
    figures = [
        ("replayed", f"{sent:,} / {total:,}"), ("worker events", f"{events:,}"),
        ("events/s", f"{events / max(elapsed, 1e-9):,.0f}"), ("windows out", f"{stats.get('windows_out', 0):,}"),
        ("lag", f"{stats.get('lag', 0):,}"), ("late", f"{stats.get('late', 0):,}"),
        ("dead letters", f"{stats.get('dead_letters', 0):,}"),
        ("incidents", f"{stats.get('incidents_opened', 0):,} opened"),
        ("checkpoints", f"{stats.get('checkpoints', 0):,}"), ("elapsed", f"{elapsed:,.0f} s"),
    ]
    table = Table(title="ioc demo: replay -> Kafka -> worker -> ClickHouse", show_header=False, box=None,
                  padding=(0, 2))
    for justify in ("left", "right", "left", "right"):
        table.add_column(justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for (a, va), (b, vb) in zip(figures[::2], figures[1::2], strict=True):
        table.add_row(a, va, b, vb)
    return table


def run_demo(settings: Settings, options: DemoOptions) -> int:
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    dsn = normalize_dsn(settings.clickhouse_dsn)

    console.rule("1/4 local Kafka broker")
    already_running = broker.status(data_dir) is not None
    info = broker.up(data_dir, kind=options.broker_kind, partitions=settings.topic_partitions)
    console.print(f"{info.kind} at {info.url} ({'already running' if already_running else 'started'}; "
                  f"log: {info.log})")
    try:
        return _run_on_broker(settings, options, info, dsn)
    finally:
        _leave_broker(data_dir, info, stop=not (already_running or options.keep_broker))


def _leave_broker(data_dir: Path, info: broker.BrokerInfo, stop: bool) -> None:
    """Stop the broker the demo started (a Java process left behind otherwise), or say it still runs."""
    if stop:
        broker.down(data_dir)
        console.print(f"stopped the {info.kind} broker the demo started (keep it with `ioc demo --keep-broker`)")
    else:
        console.print(f"the {info.kind} broker at {info.url} is still running (pid {info.pid}): "
                      "`ioc replay` can use it; stop it with `ioc broker down`")


def _run_on_broker(settings: Settings, options: DemoOptions, info: broker.BrokerInfo, dsn: str) -> int:
    from simulators.generate import simulate_to_dir
    from simulators.replay import load_recording, replay_dir

    data_dir = settings.data_dir

    console.rule("2/4 simulated load")
    sim_dir = data_dir / "sim" / f"{options.scenario}-{options.start}-{options.hours:g}h-seed{options.seed}"
    if not (sim_dir / "manifest.json").exists():
        simulate_to_dir(options.scenario, options.start, options.hours, options.seed, sim_dir)
    else:
        console.print(f"reusing {sim_dir}")
    total = sum(t.num_rows for t in load_recording(sim_dir).values())

    console.rule("3/4 worker + replay")
    # A consumer group of its own: this run reads only what it replays. ClickHouse is idempotent
    # (event ids, window versions), so running the demo twice leaves the same aggregates.
    group = f"ioc-demo-{int(time.time())}"
    env = os.environ | {"IOC_APP_ID": group, "IOC_BROKER_URL": info.url, "IOC_CLICKHOUSE_DSN": dsn,
                        "IOC_DATA_DIR": str(data_dir)}
    if info.kind == "tansu":  # Tansu's group joins wait half the session timeout (DESIGN.md s.5)
        env.setdefault("IOC_KAFKA_SESSION_TIMEOUT_S", "6")
    log_path = data_dir / "worker.log"
    with log_path.open("ab") as log:
        worker = subprocess.Popen([sys.executable, "-m", "ioc.cli", "worker"], env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
    try:
        _wait_ready(data_dir, worker, log_path)
        sent = {"n": 0}
        failure: list[BaseException] = []

        def replay() -> None:
            try:
                summary = replay_dir(sim_dir, info.url, speed=options.speed, fmt=options.fmt,
                                     settings=replace(settings, broker_url=info.url), progress=False)
                sent["n"] = summary.total
            except BaseException as exc:  # reported in the main thread
                failure.append(exc)

        started = time.monotonic()
        thread = threading.Thread(target=replay, daemon=True)
        thread.start()
        quiet_since = None
        with Live(console=console, refresh_per_second=4) as live:
            while True:
                stats = _latest_stats(data_dir, worker.pid)
                live.update(_view(stats, sent["n"] if not thread.is_alive() else min(
                    total, int(stats.get("events_in", 0)) + int(stats.get("lag", 0))), total,
                    time.monotonic() - started))
                if failure:
                    raise RuntimeError(f"replay failed: {failure[0]}")
                if worker.poll() is not None:
                    raise RuntimeError(f"worker exited ({worker.returncode}); see {log_path}")
                done = (not thread.is_alive() and int(stats.get("events_in", 0)) >= total
                        and stats.get("lag", 1) == 0 and stats.get("writer", {}).get("buffered_rows", 1) == 0)
                quiet_since = (quiet_since or time.monotonic()) if done else None
                # Once everything is in, wait for the idle flush to emit the day's last windows.
                if quiet_since and time.monotonic() - quiet_since > settings.idle_flush_s + 2:
                    break
                time.sleep(0.25)
        elapsed = time.monotonic() - started
        console.print(f"{total:,} events through the pipeline in {elapsed:.1f}s ({total / elapsed:,.0f} events/s "
                      f"end to end, replay included)")
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()

    console.rule("4/4 the day in ClickHouse")
    print_day_summary(dsn, settings, options.start, sim_dir)
    console.print(f"\nresults: ClickHouse {chdb_path(dsn) if is_chdb(dsn) else dsn} | simulated load {sim_dir} "
                  f"| worker log {log_path}")
    console.print("next: `ioc briefing --date "
                  f"{options.start + timedelta(days=1)} --lang vi --out var/briefing.html`, "
                  "`ioc dashboards export --out var/grafana`")
    return 0


def _wait_ready(data_dir: Path, worker: subprocess.Popen[bytes], log_path: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    with console.status("starting the worker (migrating ClickHouse, joining the consumer group) ..."):
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise RuntimeError(f"worker exited ({worker.returncode}):\n{log_path.read_text()[-3000:]}")
            if _latest_stats(data_dir, worker.pid).get("partitions", 0) > 0:
                return
            time.sleep(0.25)
    raise TimeoutError(f"worker not ready after {timeout_s}s; see {log_path}")


KPI_SQL = """
SELECT
    sum(submitted_online) / nullIf(sum(submitted), 0) AS online_application,
    sum(paid_online) / nullIf(sum(submitted), 0) AS online_payment,
    sum(digitised) / nullIf(sum(submitted), 0) AS digitisation,
    sum(reused_data) / nullIf(sum(submitted), 0) AS data_reuse,
    sum(electronic) / nullIf(sum(result_issued), 0) AS electronic_results,
    sum(on_time) / nullIf(sum(processed), 0) AS on_time,
    sum(submitted) AS dossiers
FROM daily_filings WHERE day = {day:Date}
"""
SERVICE_SQL = """
SELECT sum(issued), sum(served), sum(abandoned), ioc_sketch_quantile(sumMap(wait_sketch), 0.9)
FROM daily_service_center WHERE day = {day:Date}
"""
NETWORK_SQL = """
SELECT sum(up_samples) / nullIf(sum(samples), 0), sum(outages), sum(outage_minutes)
FROM daily_network WHERE day = {day:Date}
"""


def print_day_summary(dsn: str, settings: Settings, day: date, sim_dir: Path) -> None:
    from models.service_index import load_index_weights
    from sinks.client import connect
    from sinks.rollups import refresh_rollups

    client = connect(dsn, settings)
    try:
        refresh_rollups(client, load_index_weights(settings.index_weights_file or None))
        params = {"day": day}
        kpi = dict(zip(("online_application", "online_payment", "digitisation", "data_reuse", "electronic_results",
                        "on_time", "dossiers"), client.query(KPI_SQL, parameters=params).result_rows[0], strict=True))
        issued, served, abandoned, wait_p90 = client.query(SERVICE_SQL, parameters=params).result_rows[0]
        availability, outages, outage_minutes = client.query(NETWORK_SQL, parameters=params).result_rows[0]
        incidents = client.query(
            "SELECT severity, count(), countIf(state != 'resolved') FROM incidents_current "
            "WHERE toDate(start, 'Asia/Ho_Chi_Minh') = {day:Date} GROUP BY severity "
            "ORDER BY indexOf(['critical', 'warning', 'info'], severity)", parameters=params).result_rows
        dead = client.query("SELECT count() FROM deadletters FINAL").result_rows[0][0]
    finally:
        client.close()
    manifest = json.loads((sim_dir / "manifest.json").read_text())
    generated = manifest.get("rates", {})
    targets = manifest.get("targets", {})
    table = Table(title=f"{day} (local day) from ClickHouse")
    for column in ("KPI", "ClickHouse", "generated", "target"):
        table.add_column(column, justify="right" if column != "KPI" else "left")
    for name in ("online_application", "online_payment", "digitisation", "data_reuse", "electronic_results",
                 "on_time"):
        value = kpi[name]
        table.add_row(name.replace("_", " "), "-" if value is None else f"{value:.2%}",
                      _pct(generated.get(name)), _pct(targets.get(name)))
    table.add_row("dossiers submitted", f"{kpi['dossiers'] or 0:,}", "", "")
    table.add_row("tickets issued / served / abandoned", f"{issued or 0:,} / {served or 0:,} / {abandoned or 0:,}",
                  "", "")
    table.add_row("wait p90 (min)", "-" if wait_p90 is None else f"{wait_p90 / 60:.1f}", "", "")
    table.add_row("network availability", "-" if availability is None else f"{availability:.3%}",
                  _pct(generated.get("availability")), _pct(targets.get("availability")))
    table.add_row("outages / minutes", f"{outages or 0} / {outage_minutes or 0:.0f}", "", "")
    table.add_row("incidents (still open)", ", ".join(f"{s}: {n} ({o})" for s, n, o in incidents) or "0", "", "")
    table.add_row("dead letters", f"{dead:,}", "", "")
    console.print(table)


def _pct(value: Any) -> str:
    return f"{value:.2%}" if isinstance(value, int | float) else "-"
