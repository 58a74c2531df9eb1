"""The ClickHouse schema and sink on the real engine: chDB in this process, through clickhouse-connect.

chDB hosts one store per process, so every test here uses the same store (one per test session) and
gets its own database, dropped afterwards. No client outlives its test, so other test modules may
open a different store after this one.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from clickhouse_connect.driver.client import Client
from sink_support import (
    DAY,
    HOUR,
    MINUTE,
    T0,
    TS,
    agg_filings,
    agg_network,
    agg_service_center,
    ids,
    local_day,
    outages,
    raw_table,
)

from benchmarks.sink import run_sink_bench
from models.events import FILINGS, NETWORK, SERVICE_CENTER
from models.reference import ProvinceSpec, build_reference
from models.settings import Settings
from sinks.client import connect
from sinks.dimensions import load_reference
from sinks.dsn import dsn_database, normalize_dsn, redact_dsn, with_database
from sinks.migrate import current_raw_ttl, load_migrations, migrate
from sinks.rollups import refresh_rollups
from sinks.sql import split_statements
from sinks.tables import DIMENSION_TABLES
from sinks.writer import ClickHouseWriter, SinkMisconfigured, SinkRejected, SinkUnavailable
from streams.incidents import INCIDENT_SCHEMA
from streams.sketch import RELATIVE_ERROR, merge, quantiles, sketch_of
from streams.specs import SPECS
from streams.windows import WindowEngine

SETTINGS = Settings()


@pytest.fixture(scope="session")
def store(chdb_store: Path) -> Path:
    return chdb_store  # one chDB store per process (conftest)


@pytest.fixture
def dsn(store: Path) -> Iterator[str]:
    """A freshly migrated database in the session's chDB store."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    migrate(f"chdb://{store}?database={name}", SETTINGS)
    yield f"chdb://{store}?database={name}"
    admin = connect(f"chdb://{store}", SETTINGS)
    try:
        admin.command(f"DROP DATABASE IF EXISTS {name} SYNC")
    finally:
        admin.close()


@pytest.fixture
def client(dsn: str) -> Iterator[Client]:
    c = connect(dsn, SETTINGS)
    yield c
    c.close()


def write(dsn: str, *batches: tuple[str, pa.Table], **kwargs: object) -> None:
    with ClickHouseWriter(dsn, SETTINGS, background=False, **kwargs) as writer:  # type: ignore[arg-type]
        for table, data in batches:
            writer.add(table, data)
        writer.flush()


def rows(client: Client, sql: str, **parameters: object) -> list[tuple]:
    return [tuple(r) for r in client.query(sql, parameters=parameters).result_rows]


# ------------------------------------------------------------------ DSNs and SQL files


def test_normalize_dsn_makes_chdb_paths_absolute(tmp_path: Path) -> None:
    assert normalize_dsn("chdb://./var/ioc.chdb", cwd=tmp_path) == f"chdb://{tmp_path}/var/ioc.chdb"
    assert normalize_dsn("chdb://var/ioc.chdb", cwd=tmp_path) == f"chdb://{tmp_path}/var/ioc.chdb"
    assert normalize_dsn("chdb://../x/./s.chdb", cwd=tmp_path / "a") == f"chdb://{tmp_path}/x/s.chdb"
    assert normalize_dsn("chdb:///abs/s.chdb") == "chdb:///abs/s.chdb"
    assert normalize_dsn("chdb://~/s.chdb") == f"chdb://{Path.home()}/s.chdb"
    assert normalize_dsn("chdb://./s.chdb?database=x", cwd=tmp_path) == f"chdb://{tmp_path}/s.chdb?database=x"
    assert normalize_dsn("chdb://memory") == "chdb://memory"
    assert normalize_dsn("http://reader@ch:8123/ioc") == "http://reader@ch:8123/ioc"
    with pytest.raises(ValueError):
        normalize_dsn("localhost:8123")


