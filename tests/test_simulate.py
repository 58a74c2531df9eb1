"""The simulator: determinism, schema conformance, reference keys, calibration, incidents, office hours."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from ioc.cli import main as ioc_main
from models.events import FAMILIES
from models.reference import build_reference
from models.schema import parse_time, validate_table
from simulators.clock import Calendar
from simulators.generate import generate, simulate_to_dir
from simulators.kpi import realised_rates
from simulators.scenario import DegradedLink, IncidentT, NodeOutage, PortalOutage, QueueSurge, load_scenario

MONDAY = date(2025, 7, 14)
FAR_FUTURE_MS = 4_102_444_800_000  # 2100-01-01
SCENARIO = load_scenario("default")
REF = build_reference()
CAL = Calendar(SCENARIO)


def ms(table: pa.Table, column: str = "event_time") -> np.ndarray:
    return pc.cast(table.column(column), pa.int64()).to_numpy(zero_copy_only=False)


def strings(table: pa.Table, column: str) -> np.ndarray:
    return np.array(table.column(column).to_pylist(), dtype=object)


def of_kind(table: pa.Table, *kinds: str) -> pa.Table:
    return table.filter(pc.is_in(table.column("kind"), value_set=pa.array(kinds)))


def window_ms(incident: object) -> tuple[int, int]:
    start = CAL.midnight_ms(MONDAY + timedelta(days=incident.day)) + incident.start * 60_000
    return start, start + int(incident.duration_min * 60_000)


@pytest.fixture(scope="module")
def day() -> dict[str, pa.Table]:
    """The default scenario's first day, all three families."""
    return generate("default", MONDAY, 24, seed=7)


@pytest.fixture(scope="module")
def week() -> dict[str, pa.Table]:
    """Five working days (Monday to Friday) of the human-driven families."""
    return generate("default", MONDAY, 5 * 24, seed=7, families=("filings", "service_center"))


# ---------------------------------------------------------------- determinism and files


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    runs = {}
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        simulate_to_dir("default", MONDAY, 10, seed, tmp_path / name, progress=False)
        runs[name] = {p.name: p.read_bytes() for p in sorted((tmp_path / name).iterdir())}
    topics = {f"{f.topic}.parquet" for f in FAMILIES.values()}
    assert set(runs["a"]) == topics | {"manifest.json"}
    assert runs["a"] == runs["b"]
    for topic in topics:
        assert runs["a"][topic] != runs["c"][topic], topic


def test_summary_and_manifest_describe_the_run(tmp_path: Path) -> None:
    summary = simulate_to_dir("default", MONDAY, 3, 5, tmp_path, progress=False)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["scenario"] == "default" and manifest["seed"] == 5 and manifest["start"] == "2025-07-14"
    assert manifest["counts"] == summary.counts
    assert set(summary.counts) == {f.topic for f in FAMILIES.values()}
    assert summary.counts["ioc.network.telemetry"] == 129 * 3 * 360
    assert manifest["targets"]["online_application"] == pytest.approx(0.70)
    assert set(manifest["rates"]) >= {"online_application", "online_payment", "digitisation", "on_time"}


def test_cli_writes_one_parquet_file_per_topic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = ioc_main(["simulate", "--scenario", "default", "--start", "2025-07-14", "--hours", "2", "--seed", "3",
                     "--out", str(tmp_path), "--quiet"])
    assert code == 0
    for family in FAMILIES.values():
        assert (tmp_path / f"{family.topic}.parquet").is_file()
    assert "ioc.filings.events" in capsys.readouterr().out


def test_a_family_does_not_depend_on_which_others_are_generated(day: dict[str, pa.Table]) -> None:
    alone = generate("default", MONDAY, 24, seed=7, families=["filings"])
    assert list(alone) == ["filings"]
    assert alone["filings"].equals(day["filings"])


# ---------------------------------------------------------------- contracts


def test_tables_match_the_family_schemas_and_validate(day: dict[str, pa.Table]) -> None:
    for name, table in day.items():
        family = FAMILIES[name]
        assert table.schema.equals(family.schema), name
        assert table.num_rows > 0
        rejections = [r for r in validate_table(family, table, FAR_FUTURE_MS, 0) if r is not None]
        assert rejections == [], (name, rejections[:3])


def test_event_ids_unique_and_events_sorted_inside_the_horizon(day: dict[str, pa.Table]) -> None:
    t0 = CAL.midnight_ms(MONDAY)
    assert t0 == parse_time("2025-07-13T17:00:00Z")  # local midnight in Asia/Ho_Chi_Minh (UTC+7)
    all_ids: set[str] = set()
    for table in day.values():
        ids = table.column("event_id").to_pylist()
        assert len(set(ids)) == len(ids)
        all_ids.update(ids)
        times = ms(table)
        assert np.all(np.diff(times) >= 0)
        assert times.min() >= t0 and times.max() < t0 + 24 * 3_600_000
    assert len(all_ids) == sum(t.num_rows for t in day.values())  # unique across families too


