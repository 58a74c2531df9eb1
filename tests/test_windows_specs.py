"""The three family specs on small hand-made Arrow batches, and their exact output schemas."""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from models.events import FILINGS, NETWORK, SERVICE_CENTER
from models.schema import FUTURE_TIME, MISSING_FIELD, records_to_table
from models.settings import Settings
from streams import sketch as sk
from streams.specs import SPECS
from streams.windows import LATE_SCHEMA, WindowEngine

T0 = 1_752_480_000_000  # 2025-07-14 08:00:00 UTC, a minute boundary
NOW = T0 + 3_600_000
TS = pa.timestamp("ms", tz="UTC")
U32, F64, STR, SKETCH = pa.uint32(), pa.float64(), pa.string(), pa.map_(pa.int32(), pa.uint64())
HEAD = [("window_start", TS), ("window_end", TS)]

SCHEMAS = {
    "service_center": [*HEAD, ("center_id", STR), ("version", U32),
                       *((c, U32) for c in ("issued", "called", "served", "abandoned", "counters_opened",
                                            "counters_closed", "wait_count")),
                       ("wait_sum", F64), ("wait_max", F64), ("wait_p50", F64), ("wait_p90", F64),
                       ("wait_p99", F64), ("wait_sketch", SKETCH), ("service_count", U32), ("service_sum", F64),
                       ("service_p90", F64), ("rating_count", U32), ("rating_sum", F64)],
    "filings": [*HEAD, ("agency_code", STR), ("channel", STR), ("level", STR), ("version", U32),
                *((c, U32) for c in ("submitted", "processed", "on_time", "late", "result_issued", "electronic",
                                     "rejected", "paid_online", "digitised", "reused_data")),
                ("on_time_ratio", F64), ("paid_online_ratio", F64)],
    "network": [*HEAD, ("node_id", STR), ("version", U32), ("samples", U32), ("up_samples", U32),
                ("latency_p50", F64), ("latency_p95", F64), ("latency_max", F64), ("latency_sketch", SKETCH),
                ("latency_sum", F64), ("jitter_sum", F64), ("loss_sum", F64), ("loss_max", F64),
                ("rx_bps_sum", F64), ("tx_bps_sum", F64), ("capacity_bps", F64), ("util_max", F64),
                ("availability", F64)],
}
SESSIONS = [("node_id", STR), ("start", TS), ("end", TS), ("duration_s", F64), ("samples", U32), ("version", U32)]


def plain(table: pa.Table) -> list[dict]:
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type):
            table = table.set_column(i, f.name, pc.cast(table.column(i), pa.int64()))
    return table.to_pylist()


def run(family: str, records: list[dict], **kw: int):
    fam = {"service_center": SERVICE_CENTER, "filings": FILINGS, "network": NETWORK}[family]
    engine = WindowEngine(SPECS[family], **({"delay_ms": 0, "lateness_ms": 0} | kw))
    out = engine.ingest_table(records_to_table(fam, records), NOW)
    end = engine.close_all()
    return engine, out, plain(pa.concat_tables([out.windows, end.windows]))


@pytest.mark.parametrize("family", sorted(SCHEMAS))
def test_output_schemas_are_the_sink_contract(family: str) -> None:
    schema = SPECS[family].window_schema()
    assert [(f.name, f.type) for f in schema] == SCHEMAS[family]
    assert SPECS[family].window_schema().field("version").type == U32
    sessions = SPECS[family].session_schema()
    assert ([(f.name, f.type) for f in sessions] if sessions else None) == (SESSIONS if family == "network" else None)
    assert [(f.name, f.type) for f in LATE_SCHEMA] == [
        ("family", STR), ("key", STR), ("event_id", STR), ("event_time", TS), ("window_start", TS)]