def test_dsn_helpers() -> None:
    assert dsn_database("chdb:///s.chdb?database=x") == "x"
    assert dsn_database("chdb:///s.chdb") is None
    assert dsn_database("https://u@ch:8443/ioc") == "ioc"
    assert dsn_database("http://ch:8123") is None
    assert with_database("http://u@ch:8123/a?x=1", "b") == "http://u@ch:8123/b?x=1"
    assert with_database("chdb:///s.chdb?database=a", "b") == "chdb:///s.chdb?database=b"
    assert redact_dsn("http://u:secret@ch:8123/ioc") == "http://u:***@ch:8123/ioc"


def test_split_statements_respects_quotes_and_comments() -> None:
    sql = """
    -- a comment; with a semicolon
    CREATE TABLE a (x String DEFAULT 'it''s; here') ENGINE = Memory;
    /* block; comment */
    SELECT 'a\\'b;', `we;ird`, "q;" FROM a;  -- trailing
    ;
    -- only a comment
    """
    assert split_statements(sql) == [
        "-- a comment; with a semicolon\n    CREATE TABLE a (x String DEFAULT 'it''s; here') ENGINE = Memory",
        "/* block; comment */\n    SELECT 'a\\'b;', `we;ird`, \"q;\" FROM a",
    ]


def test_migration_files_are_numbered_and_split() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
    assert all(m.statements for m in migrations)


# ------------------------------------------------------------------ migrations


def schema_snapshot(client: Client) -> list[tuple]:
    return rows(
        client,
        "SELECT name, create_table_query, total_rows FROM system.tables "
        "WHERE database = currentDatabase() AND name NOT LIKE 'rollup_daily_%' ORDER BY name",
    )


def test_migrate_twice_is_a_noop(dsn: str, client: Client) -> None:
    before = schema_snapshot(client)
    history = "SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version"
    migrations = rows(client, history)
    report = migrate(dsn, SETTINGS)
    assert report.applied == [] and not report.changed
    assert len(report.already_applied) == len(load_migrations())
    assert schema_snapshot(client) == before
    assert rows(client, history) == migrations
    assert "chDB" in report.reader and report.reader.startswith("skipped")
    tables = {name for name, *_ in before}
    assert {"raw_service_center", "raw_filings", "raw_network", "agg_service_center", "agg_filings", "agg_network",
            "network_outages", "late_events", "incidents", "incident_acks", "deadletters", "deadletter_counts",
            "daily_filings", "daily_service_center", "daily_network", *DIMENSION_TABLES} <= tables


def test_raw_ttl_follows_the_setting(dsn: str, client: Client) -> None:
    assert set(current_raw_ttl(client).values()) == {SETTINGS.raw_ttl_days}
    assert migrate(dsn, Settings(raw_ttl_days=30)).ttl_changes
    assert set(current_raw_ttl(client).values()) == {30}
    assert migrate(dsn, Settings(raw_ttl_days=30)).ttl_changes == []
    migrate(dsn, Settings(raw_ttl_days=0))
    assert set(current_raw_ttl(client).values()) == {None}


def test_reference_tables_load_once_and_reload_on_change(client: Client) -> None:
    reference = build_reference()
    for name, table in reference.tables().items():
        assert rows(client, f"SELECT count() FROM {name}") == [(table.num_rows,)]
    assert load_reference(client) == []
    smaller = build_reference(ProvinceSpec(communes=10, wards=2))
    reloaded = load_reference(client, smaller)
    assert "dim_communes" in reloaded and "dim_provinces" not in reloaded
    assert rows(client, "SELECT count() FROM dim_communes") == [(10,)]
    assert load_reference(client, smaller) == []


# ------------------------------------------------------------------ idempotency