def test_keys_exist_in_reference_data(day: dict[str, pa.Table]) -> None:
    assert set(strings(day["service_center"], "center_id")) <= set(REF.centers.column("center_id").to_pylist())
    assert set(strings(day["network"], "node_id")) == set(REF.nodes.column("node_id").to_pylist())
    filings = day["filings"]
    assert set(strings(filings, "agency_code")) <= set(REF.agencies.column("agency_code").to_pylist())
    assert set(strings(filings, "procedure_id")) <= set(REF.procedures.column("procedure_id").to_pylist())


def test_dossiers_are_consistent_with_their_procedure_and_agency(week: dict[str, pa.Table]) -> None:
    procs = REF.procedures.to_pylist()
    by_id = {p["procedure_id"]: p for p in procs}
    agency_level = dict(zip(REF.agencies.column("agency_code").to_pylist(), REF.agencies.column("level").to_pylist(),
                            strict=True))
    submitted = of_kind(week["filings"], "submitted").to_pylist()
    for row in submitted:
        proc = by_id[row["procedure_id"]]
        assert proc["demand_weight"] > 0, "a dormant procedure received a dossier"
        assert row["level"] == proc["level"] == agency_level[row["agency_code"]]
        if proc["level"] == "province":
            assert row["agency_code"] == proc["department_code"]
        if row["channel"] != "in_person":
            assert row["channel"] == ("online_full" if proc["online_mode"] == "full" else "online_partial")
        assert row["due_time"] > row["event_time"]


def test_processed_on_time_agrees_with_the_due_time(week: dict[str, pa.Table]) -> None:
    processed = of_kind(week["filings"], "processed")
    on_time = processed.column("on_time").to_numpy(zero_copy_only=False)
    assert np.array_equal(on_time, ms(processed) <= ms(processed, "due_time"))
    assert 0 < (~on_time).sum() < on_time.sum()  # some late dossiers, far fewer than on-time ones


def test_ticket_lifecycles_are_ordered(day: dict[str, pa.Table]) -> None:
    tickets = day["service_center"]
    times = {kind: dict(zip(strings(of_kind(tickets, kind), "ticket_id"), ms(of_kind(tickets, kind)), strict=True))
             for kind in ("issued", "called", "served", "abandoned")}
    assert times["called"].keys() == times["served"].keys()
    assert not times["called"].keys() & times["abandoned"].keys()
    for ticket, called in times["called"].items():
        assert times["issued"][ticket] <= called <= times["served"][ticket]
    for ticket, gave_up in times["abandoned"].items():
        assert times["issued"][ticket] <= gave_up
    ratings = of_kind(tickets, "served").column("rating").to_numpy()
    assert set(np.unique(ratings)) <= {1, 2, 3, 4}
    opened = of_kind(tickets, "counter_opened")
    assert opened.num_rows == 2 * int(pc.sum(REF.centers.column("counters")).as_py())  # two sessions a day


# ---------------------------------------------------------------- calibration


def test_reference_counts_match_the_source_documents() -> None:
    agencies = REF.agencies
    assert agencies.num_rows == 108
    levels = agencies.column("level").to_pylist()
    assert levels.count("province") == 12 and levels.count("commune") == 96
    modes = REF.procedures.column("online_mode").to_pylist()
    assert len(modes) == 2_184 and modes.count("full") == 848 and modes.count("partial") == 1_336
    assert (REF.procedures.column("demand_weight").to_numpy() == 0).sum() == 550


def test_five_working_days_reproduce_the_scenario_rates(week: dict[str, pa.Table]) -> None:
    rates = realised_rates(week)
    spec = SCENARIO.filings
    for name in ("online_application", "online_payment", "digitisation", "on_time", "data_reuse",
                 "electronic_results"):
        assert rates[name] == pytest.approx(getattr(spec, name), abs=0.02), name
    # Every one of the 108 agencies receives dossiers in a working week.
    assert set(strings(week["filings"], "agency_code")) == set(REF.agencies.column("agency_code").to_pylist())


def test_volumes_follow_the_calibrated_daily_figures(week: dict[str, pa.Table]) -> None:
    submitted = of_kind(week["filings"], "submitted")
    levels = strings(submitted, "level")
    spec = SCENARIO.filings
    for level, per_day in (("province", spec.province_per_working_day), ("commune", spec.commune_per_working_day)):
        # Monday morning runs hot (+~10% on the week), online filings go on after hours (counted in
        # the daily figure), the portal outage moves a few: within 10% of the figure per working day.
        assert (levels == level).sum() / 5 == pytest.approx(per_day, rel=0.10), level


# ---------------------------------------------------------------- incidents


def monday_incidents(kind: type[IncidentT]) -> list[IncidentT]:
    """The scenario's incidents of one kind on its first day (the `day` fixture); later days have others."""
    return [i for i in SCENARIO.incidents_of(kind) if i.day == 0]