def test_service_center_minute_windows() -> None:
    def ev(i: int, t_s: float, center: str, kind: str, **kw) -> dict:
        return {"event_id": f"s{i}", "event_time": T0 + int(t_s * 1000), "center_id": center, "kind": kind} | kw

    records = [
        ev(0, 1, "C1", "issued", ticket_id="t1"), ev(1, 2, "C1", "issued", ticket_id="t2"),
        ev(2, 10, "C1", "called", wait_s=120.0), ev(3, 20, "C1", "called", wait_s=0.0),
        ev(4, 30, "C1", "called"),  # no wait_s: not in wait_count
        ev(5, 40, "C1", "served", service_s=300.0, rating=4), ev(6, 50, "C1", "served", service_s=60.0),
        ev(7, 55, "C1", "abandoned"), ev(8, 5, "C1", "counter_opened", counter_id=1),
        ev(9, 59, "C1", "counter_closed", counter_id=1), ev(10, 3, "C2", "issued"), ev(11, 61, "C1", "issued"),
    ]
    _, out, rows = run("service_center", records)
    assert out.windows.schema == SPECS["service_center"].window_schema()
    by = {(r["window_start"], r["center_id"]): r for r in rows}
    c1 = by[(T0, "C1")]
    assert c1["window_end"] == T0 + 60_000 and c1["version"] == 10  # version: events accepted into the row
    assert [c1[k] for k in ("issued", "called", "served", "abandoned", "counters_opened", "counters_closed")] == [
        2, 3, 2, 1, 1, 1]
    assert (c1["wait_count"], c1["wait_sum"], c1["wait_max"]) == (2, 120.0, 120.0)
    assert c1["wait_p50"] == 0.0 and c1["wait_p99"] == 0.0  # lower rank of [0, 120]: floor(0.99 * 1) = 0
    assert sk.count(c1["wait_sketch"]) == 2 and math.isclose(sk.quantiles(c1["wait_sketch"], [1.0])[0], 120,
                                                             rel_tol=sk.RELATIVE_ERROR)
    assert (c1["service_count"], c1["service_sum"]) == (2, 360.0)
    assert math.isclose(c1["service_p90"], 60.0, rel_tol=sk.RELATIVE_ERROR)
    assert (c1["rating_count"], c1["rating_sum"]) == (1, 4.0)
    later = by[(T0 + 60_000, "C1")]
    assert later["issued"] == 1 and later["wait_max"] is None and later["wait_p50"] is None
    assert later["wait_sketch"] == [] and later["wait_sum"] == 0.0
    assert by[(T0, "C2")]["issued"] == 1


def test_filings_five_minute_windows_per_agency_channel_level() -> None:
    def ev(i: int, kind: str, channel: str = "online_full", level: str = "province", agency: str = "A1",
           t_s: int = 10, **kw) -> dict:
        return {"event_id": f"f{i}", "event_time": T0 + t_s * 1000, "agency_code": agency, "dossier_id": f"d{i}",
                "procedure_id": "p", "kind": kind, "channel": channel, "level": level} | kw

    records = [
        ev(0, "submitted", paid_online=True, digitised=True, reused_data=False),
        ev(1, "submitted", paid_online=False, digitised=True), ev(2, "submitted"),
        ev(3, "processed", on_time=True), ev(4, "processed", on_time=False), ev(5, "processed", on_time=True),
        ev(6, "processed"),  # on_time unknown: neither on time nor late
        ev(7, "result_issued", electronic=True), ev(8, "result_issued", electronic=False), ev(9, "rejected"),
        ev(10, "submitted", channel="in_person", paid_online=True),
        ev(11, "submitted", level="commune", agency="A2", t_s=299),
        ev(12, "submitted", level="commune", agency="A2", t_s=300),  # next 5-minute window
    ]
    engine, _, rows = run("filings", records)
    by = {(r["window_start"], r["agency_code"], r["channel"], r["level"]): r for r in rows}
    a1 = by[(T0, "A1", "online_full", "province")]
    counts = [a1[k] for k in ("submitted", "processed", "on_time", "late", "result_issued", "electronic",
                              "rejected", "paid_online", "digitised", "reused_data")]
    assert counts == [3, 4, 2, 1, 2, 1, 1, 1, 2, 0]
    assert a1["on_time_ratio"] == 0.5 and a1["paid_online_ratio"] == 1 / 3
    assert a1["window_end"] - a1["window_start"] == 300_000
    person = by[(T0, "A1", "in_person", "province")]
    assert (person["submitted"], person["paid_online_ratio"], person["on_time_ratio"]) == (1, 1.0, None)
    assert by[(T0, "A2", "online_full", "commune")]["submitted"] == 1
    assert by[(T0 + 300_000, "A2", "online_full", "commune")]["submitted"] == 1
    assert len(engine.keys) == 3