def test_raw_inserts_are_idempotent(dsn: str, client: Client) -> None:
    batches = {
        "raw_service_center": raw_table(SERVICE_CENTER, 3_000, seed=1, keys=["C1", "C2"]),
        "raw_filings": raw_table(FILINGS, 3_000, seed=2, keys=["A1", "A2", "A3"]),
        "raw_network": raw_table(NETWORK, 3_000, seed=3, keys=["N1"]),
    }
    write(dsn, *batches.items())
    queries = {
        "raw_service_center": "SELECT center_id, kind, count(), round(sum(wait_s), 6), countIf(rating IS NULL) "
        "FROM raw_service_center FINAL GROUP BY center_id, kind ORDER BY center_id, kind",
        "raw_filings": "SELECT agency_code, channel, count(), countIf(paid_online), uniqExact(event_id) "
        "FROM raw_filings FINAL GROUP BY agency_code, channel ORDER BY agency_code, channel",
        "raw_network": "SELECT node_id, count(), round(sum(latency_ms), 6), countIf(link_up) "
        "FROM raw_network FINAL GROUP BY node_id",
    }
    first = {table: rows(client, sql) for table, sql in queries.items()}
    assert all(len(result) > 0 for result in first.values())
    write(dsn, *batches.items())  # the same batches again: a redelivery after a crash
    write(dsn, ("raw_filings", batches["raw_filings"].slice(100, 500)))  # and an overlapping part
    for table, sql in queries.items():
        assert rows(client, sql) == first[table], table
        assert rows(client, f"SELECT count() FROM {table} FINAL") == [(3_000,)]
    # the stored rows are the inserted rows, nulls included
    stored = client.query_arrow("SELECT * EXCEPT ingested_at FROM raw_filings FINAL ORDER BY event_id")
    stored = stored.cast(FILINGS.schema)
    assert stored.equals(batches["raw_filings"].sort_by("event_id"))


def test_reemitted_window_with_higher_version_replaces_the_old_one(dsn: str, client: Client) -> None:
    keys = [(T0 + i * 5 * MINUTE, f"A{a}", "online_full", "province") for i in range(12) for a in range(3)]
    v1 = agg_filings([(*k, 1) for k in keys], seed=1)
    write(dsn, ("agg_filings", v1))
    v2 = agg_filings([(*k, 2) for k in keys[::4]], seed=2)  # late events re-emitted a few windows
    write(dsn, ("agg_filings", v2), ("agg_filings", v2))  # twice: a retried insert
    write(dsn, ("agg_filings", v1.slice(0, 6)))  # a stale version-1 redelivery must not win
    latest = {(r["window_start"], r["agency_code"]): r for r in v1.to_pylist()}
    latest.update({(r["window_start"], r["agency_code"]): r for r in v2.to_pylist()})
    expected = sorted((k[0].replace(tzinfo=None), k[1], r["version"], r["submitted"]) for k, r in latest.items())
    final = rows(client, "SELECT window_start, agency_code, version, submitted FROM agg_filings FINAL ORDER BY 1, 2")
    assert final == expected
    arg_max = rows(
        client,
        "SELECT window_start, agency_code, max(version), argMax(submitted, version) FROM agg_filings "
        "GROUP BY window_start, agency_code ORDER BY 1, 2",
    )
    assert arg_max == expected
    assert rows(client, "SELECT sum(submitted) FROM agg_filings FINAL") == [(sum(e[3] for e in expected),)]