def test_node_outage_takes_the_link_down_for_its_window_only(day: dict[str, pa.Table]) -> None:
    (outage,) = monday_incidents(NodeOutage)
    start, end = window_ms(outage)
    telemetry = day["network"]
    node = strings(telemetry, "node_id") == outage.node
    times = ms(telemetry)
    up = telemetry.column("link_up").to_numpy(zero_copy_only=False)
    inside = node & (times >= start) & (times < end)
    assert inside.sum() == outage.duration_min * 6  # one sample per 10 s
    assert not up[inside].any()
    assert up[~inside].all()
    assert (telemetry.column("rx_bps").to_numpy()[inside] == 0).all()


def test_degraded_link_raises_latency_and_loss(day: dict[str, pa.Table]) -> None:
    (incident,) = monday_incidents(DegradedLink)
    start, end = window_ms(incident)
    telemetry = day["network"]
    node = strings(telemetry, "node_id") == incident.node
    times = ms(telemetry)
    inside = node & (times >= start) & (times < end)
    before = node & (times >= start - 3_600_000) & (times < start)
    latency = telemetry.column("latency_ms").to_numpy()
    loss = telemetry.column("loss_pct").to_numpy()
    assert latency[inside].mean() > latency[before].mean() + 0.5 * incident.extra_latency_ms
    assert loss[inside].mean() > loss[before].mean() + 0.5 * incident.extra_loss_pct


def test_portal_outage_stops_online_filings_and_pushes_some_in_person(day: dict[str, pa.Table]) -> None:
    (outage,) = monday_incidents(PortalOutage)
    start, end = window_ms(outage)
    calm = generate(dataclasses.replace(SCENARIO, incidents=()), MONDAY, 24, seed=7, families=["filings"])
    shares = {}
    for label, tables in (("outage", day), ("calm", calm)):
        submitted = of_kind(tables["filings"], "submitted")
        times = ms(submitted)
        channel = strings(submitted, "channel")[(times >= start) & (times < end)]
        shares[label] = ((channel != "in_person").mean(), (channel == "in_person").sum())
    assert shares["outage"][0] == 0.0 < shares["calm"][0]
    assert shares["outage"][1] > shares["calm"][1]


def test_queue_surge_multiplies_arrivals_and_waits_at_its_center(day: dict[str, pa.Table]) -> None:
    (surge,) = monday_incidents(QueueSurge)
    start, end = window_ms(surge)
    calm = generate(dataclasses.replace(SCENARIO, incidents=()), MONDAY, 24, seed=7, families=["service_center"])

    def at_center(tables: dict[str, pa.Table], kind: str) -> pa.Table:
        t = of_kind(tables["service_center"], kind)
        times = ms(t)
        return t.filter(pa.array((strings(t, "center_id") == surge.center) & (times >= start) & (times < end)))

    issued, issued_calm = at_center(day, "issued").num_rows, at_center(calm, "issued").num_rows
    assert issued == pytest.approx(surge.factor * issued_calm, rel=0.25)
    assert pc.mean(at_center(day, "called").column("wait_s")).as_py() > 2 * pc.mean(
        at_center(calm, "called").column("wait_s")).as_py()


# ---------------------------------------------------------------- office hours


def in_office(times_ms: np.ndarray) -> np.ndarray:
    return CAL.decompose(times_ms).in_office


def test_in_person_events_happen_in_office_hours(week: dict[str, pa.Table]) -> None:
    issued = of_kind(week["service_center"], "issued")
    assert in_office(ms(issued)).all()
    submitted = of_kind(week["filings"], "submitted")
    in_person = strings(submitted, "channel") == "in_person"
    times = ms(submitted)
    assert in_office(times[in_person]).all()
    assert not in_office(times[~in_person]).all()  # the portal takes filings in the evening too
    decided = of_kind(week["filings"], "processed", "rejected", "result_issued")
    assert in_office(ms(decided)).all()  # officials work office hours


def test_monday_morning_is_busier_than_tuesday_morning(week: dict[str, pa.Table]) -> None:
    lt = CAL.decompose(ms(of_kind(week["service_center"], "issued")))
    mornings = (lt.session == 0)
    assert (mornings & (lt.weekday == 0)).sum() > 1.3 * (mornings & (lt.weekday == 1)).sum()


def test_weekend_has_online_filings_only() -> None:
    saturday = MONDAY - timedelta(days=2)
    tables = generate(dataclasses.replace(SCENARIO, incidents=()), saturday, 48, seed=1,
                      families=("filings", "service_center"))
    assert tables["service_center"].num_rows == 0
    submitted = of_kind(tables["filings"], "submitted")
    assert submitted.num_rows > 0
    assert set(strings(submitted, "channel")) <= {"online_full", "online_partial"}
    assert of_kind(tables["filings"], "processed").num_rows == 0  # nobody works on Sunday either