def test_network_minute_windows_and_outage_sessions() -> None:
    def ev(i: int, t_s: int, node: str = "N1", up: bool = True, latency: float = 10.0, cap: float = 100.0,
           rx: float = 20.0, tx: float = 50.0, loss: float = 0.0) -> dict:
        return {"event_id": f"n{i}", "event_time": T0 + t_s * 1000, "node_id": node, "latency_ms": latency,
                "jitter_ms": 1.0, "loss_pct": loss, "rx_bps": rx, "tx_bps": tx, "capacity_bps": cap, "link_up": up}

    records = [
        ev(0, 0, latency=10.0), ev(1, 10, latency=30.0, loss=2.0), ev(2, 20, up=False, latency=0.0, loss=100.0),
        ev(3, 30, up=False, latency=0.0, loss=100.0, cap=0.0), ev(4, 40, latency=20.0, rx=90.0, tx=10.0),
        ev(5, 70, latency=12.0), ev(6, 0, node="N2", up=False), ev(7, 400, node="N2", up=True),
    ]
    _, out, rows = run("network", records, lateness_ms=0, delay_ms=120_000)
    n1 = next(r for r in rows if r["node_id"] == "N1" and r["window_start"] == T0)
    assert (n1["samples"], n1["up_samples"], n1["availability"]) == (5, 3, 0.6)
    # Latency and jitter only while the link is up: the two down samples' 0 ms (no probe reply) are absent.
    assert (n1["latency_sum"], n1["latency_max"], n1["jitter_sum"]) == (60.0, 30.0, 3.0)
    assert (n1["loss_sum"], n1["loss_max"], n1["capacity_bps"]) == (202.0, 100.0, 100.0)  # loss: every sample
    assert (n1["rx_bps_sum"], n1["tx_bps_sum"]) == (170.0, 210.0)
    assert n1["util_max"] == 0.9  # max(rx, tx) / capacity; the zero-capacity sample has no utilisation
    assert math.isclose(n1["latency_p50"], 20.0, rel_tol=sk.RELATIVE_ERROR)  # sorted [10, 20, 30]
    assert math.isclose(n1["latency_p95"], 20.0, rel_tol=sk.RELATIVE_ERROR)  # lower rank floor(0.95 * 2) = 1
    assert sk.count(n1["latency_sketch"]) == 3 and 0 not in dict(n1["latency_sketch"])  # no zero latency
    sessions = {(r["node_id"], r["start"]): r for r in plain(out.sessions)}
    assert sessions[("N1", T0 + 20_000)] == {
        "node_id": "N1", "start": T0 + 20_000, "end": T0 + 40_000, "duration_s": 20.0, "samples": 2,
        "version": 6}  # N1's samples so far
    # N2: down at 0, next sample (up) 400 s later is beyond the 120 s gap: ends at its last down sample.
    assert sessions[("N2", T0)]["end"] == T0 and sessions[("N2", T0)]["duration_s"] == 0.0


def test_network_latency_counts_only_samples_with_the_link_up() -> None:
    """A node down for a whole minute (0 ms latency and jitter, 100% loss: no probe reply) has no
    latency in that window, and a half-down minute's latency is that of its up samples only."""
    def ev(i: int, t_s: int, up: bool, latency: float) -> dict:
        return {"event_id": f"n{i}", "event_time": T0 + t_s * 1000, "node_id": "N1", "latency_ms": latency,
                "jitter_ms": latency / 10, "loss_pct": 0.0 if up else 100.0, "rx_bps": 1.0, "tx_bps": 1.0,
                "capacity_bps": 10.0, "link_up": up}

    records = [ev(i, 10 * i, False, 0.0) for i in range(6)]  # minute 0: down throughout
    records += [ev(6 + i, 60 + 10 * i, i % 2 == 0, 40.0 if i % 2 == 0 else 0.0) for i in range(6)]  # half down
    records += [{**ev(12, 125, True, 50.0), "link_up": None}]  # unknown link state: no latency either
    _, _, rows = run("network", records)
    by = {r["window_start"]: r for r in rows}
    down, half, unknown = by[T0], by[T0 + 60_000], by[T0 + 120_000]
    assert (down["samples"], down["up_samples"], down["loss_sum"], down["loss_max"]) == (6, 0, 600.0, 100.0)
    assert down["latency_p50"] is down["latency_p95"] is down["latency_max"] is None
    assert (down["latency_sum"], down["jitter_sum"], down["latency_sketch"]) == (0.0, 0.0, [])
    assert (half["samples"], half["up_samples"], half["latency_sum"], half["jitter_sum"]) == (6, 3, 120.0, 12.0)
    assert math.isclose(half["latency_p50"], 40.0, rel_tol=sk.RELATIVE_ERROR) and half["latency_max"] == 40.0
    assert half["latency_sum"] / half["up_samples"] == 40.0 and half["loss_sum"] == 300.0
    assert (unknown["samples"], unknown["up_samples"], unknown["latency_sum"]) == (1, 0, 0.0)


def test_ingest_table_late_rows_carry_ids_and_rejections_their_reasons() -> None:
    engine = WindowEngine.from_settings(SPECS["service_center"], Settings(allowed_lateness_s=60, max_future_skew_s=10))
    assert (engine.delay_ms, engine.lateness_ms, engine.max_future_skew_ms) == (60_000, 60_000, 10_000)

    def ev(i: int, t_ms: int | None) -> dict:
        return {"event_id": f"e{i}", "event_time": t_ms, "center_id": "C9", "kind": "issued"}

    table = records_to_table(SERVICE_CENTER, [ev(0, T0), ev(1, None), ev(2, NOW + 11_000), ev(3, T0 + 1000)])
    out = engine.ingest_table(table, NOW)
    assert out.rejected_rows.tolist() == [1, 2] and out.rejected_reasons == [MISSING_FIELD, FUTURE_TIME]
    assert out.events == 4 and out.accepted == 2
    engine.ingest_table(records_to_table(SERVICE_CENTER, [ev(4, T0 + 600_000)]), NOW)
    late = engine.ingest_table(records_to_table(SERVICE_CENTER, [ev(5, T0 + 2000)]), NOW)
    assert plain(late.late) == [{"family": "service_center", "key": "C9", "event_id": "e5", "event_time": T0 + 2000,
                                 "window_start": T0}]
    assert engine.late_counts() == {"C9": 1}