def test_side_outputs_are_idempotent(dsn: str, client: Client) -> None:
    ts = pa.timestamp("ms", tz="UTC")
    late = pa.table({"family": ["filings"] * 3, "key": ["A1", "A2", "A1"], "event_id": ["e1", "e2", "e3"],
                     "event_time": pa.array([T0, T0 + 1, T0 + 2], ts), "window_start": pa.array([T0] * 3, ts),
                     "detected_at": pa.array([T0 + HOUR] * 3, ts)})
    incident = {"incident_id": "network:N1:1", "status": "open", "family": "network", "scope": "node",
                "subject": "N1", "title": "N1 down", "severity": "critical", "rules": ["node_down"],
                "subjects": ["N1"], "communes": ["C1"], "start": T0, "detected_at": T0 + 120_000, "end": None,
                "peak_rule": "node_down", "peak_value": 0.0, "threshold": 0.5, "updated_at": T0 + 120_000}
    versions = [{**incident, "version": 1}, {**incident, "version": 2, "status": "resolved", "end": T0 + HOUR}]
    incidents = pa.Table.from_pylist(versions, schema=INCIDENT_SCHEMA)
    letters = pa.table({"source_topic": ["ioc.filings.events"] * 3, "partition": pa.array([0, 0, 1], pa.uint32()),
                        "offset": pa.array([10, 11, 10], pa.uint64()),
                        "reason": ["wrong_type", "oversized", "wrong_type"],
                        "detail": ["x", "y", "z"], "payload_bytes": pa.array([5, 70_000, 7], pa.uint32()),
                        "received_at": pa.array([T0, T0, T0], ts)})
    write(dsn, ("late_events", late), ("incidents", incidents), ("deadletters", letters))
    redelivered = letters.set_column(6, "received_at", pa.array([T0 + DAY] * 3, ts))  # seen again a day later
    write(dsn, ("late_events", late), ("incidents", incidents), ("deadletters", redelivered))
    assert rows(client, "SELECT count() FROM late_events FINAL") == [(3,)]
    assert rows(client, "SELECT version, status FROM incidents FINAL") == [(2, "resolved")]  # the latest version
    assert rows(client, "SELECT state FROM incidents_current") == [("resolved",)]
    assert rows(client, "SELECT reason, sum(letters) FROM deadletter_counts GROUP BY reason ORDER BY reason") == [
        ("oversized", 1), ("wrong_type", 2)]


def test_window_engine_output_fits_the_tables(dsn: str, client: Client) -> None:
    """The tables take what streams.windows emits, as is; FINAL returns each window's latest version."""
    for name, spec in SPECS.items():
        events = raw_table(spec.family, 4_000, seed=20, span_ms=2 * HOUR, keys=["K1", "K2", "K3"])
        events = events.sort_by("event_time")
        # The last events push the watermark (max time - 120 s) just past T0 + 2h, closing the windows
        # that end there; stragglers just before T0 + 2h are then late but within the allowed lateness,
        # so their windows are re-emitted with version 2.
        times = events.column("event_time").cast(pa.int64()).to_numpy().copy()
        times[-10:] = T0 + 2 * HOUR + 150_000
        events = events.set_column(1, "event_time", pa.array(times, TS))
        stragglers = events.slice(0, 20).set_column(0, "event_id", ids("s", 0, 20))
        stragglers = stragglers.set_column(1, "event_time", pa.array(T0 + 2 * HOUR - 1_000 - np.arange(20) * 100, TS))
        engine = WindowEngine(spec)
        now = T0 + 3 * HOUR
        emitted = [engine.ingest_table(events.slice(0, 3_000), now), engine.ingest_table(events.slice(3_000), now)]
        emitted.append(engine.ingest_table(stragglers, now))
        emitted.append(engine.close_all())
        windows = pa.concat_tables([e.windows for e in emitted])
        sessions = [e.sessions for e in emitted if e.sessions is not None and e.sessions.num_rows]
        late = [e.late for e in emitted if e.late.num_rows]
        assert windows.num_rows > 0
        batches = [(f"agg_{name}", w) for w in (e.windows for e in emitted) if w.num_rows]
        batches += [("network_outages", t) for t in sessions] + [("late_events", t) for t in late]
        write(dsn, *batches)
        keys = ["window_start", *spec.keys]
        latest = windows.group_by(keys).aggregate([("version", "max")])
        assert max(latest.column("version_max").to_pylist()) > min(windows.column("version").to_pylist())
        first_count = spec.aggs[0].name  # a count column of every spec
        expected = (
            windows.select([*keys, "version", first_count]).join(latest, keys).filter(
                pc.equal(pc.field("version"), pc.field("version_max"))
            ).column(first_count).to_numpy().sum()
        )
        assert rows(client, f"SELECT count(), sum({first_count}) FROM agg_{name} FINAL") == [
            (latest.num_rows, int(expected))]
    assert rows(client, "SELECT count() > 0 FROM network_outages FINAL") == [(1,)]


