"""Shared fixtures: real brokers (Apache Kafka 3.9 from Maven jars, and Tansu), never mocks.

`broker` is parametrized over both kinds; `IOC_TEST_BROKER=kafka|tansu` restricts it to one.
Each test module gets fresh brokers, so topics start empty.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ioc.broker import LocalBroker, kafka_available


def broker_kinds() -> list[str]:
    chosen = os.environ.get("IOC_TEST_BROKER", "")
    if chosen:
        return [chosen]
    return ["kafka", "tansu"] if kafka_available() else ["tansu"]


@pytest.fixture(scope="module", params=broker_kinds())
def broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    local = LocalBroker(request.param, tmp_path_factory.mktemp(f"broker-{request.param}"))
    local.start()
    try:
        yield local
    finally:
        local.stop()


# ---------------------------------------------------------------- ClickHouse (chDB)
# chDB opens one store per process, so the whole session shares one; tests get databases in it.

DAY = "2025-07-14"


@pytest.fixture(scope="session")
def chdb_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb") / "store.chdb"


@pytest.fixture(scope="session")
def day_dsn(chdb_store: Path) -> str:
    """A database filled with the default scenario's 2025-07-14 (24 h, seed 7) through the worker's
    own pipelines (partitioned as Kafka would), rollups refreshed: what `ioc demo` leaves behind."""
    from models.settings import Settings
    from simulators.generate import generate
    from sinks.client import connect
    from sinks.migrate import migrate
    from sinks.rollups import refresh_rollups
    from sinks.writer import ClickHouseWriter
    from streams.pipeline import deadletter_rows
    from streams.signals import process_offline

    dsn = f"chdb://{chdb_store}?database=day_{DAY.replace('-', '_')}"
    settings = Settings()
    migrate(dsn, settings)
    tables = generate("default", date.fromisoformat(DAY), 24, seed=7)
    with ClickHouseWriter(dsn, settings) as writer:
        for out in process_offline(tables, settings):
            writer.add_many([(t, rows) for t, rows in out.rows if rows.num_rows])
            if out.dead:
                writer.add("deadletters", deadletter_rows(out.dead, 0))
        writer.flush()
    client = connect(dsn, settings)
    refresh_rollups(client)
    client.close()
    return dsn


@pytest.fixture(scope="module")
def client(day_dsn: str) -> Iterator[Any]:
    """A ClickHouse client on the simulated day (modules with their own database override this)."""
    from models.settings import Settings
    from sinks.client import connect

    c = connect(day_dsn, Settings())
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="session")
def targets() -> dict[str, float]:
    """The default scenario's KPI targets (what dashboards and the briefing judge against)."""
    from simulators.scenario import load_scenario

    return load_scenario("default").targets
