"""`ioc demo` as a user runs it: its live view fits a standard terminal, and it leaves no broker behind
that it started (or says that one still runs, and how to stop it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from ioc import broker
from ioc.broker import kafka_available
from ioc.demo import _view

REPO = Path(__file__).resolve().parent.parent


def test_live_view_fits_80_columns_without_cutting_a_label() -> None:
    stats = {"events_in": 969_806, "windows_out": 412_345, "lag": 123_456, "late": 12, "dead_letters": 3_456,
             "incidents_opened": 14, "checkpoints": 321}
    console = Console(width=80, record=True, color_system=None)
    console.print(_view(stats, 969_806, 969_806, 123.4))
    text = console.export_text()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    for label in ("replayed", "worker events", "events/s", "windows out", "lag", "late", "dead letters", "incidents",
                  "checkpoints", "969,806 / 969,806", "3,456"):
        assert label in text


@pytest.mark.slow
@pytest.mark.broker
@pytest.mark.skipif(not kafka_available(), reason="the demo's default broker is Apache Kafka (java and mvn)")
@pytest.mark.parametrize("keep", [False, True], ids=["stops-its-broker", "keep-broker"])
def test_demo_runs_an_hour_and_stops_the_broker_it_started(tmp_path: Path, keep: bool) -> None:
    env = os.environ | {"IOC_DATA_DIR": str(tmp_path / "var"), "IOC_CLICKHOUSE_DSN": f"chdb://{tmp_path / 'ioc.chdb'}",
                        "COLUMNS": "80"}
    env.pop("IOC_BROKER_URL", None)
    args = [sys.executable, "-m", "ioc.cli", "demo", "--hours", "1", "--broker", "kafka"]
    done = subprocess.run(args + (["--keep-broker"] if keep else []), cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=900)
    try:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        assert "the day in ClickHouse" in done.stdout and "network availability" in done.stdout
        assert "incidents (still open)" in done.stdout
        running = broker.status(tmp_path / "var")
        if keep:
            assert running is not None and "stop it with `ioc broker down`" in done.stdout
        else:
            assert running is None and "stopped the kafka broker the demo started" in done.stdout
    finally:
        broker.down(tmp_path / "var")