# ------------------------------------------------------------------ rollups


def filings_group_by(client: Client) -> list[tuple]:
    return rows(client, """
        SELECT toDate(window_start, 'Asia/Ho_Chi_Minh') AS d, agency_code, channel, level,
               sum(submitted), sumIf(submitted, channel != 'in_person'), sum(paid_online), sum(digitised),
               sum(reused_data), sum(processed), sum(on_time), sum(late), sum(result_issued), sum(electronic),
               sum(rejected)
        FROM agg_filings FINAL GROUP BY d, agency_code, channel, level ORDER BY d, agency_code, channel, level""")


def filings_rollup(client: Client) -> list[tuple]:
    return rows(client, """
        SELECT day, agency_code, channel, level, submitted, submitted_online, paid_online, digitised, reused_data,
               processed, on_time, late, result_issued, electronic, rejected
        FROM daily_filings ORDER BY day, agency_code, channel, level""")


def test_rollups_match_a_direct_group_by(dsn: str, client: Client) -> None:
    # Windows around local midnight (17:00 UTC), over three local days, with re-emits and duplicates.
    starts = [T0 + 16 * HOUR + i * 5 * MINUTE for i in range(0, 24 * 12 + 30, 7)]
    keys = [(s, f"A{a}", ch, lv) for s in starts for a in range(3) for ch, lv in
            (("online_full", "province"), ("in_person", "commune"))]
    filings_v1 = agg_filings([(*k, 1) for k in keys], seed=4)
    filings_v2 = agg_filings([(*k, 2) for k in keys[::5]], seed=5)
    centers = [(T0 + 16 * HOUR + i * MINUTE, f"C{c}", 1) for i in range(0, 36 * 60, 17) for c in range(2)]
    sc_v1, _ = agg_service_center(centers, seed=6)
    sc_v2, _ = agg_service_center([(s, c, 3) for s, c, _ in centers[::9]], seed=7)
    nodes = [(T0 + 16 * HOUR + i * MINUTE, f"N{n}", 1) for i in range(0, 36 * 60, 13) for n in range(2)]
    net = agg_network(nodes, seed=8)
    midnight = T0 + 17 * HOUR  # 2025-07-15 00:00 in Vietnam
    outage_rows = [("N0", midnight - 10 * MINUTE, midnight + 20 * MINUTE, 1),
                   ("N0", midnight - 10 * MINUTE, midnight + 35 * MINUTE, 2),  # the same outage, extended
                   ("N1", midnight + 2 * HOUR, midnight + 2 * HOUR + 90_000, 1)]
    write(dsn, ("agg_filings", filings_v1), ("agg_filings", filings_v2), ("agg_filings", filings_v2),
          ("agg_service_center", sc_v1), ("agg_service_center", sc_v2), ("agg_service_center", sc_v1.slice(0, 50)),
          ("agg_network", net), ("agg_network", net), ("network_outages", outages(outage_rows)))
    assert refresh_rollups(client) == ("rollup_daily_filings", "rollup_daily_service_center", "rollup_daily_network",
                                       "rollup_service_index")

    assert filings_rollup(client) == filings_group_by(client)
    assert len({r[0] for r in filings_rollup(client)}) == 3

    expected_sc = rows(client, """
        SELECT toDate(window_start, 'Asia/Ho_Chi_Minh') AS d, center_id, sum(issued), sum(served), sum(abandoned),
               sum(wait_count), round(sum(wait_sum), 6), max(wait_max), sumMap(wait_sketch)
        FROM agg_service_center FINAL GROUP BY d, center_id ORDER BY d, center_id""")
    got_sc = rows(client, """
        SELECT day, center_id, issued, served, abandoned, wait_count, round(wait_sum, 6), wait_max, wait_sketch
        FROM daily_service_center ORDER BY day, center_id""")
    assert got_sc == expected_sc
    for (_, _, *_rest, sketch), (p90,) in zip(
        got_sc, rows(client, "SELECT wait_p90 FROM daily_service_center ORDER BY day, center_id"), strict=True
    ):
        assert p90 == pytest.approx(quantiles(sketch, [0.9])[0], rel=1e-12)

    got_net = rows(client, """
        SELECT toString(day), node_id, samples, up_samples, availability, outages, round(outage_minutes, 6)
        FROM daily_network ORDER BY day, node_id""")
    expected_net = rows(client, """
        SELECT toString(toDate(window_start, 'Asia/Ho_Chi_Minh')) AS d, node_id, sum(samples), sum(up_samples),
               sum(up_samples) / sum(samples)
        FROM agg_network FINAL GROUP BY d, node_id ORDER BY d, node_id""")
    outage_minutes = {(local_day(midnight - 1), "N0"): (1, 10.0), (local_day(midnight), "N0"): (0, 35.0),
                      (local_day(midnight), "N1"): (1, 1.5)}
    assert [r[:5] for r in got_net] == expected_net
    assert {(r[0], r[1]): (r[5], r[6]) for r in got_net if r[5] or r[6]} == outage_minutes

    # A window re-emitted later, for a day already rolled up, is picked up by the next refresh only.
    late = agg_filings([(starts[0], "A0", "online_full", "province", 9)], seed=9)
    write(dsn, ("agg_filings", late))
    assert filings_rollup(client) != filings_group_by(client)
    refresh_rollups(client)
    assert filings_rollup(client) == filings_group_by(client)
    refresh_rollups(client)  # nothing new: still equal, still one row per key
    assert filings_rollup(client) == filings_group_by(client)


