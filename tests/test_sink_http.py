"""The sink on clickhouse-connect's HTTP code path, against a stand-in for a ClickHouse server.

No ClickHouse server can be installed here, so `clickhouse_stand_in.StandIn` serves a chDB store
through ClickHouse's HTTP interface from a child process (see that module). The writer, the
migrations and the queries below are the production HTTP code (`http://` DSNs); only the server is
a stand-in. This module opens no chDB store in-process: the stand-in process owns its store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from clickhouse_connect.driver.client import Client
from clickhouse_stand_in import StandIn
from sink_support import T0, raw_table

from models.events import FILINGS, NETWORK
from models.settings import Settings
from sinks.client import connect
from sinks.migrate import migrate
from sinks.writer import ClickHouseWriter, SinkMisconfigured

SETTINGS = Settings()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIn]:
    with StandIn(tmp_path_factory.mktemp("standin") / "store.chdb") as stand_in:
        migrate(f"{stand_in.dsn}/ioc", SETTINGS)
        yield stand_in


@pytest.fixture
def client(server: StandIn) -> Iterator[Client]:
    c = connect(f"{server.dsn}/ioc", SETTINGS)
    yield c
    c.close()


def rows(client: Client, sql: str, **parameters: object) -> list[tuple]:
    return [tuple(r) for r in client.query(sql, parameters=parameters).result_rows]


def test_http_stand_in_migrate_twice_is_a_noop_and_reader_needs_a_real_server(
    server: StandIn, client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    assert type(client).__name__ == "HttpClient"
    secret = "pa'ss\\word"
    with caplog.at_level(logging.WARNING):
        report = migrate(f"{server.dsn}/ioc", Settings(clickhouse_reader_password=secret))
    assert report.applied == [] and not report.changed
    # On a server the migration creates the read-only user; the stand-in (chDB) has no access
    # control, so the attempt fails cleanly, without leaking the password.
    assert report.reader.startswith("failed")
    assert secret not in report.reader and secret not in caplog.text
    assert rows(client, "SELECT count() FROM dim_agencies") == [(108,)]


def test_http_stand_in_writer_roundtrip_with_bound_parameters(client: Client, server: StandIn) -> None:
    data = raw_table(FILINGS, 2_000, seed=1, keys=["'; DROP TABLE raw_filings; --", "Xã Ba Tơ", "a\\'b"])
    with ClickHouseWriter(f"{server.dsn}/ioc", SETTINGS, batch_rows=500) as writer:
        writer.add("raw_filings", data)
        writer.add("raw_filings", data)  # a redelivery
        writer.flush()
    counts = dict(rows(client, "SELECT agency_code, count() FROM raw_filings FINAL GROUP BY agency_code"))
    values, frequencies = data.column("agency_code").value_counts().flatten()
    expected = dict(zip(values.to_pylist(), frequencies.to_pylist(), strict=True))
    assert counts == expected
    for key, count in expected.items():
        got = rows(client, "SELECT count() FROM raw_filings FINAL WHERE agency_code = {k:String}", k=key)
        assert got == [(count,)]
    arrow = client.query_arrow("SELECT event_id, event_time FROM raw_filings FINAL ORDER BY event_id LIMIT 3")
    assert arrow.num_rows == 3 and arrow.schema.field("event_time").type == pa.timestamp("ms", tz="UTC")


def test_http_stand_in_credentials_come_from_settings(tmp_path: Path) -> None:
    with StandIn(tmp_path / "auth.chdb", auth=("ioc_writer", "s3cr'et")) as guarded:
        ok = Settings(clickhouse_user="ioc_writer", clickhouse_password="s3cr'et")
        migrate(f"{guarded.dsn}/ioc", ok)  # the DSN carries no credentials
        with ClickHouseWriter(f"{guarded.dsn}/ioc", ok) as writer:
            writer.add("raw_network", raw_table(NETWORK, 100, seed=2))
        wrong = Settings(clickhouse_user="ioc_writer", clickhouse_password="guess")
        writer = ClickHouseWriter(f"{guarded.dsn}/ioc", wrong, background=False, backoff_base_s=0.001)
        writer.add("raw_network", raw_table(NETWORK, 100, seed=3))
        with pytest.raises(SinkMisconfigured):  # not retried: a wrong password stays wrong
            writer.flush()
        assert writer.stats().retries == 0 and writer.buffered_rows == 100
        check = connect(f"{guarded.dsn}/ioc", ok)
        assert rows(check, "SELECT count() FROM raw_network") == [(100,)]
        check.close()


def test_http_stand_in_connection_drop_mid_run_loses_and_doubles_nothing(server: StandIn, client: Client) -> None:
    """Kill the server (SIGKILL) while the writer is inserting, restart it on the same port and
    store: the writer retries through the outage; FINAL sees every row exactly once."""
    total, batch = 120_000, 4_000
    data = raw_table(NETWORK, total, seed=4, start_ms=T0, keys=[f"N{i}" for i in range(50)], id_prefix="drop-")
    client.command("TRUNCATE TABLE raw_network")
    writer = ClickHouseWriter(
        f"{server.dsn}/ioc", SETTINGS, batch_rows=batch, max_retries=30, backoff_base_s=0.05, backoff_max_s=0.5,
        background=False,
    )
    failure: list[BaseException] = []
    # The writer stops after a quarter until the server is dead, so three quarters of the rows meet the
    # outage however fast this machine inserts; the kill itself lands between requests or during one.
    quarter_done, killed = threading.Event(), threading.Event()

    def produce() -> None:
        try:
            for offset in range(0, total, batch):
                if offset >= total // 4 and not quarter_done.is_set():
                    quarter_done.set()
                    killed.wait(120)
                writer.add("raw_network", data.slice(offset, batch))  # inserts each full batch
            writer.flush()
        except BaseException as exc:
            failure.append(exc)

    producer = threading.Thread(target=produce)
    producer.start()
    assert quarter_done.wait(120) and not failure, failure
    server.kill()
    killed.set()
    time.sleep(0.5)
    server.start()
    producer.join(300)
    assert not producer.is_alive() and not failure, failure
    stats = writer.stats()
    writer.close()
    assert stats.rows_inserted == total and stats.retries >= 1
    check = connect(f"{server.dsn}/ioc", SETTINGS)
    try:
        [(count, unique, latency)] = rows(
            check, "SELECT count(), uniqExact(event_id), sum(latency_ms) FROM raw_network FINAL"
        )
        assert (count, unique) == (total, total)
        assert latency == pytest.approx(pc.sum(data.column("latency_ms")).as_py(), rel=1e-12)
        physical = rows(check, "SELECT count() FROM raw_network")[0][0]
        assert total <= physical <= total + batch  # at most the one in-flight batch landed twice
    finally:
        check.close()