def test_scheduled_refresh_runs_the_same_computation(dsn: str, client: Client) -> None:
    keys = [(T0 + i * 5 * MINUTE, "A1", "online_partial", "commune", 1) for i in range(50)]
    write(dsn, ("agg_filings", agg_filings(keys, seed=10)))
    client.command("SYSTEM REFRESH VIEW rollup_daily_filings_refresh")
    client.command("SYSTEM WAIT VIEW rollup_daily_filings_refresh")
    assert filings_rollup(client) == filings_group_by(client)


def test_sketch_quantile_sql_matches_the_window_engine(client: Client) -> None:
    """ioc_sketch_quantile (SQL) == streams.sketch.quantiles (Python) on the engine's own sketches."""
    rng = np.random.default_rng(11)
    sql = "SELECT ioc_sketch_quantile(mapFromArrays({k:Array(Int32)}, {c:Array(UInt64)}), {q:Float64})"
    for i in range(20):
        values = np.concatenate([rng.lognormal(4, 1.2, rng.integers(1, 400)), np.zeros(rng.integers(0, 3))])
        if i % 4 == 0:  # negatives, subnormal-small and huge magnitudes too
            values = np.concatenate([values, -values[:5], [1e-40, 3e38, -2.5]])
        sketch = sketch_of(values)
        for q in (0.0, 0.01, 0.29, 0.5, 0.9, 0.99, 1.0):
            got = rows(client, sql, k=list(sketch), c=list(sketch.values()), q=q)[0][0]
            assert got == pytest.approx(quantiles(sketch, [q])[0], rel=1e-12, abs=1e-300)
            exact = float(np.sort(values)[int(np.floor(q * (len(values) - 1) + 1e-9))])
            assert got == pytest.approx(exact, rel=RELATIVE_ERROR, abs=1.2e-38)
    halves = [sketch_of(values[: len(values) // 2]), sketch_of(values[len(values) // 2 :])]
    assert merge(*halves) == sketch_of(values)
    assert rows(client, "SELECT ioc_sketch_quantile(map(), 0.5), ioc_sketch_quantile(map(1, 0), 0.5)") == [
        (None, None)]


# ------------------------------------------------------------------ the writer


def test_one_million_rows_from_arrow(dsn: str, client: Client) -> None:
    data = raw_table(NETWORK, 1_000_000, seed=12, span_ms=DAY, keys=[f"N{i}" for i in range(100)])
    with ClickHouseWriter(dsn, SETTINGS, batch_rows=250_000) as writer:
        for offset in range(0, data.num_rows, 100_000):
            writer.add("raw_network", data.slice(offset, 100_000))
        writer.flush()
        assert writer.stats().rows_inserted == 1_000_000
    assert rows(client, "SELECT count(), uniqExact(event_id), countIf(link_up) FROM raw_network") == [
        (1_000_000, 1_000_000, int(np.sum(data.column("link_up").to_numpy())))]


def test_hostile_strings_are_stored_verbatim_and_queried_with_parameters(dsn: str, client: Client) -> None:
    hostile = ["'; DROP TABLE raw_filings; --", "a\\'b", "x' OR '1'='1", "{k:String}", "tab\there", "new\nline",
               "Xã Nghĩa Hành", "`back`", 'quote"d', "\\", "%s", "\x00nul"]
    data = raw_table(FILINGS, len(hostile), seed=13)
    data = data.set_column(FILINGS.schema.get_field_index("agency_code"), "agency_code", pa.array(hostile))
    data = data.set_column(FILINGS.schema.get_field_index("dossier_id"), "dossier_id", pa.array(hostile[::-1]))
    write(dsn, ("raw_filings", data))
    for key, dossier in zip(hostile, hostile[::-1], strict=True):
        assert rows(client, "SELECT dossier_id FROM raw_filings WHERE agency_code = {k:String}", k=key) == [(dossier,)]
    assert rows(client, "SELECT count() FROM raw_filings WHERE agency_code IN {ks:Array(String)}", ks=hostile) == [
        (len(hostile),)]
    assert sorted(r[0] for r in rows(client, "SELECT agency_code FROM raw_filings")) == sorted(hostile)


def test_writer_flushes_by_size_and_by_age(dsn: str, client: Client) -> None:
    data = raw_table(SERVICE_CENTER, 1_000, seed=14)
    with ClickHouseWriter(dsn, SETTINGS, batch_rows=400, flush_ms=50) as writer:
        writer.add("raw_service_center", data.slice(0, 500))  # over batch_rows: inserted by the background thread
        writer.add("raw_service_center", data.slice(500, 100))  # small: inserted once 50 ms old
        deadline = time.monotonic() + 60
        while writer.stats().rows_inserted < 600 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert writer.stats().rows_inserted == 600 and writer.buffered_rows == 0
        writer.add("raw_service_center", data.slice(600, 400))
    # close() flushed the rest
    assert rows(client, "SELECT count() FROM raw_service_center") == [(1_000,)]


def test_writer_rejects_a_bad_batch_without_blocking_the_rest(dsn: str, client: Client) -> None:
    good = raw_table(NETWORK, 10, seed=15)
    bad = good.append_column("no_such_column", pa.array(range(10)))
    with ClickHouseWriter(dsn, SETTINGS, background=False, max_retries=3) as writer:
        writer.add("raw_network", bad)
        with pytest.raises(SinkRejected) as rejected:
            writer.flush()
        assert rejected.value.table == "raw_network" and rejected.value.data.num_rows == 10
        assert writer.buffered_rows == 0 and writer.stats().retries == 0
        writer.add("raw_network", good)
        writer.flush()
    assert rows(client, "SELECT count() FROM raw_network") == [(10,)]


def test_writer_keeps_rows_when_the_schema_is_missing(dsn: str, client: Client) -> None:
    data = raw_table(NETWORK, 10, seed=17)
    with ClickHouseWriter(dsn, SETTINGS, background=False) as writer:
        writer.add("raw_network_v2", data)
        with pytest.raises(SinkMisconfigured):
            writer.flush()
        assert writer.buffered_rows == 10 and writer.stats().retries == 0
        client.command("CREATE TABLE raw_network_v2 AS raw_network")  # the missing migration
        assert writer.flush() == 10
    assert rows(client, "SELECT count() FROM raw_network_v2") == [(10,)]


def test_writer_keeps_rows_and_signals_backpressure_while_unreachable() -> None:
    # A port nobody listens on (bound, then released): every insert is refused, as by a server that is down.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    writer = ClickHouseWriter(dead, SETTINGS, background=False, batch_rows=1_000, max_buffer_rows=250,
                              max_retries=2, backoff_base_s=0.001, backoff_max_s=0.002)
    data = raw_table(NETWORK, 100, seed=16)
    assert writer.add("raw_network", data) is False
    with pytest.raises(SinkUnavailable):
        writer.flush()
    assert writer.buffered_rows == 100 and writer.stats().retries == 3
    writer.add("raw_network", data)
    assert writer.add("raw_network", data) is True and writer.should_pause
    assert writer.buffered_rows == 300  # nothing dropped
    with pytest.raises(SinkUnavailable):
        writer.close()


def test_sink_benchmark_reports_rows_per_second(dsn: str, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    report = run_sink_bench(dsn, out, SETTINGS, batch_sizes=(1_000, 10_000), rows=20_000)
    assert [r["batch_rows"] for r in report["results"]] == [1_000, 10_000]
    assert all(r["rows"] == 20_000 and r["rows_per_s"] > 0 for r in report["results"])
    assert out.read_text().startswith("{")
    assert dsn_database(dsn) is not None


def test_incident_lifecycle_open_acknowledged_resolved(dsn: str, client: Client,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`ioc incidents list|ack` on the store: the engine's versions and the operator's acknowledgement
    meet in incidents_current."""
    from ioc.cli import main

    base = {"incident_id": "service_center:QNG-HCC:1", "version": 1, "status": "open", "family": "service_center",
            "scope": "center", "subject": "QNG-HCC", "title": "QNG-HCC: queue", "severity": "warning",
            "rules": ["queue_long"], "subjects": ["QNG-HCC"], "communes": [], "start": T0, "detected_at": T0,
            "end": None, "peak_rule": "queue_long", "peak_value": 4.0, "threshold": 3.0, "updated_at": T0}
    write(dsn, ("incidents", pa.Table.from_pylist([base], schema=INCIDENT_SCHEMA)))
    assert main(["incidents", "list", "--clickhouse", dsn]) == 0
    assert "service_center:QNG-HCC:1" in capsys.readouterr().out
    assert main(["incidents", "ack", "service_center:QNG-HCC:1", "--by", "duty-officer", "--clickhouse", dsn]) == 0
    assert capsys.readouterr().out.strip() == "service_center:QNG-HCC:1: acknowledged"
    assert rows(client, "SELECT state, acknowledged_by FROM incidents_current") == [("acknowledged", "duty-officer")]
    resolved = {**base, "version": 2, "status": "resolved", "end": T0 + HOUR}
    write(dsn, ("incidents", pa.Table.from_pylist([resolved], schema=INCIDENT_SCHEMA)))
    assert rows(client, "SELECT state FROM incidents_current") == [("resolved",)]
    assert main(["incidents", "list", "--clickhouse", dsn]) == 0
    assert "no incidents" in capsys.readouterr().out
    assert main(["incidents", "ack", "nope", "--clickhouse", dsn]) == 2
    assert "no incident 'nope'" in capsys.readouterr().err
