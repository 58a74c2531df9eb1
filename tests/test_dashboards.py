"""Every panel query of every IOC dashboard, expanded as Grafana + the ClickHouse plugin expand it,
run against a chDB store holding a simulated day (the `day_dsn` fixture), checked for the shape the
panel needs; the wall's KPIs against independent SQL over the raw events; the JSON models against
the foundation SDK's models.

The expansion is done by tests/clickhouse_plugin_stand_in.py (see its docstring for the plugin
and Grafana code it follows). Time ranges are what Grafana resolves the wall's "now/d .. now" to
on 2025-07-14 in Asia/Ho_Chi_Minh (the dashboards' time zone).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from clickhouse_plugin_stand_in import (
    ALL,
    Expansion,
    QueryContext,
    TimeRange,
    Variable,
    apply_conditional_all,
    calculate_interval_ms,
    interpolate_macros,
    replace_variables,
    resolve_variables,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard as DashboardModel
from grafana_foundation_sdk.models.prometheus import Dataquery as PrometheusQuery

from dashboards import catalog, wall
from dashboards.datasource import DATASOURCE_UID, PROMETHEUS_TYPE, PROMETHEUS_UID
from dashboards.export import DATASOURCE_FILE, PROMETHEUS_FILE, render
from dashboards.query import PLUGIN_ID, ClickHouseQuery, register
from dashboards.targets import Targets
from models.settings import Settings
from sinks.client import connect

REPO = Path(__file__).resolve().parent.parent
DAY_START = datetime(2025, 7, 13, 17, tzinfo=UTC)  # 2025-07-14 00:00 in Asia/Ho_Chi_Minh
# "Today" viewed at 23:59:59.999 local: the whole simulated day.
FULL_DAY = TimeRange(DAY_START, datetime(2025, 7, 14, 16, 59, 59, 999000, tzinfo=UTC))
# "Today so far" at 10:30 local: the queue surge at the provincial center (08:30-10:30) and the
# outage of N-000.05.00.H55 (10:00-10:45) are under way.
MID_MORNING = TimeRange(DAY_START, datetime(2025, 7, 14, 3, 30, tzinfo=UTC))
WALL_WIDTH_PX = 1920  # Grafana's resolution without maxDataPoints is the panel width in pixels
SIDE_OUTPUT_TABLES = ("deadletters", "late_events", "stream_checkpoints")  # empty in the simulated day

NUMERIC = re.compile(r"^(Nullable\()?(U?Int\d+|Float\d+|Decimal.*|Bool)\)?$")
TIME = re.compile(r"^(Nullable\()?DateTime(64)?(\(.*\))?\)?$")
TEXT = re.compile(r"^(Nullable\()?(LowCardinality\()?(Nullable\()?(String|FixedString\(\d+\))\)*$")


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def models() -> dict[str, dict[str, Any]]:
    return catalog.dashboard_models()


@pytest.fixture(scope="module")
def side_client(chdb_store: Path) -> Iterator[Any]:
    """A database in the session's store with the side outputs the simulated day has none of:
    dead letters, late events and partition checkpoints, in the tables' own shapes."""
    from sinks.migrate import migrate
    from streams.decode import DeadLetter
    from streams.pipeline import deadletter_rows

    dsn = f"chdb://{chdb_store}?database=dashboards_side_outputs"
    settings = Settings()
    migrate(dsn, settings)
    c = connect(dsn, settings)
    received_ms = int(datetime(2025, 7, 14, 2, 0, tzinfo=UTC).timestamp() * 1000)
    dead = [DeadLetter(topic="ioc.filings.events", partition=1, offset=10 + i, reason=reason,
                       detail=f"example {reason}", payload=b"{not json")
            for i, reason in enumerate(("malformed", "malformed", "future_dated"))]
    c.insert_arrow("deadletters", deadletter_rows(dead, received_ms))
    c.insert("late_events", [["network", "N-000.05.00.H55", f"late-{i}", datetime(2025, 7, 14, 3, i, tzinfo=UTC),
                               datetime(2025, 7, 14, 3, i, tzinfo=UTC)] for i in range(3)],
             column_names=["family", "key", "event_id", "event_time", "window_start"])
    c.insert("stream_checkpoints", [["ioc-streams", "ioc.network.telemetry", p, 1000 * p, b"state"] for p in range(4)],
             column_names=["consumer_group", "topic", "partition", "next_offset", "state"])
    try:
        yield c
    finally:
        c.close()


# ---------------------------------------------------------------- running panels


@dataclass(frozen=True)
class Scenario:
    dashboard: str
    time_range: TimeRange
    selection: dict[str, tuple[str, ...]]
    expect_data: bool  # every panel (except side-output ones) must return rows / non-null numbers

    @property
    def id(self) -> str:
        chosen = ",".join(f"{k}={'+'.join(v)}" for k, v in self.selection.items()) or "all"
        span = "day" if self.time_range == FULL_DAY else "10h30"
        return f"{self.dashboard}-{span}-{chosen}"


SCENARIOS = [
    Scenario(wall.UID, MID_MORNING, {}, expect_data=True),
    Scenario(wall.UID, FULL_DAY, {}, expect_data=False),  # at midnight no one waits and nothing is active
    Scenario("ioc-service-centers", FULL_DAY, {}, expect_data=True),
    Scenario("ioc-service-centers", FULL_DAY, {"commune": ("QNG-C005",)}, expect_data=True),
    Scenario("ioc-service-centers", FULL_DAY, {"center": ("QNG-HCC",)}, expect_data=True),
    Scenario("ioc-filings", FULL_DAY, {}, expect_data=True),
    Scenario("ioc-filings", FULL_DAY, {"agency": ("000.00.03.H55", "000.05.00.H55")}, expect_data=True),
    Scenario("ioc-network", FULL_DAY, {}, expect_data=True),
    Scenario("ioc-network", FULL_DAY, {"commune": ("QNG-C005",)}, expect_data=True),
    Scenario("ioc-pipeline", FULL_DAY, {}, expect_data=True),
    Scenario("ioc-service-index", MID_MORNING, {}, expect_data=True),
]


def _interval_ms(panel: dict[str, Any], time_range: TimeRange) -> int:
    width = round(panel.get("gridPos", {}).get("w", 24) / 24 * WALL_WIDTH_PX)
    return calculate_interval_ms(time_range, int(panel.get("maxDataPoints") or width), panel.get("interval"))


def _describe(client: Any, sql: str) -> list[tuple[str, str]]:
    """Column names and types, also for queries that return no rows."""
    return [(r[0], r[1]) for r in client.query(f"DESCRIBE TABLE ({sql})").result_rows]


def _reads_side_outputs(sql: str) -> bool:
    return any(re.search(rf"\b{t}\b", sql) for t in SIDE_OUTPUT_TABLES)


def check_result(kind: str, columns: list[tuple[str, str]], rows: list[tuple[Any, ...]],
                 expect_data: bool) -> list[str]:
    """What a panel of this kind needs from its query; returns the problems found."""
    problems = []
    names = [n for n, _ in columns]
    types = [t for _, t in columns]
    if len(set(names)) != len(names):
        problems.append(f"duplicate column names {names}")
    if kind in ("stat", "gauge"):
        if len(rows) != 1:
            problems.append(f"{kind} needs exactly one row, got {len(rows)}")
        if not all(NUMERIC.match(t) for t in types):
            problems.append(f"{kind} needs numbers only, got {columns}")
        if expect_data and rows and any(v is None for v in rows[0]):
            problems.append(f"{kind} value is NULL")
    elif kind == "timeseries":
        if not names or names[0] != "time" or not TIME.match(types[0]):
            problems.append(f"time series needs `time` (DateTime) first, got {columns[:1]}")
        rest = types[1:]
        if not any(NUMERIC.match(t) for t in rest) or not all(NUMERIC.match(t) or TEXT.match(t) for t in rest):
            problems.append(f"time series needs numeric values (and string labels), got {columns}")
        times = [r[0] for r in rows]
        if times != sorted(times):
            problems.append("time series rows are not ordered by time")
    elif kind == "bargauge":
        if not (types and TEXT.match(types[0]) and all(NUMERIC.match(t) for t in types[1:]) and len(types) > 1):
            problems.append(f"bar gauge needs a label column then numbers, got {columns}")
    elif kind == "table":
        if not columns:
            problems.append("table has no columns")
    elif kind == "geomap":  # markers at coords: latitude and longitude fields, a value to colour by
        if not {"latitude", "longitude"} <= set(names) or not any(NUMERIC.match(t) for t in types):
            problems.append(f"geomap markers need latitude, longitude and a value, got {columns}")
        if expect_data and rows and any(r[names.index("latitude")] is None for r in rows):
            problems.append("geomap marker without coordinates")
    else:
        problems.append(f"unexpected panel type {kind}")
    if expect_data and not rows:
        problems.append("no rows")
    return problems


def sql_targets(panel: dict[str, Any]) -> list[dict[str, Any]]:
    """A panel's ClickHouse targets; the worker panels' PromQL ones run in tests/test_dashboards_prometheus.py."""
    targets = [t for t in panel["targets"] if (t.get("datasource") or {}).get("uid") != PROMETHEUS_UID]
    assert all("rawSql" in t for t in targets), panel["title"]
    return targets


def run_panels(client: Any, model: dict[str, Any], scenario: Scenario, skip_side_outputs: bool) -> dict[str, Any]:
    run = lambda sql: client.query(sql).result_rows  # noqa: E731
    variables = resolve_variables(model.get("templating", {}).get("list", []), scenario.selection, run,
                                  scenario.time_range)
    results, problems = {}, []
    for panel in model["panels"]:
        for target in sql_targets(panel):
            sql = Expansion(scenario.time_range, _interval_ms(panel, scenario.time_range), variables).expand(
                target["rawSql"])
            side = _reads_side_outputs(sql)
            if side and skip_side_outputs:
                continue
            try:
                columns = _describe(client, sql)
                rows = client.query(sql).result_rows
            except Exception as exc:  # a query ClickHouse refuses is the finding
                problems.append(f"{panel['title']!r}: {exc}\n{sql}")
                continue
            for p in check_result(panel["type"], columns, rows, scenario.expect_data or side):
                problems.append(f"{panel['title']!r} ({panel['type']}): {p}\n{sql}")
            ref_id = target.get("refId", "A")
            results[panel["title"] if ref_id == "A" else f"{panel['title']} {ref_id}"] = rows
    for annotation in model.get("annotations", {}).get("list", []):
        sql = Expansion(scenario.time_range, 60_000, variables).expand(annotation["target"]["rawSql"])
        columns = dict(_describe(client, sql))
        if not (TIME.match(columns.get("time", "")) and TEXT.match(columns.get("text", ""))
                and TEXT.match(columns.get("tags", "String"))):
            problems.append(f"annotation {annotation['name']!r} needs time, text (and string tags), got {columns}")
        results[f"annotation:{annotation['name']}"] = client.query(sql).result_rows
    assert not problems, "\n\n".join(problems)
    return results


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.id)
def test_every_panel_query_runs_with_the_shape_its_panel_needs(client: Any, models: dict[str, Any],
                                                               scenario: Scenario) -> None:
    run_panels(client, models[scenario.dashboard], scenario, skip_side_outputs=True)


def test_side_output_panels_on_a_store_with_dead_letters_late_events_and_checkpoints(
        side_client: Any, models: dict[str, Any]) -> None:
    model = models["ioc-pipeline"]
    side_only = dict(model, panels=[p for p in model["panels"]
                                    if any(_reads_side_outputs(t["rawSql"]) for t in sql_targets(p))])
    assert len(side_only["panels"]) >= 6
    results = run_panels(side_client, side_only, Scenario("ioc-pipeline", FULL_DAY, {}, expect_data=True),
                         skip_side_outputs=False)
    assert results["Dead letters"] == [(3,)]
    assert results["Late events"] == [(3,)]
    assert sorted(results["Dead letters by reason"])[0][:3] == ("ioc.filings.events", "future_dated", 1)


# ---------------------------------------------------------------- numbers against the raw events


def _stat(results: dict[str, Any], title: str) -> float:
    ((value,),) = results[title]
    return float(value)


@pytest.mark.parametrize(("time_range", "raw_end"), [
    (MID_MORNING, "2025-07-14 03:30:00"),
    (FULL_DAY, "2025-07-14 17:00:00"),  # the last 5-minute window starting before 16:59:59 ends at 17:00
], ids=["10h30", "day"])
def test_wall_kpis_equal_independent_sql_over_raw_events(client: Any, models: dict[str, Any],
                                                         time_range: TimeRange, raw_end: str) -> None:
    results = run_panels(client, models[wall.UID], Scenario(wall.UID, time_range, {}, expect_data=False),
                         skip_side_outputs=True)
    day = f"event_time >= '2025-07-13 17:00:00' AND event_time < '{raw_end}'"
    filings = client.query(f"""
        SELECT countIf(kind = 'submitted' AND channel != 'in_person') / countIf(kind = 'submitted'),
               countIf(kind = 'submitted' AND paid_online) / countIf(kind = 'submitted'),
               countIf(kind = 'processed' AND on_time) / countIf(kind = 'processed'),
               countIf(kind = 'result_issued' AND electronic) / countIf(kind = 'result_issued'),
               countIf(kind = 'submitted' AND digitised) / countIf(kind = 'submitted'),
               countIf(kind = 'submitted')
        FROM raw_filings FINAL WHERE {day}
    """).result_rows[0]
    wall_values = [_stat(results, t) for t in ("Online applications today", "Online payment today",
                                                "On-time processing today", "E-results today",
                                                "Digitisation today", "Dossiers today")]
    assert wall_values == pytest.approx(list(filings), rel=1e-12)

    tickets = client.query(f"""
        SELECT countIf(kind = 'issued') - countIf(kind = 'called') - countIf(kind = 'abandoned'),
               countIf(kind = 'abandoned') / countIf(kind IN ('abandoned', 'called')),
               avgIf(wait_s, kind = 'called'),
               arrayElement(arraySort(groupArrayIf(wait_s, kind = 'called')),
                            toUInt64(floor(0.9 * (countIf(kind = 'called') - 1))) + 1)
        FROM raw_service_center FINAL WHERE {day}
    """).result_rows[0]
    assert _stat(results, "Waiting now") == tickets[0]
    assert _stat(results, "Abandoned today") == pytest.approx(tickets[1], rel=1e-12)
    assert _stat(results, "Mean wait today") == pytest.approx(tickets[2], rel=1e-9)
    # The p90 comes from merged log-bucket sketches: within their relative error of the exact rank.
    assert _stat(results, "Wait p90 today") == pytest.approx(tickets[3], rel=0.008)

    ((availability,),) = client.query(
        f"SELECT countIf(link_up) / count() FROM raw_network FINAL WHERE {day}").result_rows
    assert _stat(results, "Network availability today") == pytest.approx(availability, rel=1e-12)

    # Nodes whose most recent probe before the end of the range (within the session gap) was down.
    ((down,),) = client.query(f"""
        SELECT countIf(NOT up) FROM (
            SELECT node_id, argMax(link_up, event_time) AS up FROM raw_network FINAL
            WHERE event_time <= '{time_range.end:%Y-%m-%d %H:%M:%S}'
              AND event_time > '{time_range.end:%Y-%m-%d %H:%M:%S}' - INTERVAL 2 MINUTE
            GROUP BY node_id)
    """).result_rows
    assert _stat(results, "Nodes in outage") == down
    if time_range == MID_MORNING:
        assert down == 1 and _stat(results, "Waiting now") > 0 and _stat(results, "Critical incidents") >= 1
        assert _stat(results, "Open incidents") >= 2  # the node outage and the queue surge
        ((index,),) = client.query("SELECT total FROM service_index WHERE period = 'mtd' AND "
                                   "unit_level = 'province' AND day = '2025-07-14'").result_rows
        assert _stat(results, "Service index (766), month to date") == pytest.approx(index) and 0 < index < 100
        today = results["Incidents today"]
        assert any(r[1] == "open" and r[0] == "critical" for r in today), today
        assert results["Waiting now by center"][0][0].endswith("tỉnh Quảng Ngãi")  # the surge is there


def test_scoped_drill_down_equals_raw_events_of_the_selection(client: Any, models: dict[str, Any]) -> None:
    """The template variables really narrow the queries: one center, then one commune's agencies."""
    results = run_panels(client, models["ioc-service-centers"],
                         Scenario("ioc-service-centers", FULL_DAY, {"center": ("QNG-HCC",)}, expect_data=True),
                         skip_side_outputs=True)
    ((issued,),) = client.query("SELECT countIf(kind = 'issued') FROM raw_service_center FINAL "
                                "WHERE center_id = 'QNG-HCC'").result_rows
    assert _stat(results, "Tickets issued") == issued > 0
    assert [r[0] for r in results["Centers"]] == ["Trung tâm Phục vụ hành chính công tỉnh Quảng Ngãi"]

    results = run_panels(client, models["ioc-filings"],
                         Scenario("ioc-filings", FULL_DAY, {"commune": ("QNG-C005",)}, expect_data=True),
                         skip_side_outputs=True)
    ((submitted,),) = client.query("""
        SELECT countIf(kind = 'submitted') FROM raw_filings FINAL
        WHERE agency_code IN (SELECT agency_code FROM dim_agencies WHERE commune_code = 'QNG-C005')
    """).result_rows
    assert _stat(results, "Dossiers submitted") == submitted > 0


# ---------------------------------------------------------------- the stand-in itself


def test_plugin_stand_in_expands_like_the_plugin() -> None:
    """Known expansions from the plugin's docs and code (pkg/macros, CHDatasource.applyConditionalAll)."""
    r = TimeRange(datetime(2022, 10, 21, tzinfo=UTC), datetime(2022, 10, 23, 12, tzinfo=UTC))
    ctx = QueryContext(r, 20_000)
    assert interpolate_macros("WHERE $__timeFilter(t)", ctx) == \
        "WHERE t >= toDateTime(1666310400) AND t <= toDateTime(1666526400)"
    assert interpolate_macros("$__timeFilter_ms(t)", ctx) == \
        "t >= fromUnixTimestamp64Milli(1666310400000) AND t <= fromUnixTimestamp64Milli(1666526400000)"
    assert interpolate_macros("$__dateFilter(d)", ctx) == "d >= toDate('2022-10-21') AND d <= toDate('2022-10-23')"
    assert interpolate_macros("$__timeInterval(t)", ctx) == "toStartOfInterval(toDateTime(t), INTERVAL 20 second)"
    assert interpolate_macros("$__timeInterval_ms(t)", ctx) == \
        "toStartOfInterval(toDateTime64(t, 3), INTERVAL 20000 millisecond)"
    assert interpolate_macros("$__interval_s", QueryContext(r, 300)) == "1"  # at least one second
    # No argument list unless `(` follows the name; nested brackets stay in the argument.
    assert interpolate_macros("x >= $__fromTime AND f(y)", ctx) == "x >= toDateTime(1666310400) AND f(y)"
    assert interpolate_macros("$__timeFilter(toDateTime(a, 'UTC'))", ctx).startswith("toDateTime(a, 'UTC') >= ")

    loc = Variable("loc", (ALL,), ("Berlin", "Hanoi"))
    sql = "WHERE $__conditionalAll(location IN (${loc:singlequote}), $loc)"
    assert apply_conditional_all(sql, {"loc": loc}) == "WHERE 1=1"
    picked = Variable("loc", ("O'Hare", "Hanoi"), ("O'Hare", "Hanoi", "Hue"))
    kept = apply_conditional_all(sql, {"loc": picked})
    assert kept == "WHERE location IN (${loc:singlequote})"
    assert replace_variables(kept, {"loc": picked}, {}) == "WHERE location IN ('O\\'Hare','Hanoi')"
    # The plugin's own format: arrays joined and quoted, single values bare.
    assert replace_variables("IN ($loc)", {"loc": picked}, {}) == "IN ('O'Hare','Hanoi')"
    # Grafana's interval: 24 h over 288 points rounds to 5 minutes; the min interval raises it.
    assert calculate_interval_ms(FULL_DAY, 288, "1m") == 300_000
    assert calculate_interval_ms(TimeRange(DAY_START, DAY_START.replace(hour=18)), 288, "1m") == 60_000


# ---------------------------------------------------------------- models


def test_dashboard_json_round_trips_through_the_sdk_models(models: dict[str, Any]) -> None:
    """The SDK offers no schema validator: parsing into its typed models (panels, options, field
    config, variables; ClickHouse targets via our registered variant) and encoding back must give
    the same JSON. The SDK types annotation targets as the built-in Grafana source only, so those
    are checked through ClickHouseQuery instead."""
    register()
    for uid, model in models.items():
        parsed = DashboardModel.from_json(model)
        for panel in parsed.panels or []:
            targets = panel.targets or []
            assert all(isinstance(t, ClickHouseQuery | PrometheusQuery) for t in targets), (uid, panel.title)
        again = _plain(parsed)
        expected = copy.deepcopy(model)
        for a, b in zip(again["annotations"]["list"], expected["annotations"]["list"], strict=True):
            assert _plain(ClickHouseQuery.from_json(b["target"])) == b["target"]
            a.pop("target"), b.pop("target")
        assert again == expected, uid


def _plain(obj: Any) -> Any:
    return json.loads(json.dumps(obj, cls=JSONEncoder))


def test_every_datasource_reference_is_provisioned(models: dict[str, Any]) -> None:
    from yaml_subset import load

    files = render()
    uids = {(d["type"], d["uid"]) for f in (DATASOURCE_FILE, PROMETHEUS_FILE) for d in load(files[f])["datasources"]}
    assert uids == {(PLUGIN_ID, DATASOURCE_UID), (PROMETHEUS_TYPE, PROMETHEUS_UID)}

    def refs(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            if isinstance(node.get("datasource"), dict):
                yield node["datasource"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    found = [r for m in models.values() for r in refs(m)]
    assert found and all((r.get("type"), r.get("uid")) in uids for r in found)


def test_queries_read_deduplicated_tables_with_final_and_filter_on_the_sorting_key(models: dict[str, Any]) -> None:
    """Re-emitted windows and redelivered events must never count twice (FINAL), and aggregate/raw
    reads start with a predicate on the first sorting-key column (time) so granules are pruned."""
    dedup = (r"(agg_\w+|raw_\w+|network_outages|late_events|incidents|incident_acks|rollup_\w+|deadletters"
             r"|stream_checkpoints)")
    problems = []
    for model in models.values():
        sqls = [(p["title"], t["rawSql"]) for p in model["panels"] for t in sql_targets(p)]
        sqls += [(a["name"], a["target"]["rawSql"]) for a in model["annotations"]["list"]]
        for title, sql in sqls:
            for m in re.finditer(rf"\b(FROM|JOIN)\s+{dedup}\b(\s+AS\s+\w+)?(\s+FINAL)?", sql):
                if not m.group(4):
                    problems.append(f"{title}: {m.group(2)} read without FINAL")
            if re.search(r"\bagg_\w+", sql) and "window_start" not in sql:
                problems.append(f"{title}: aggregate read without a window_start predicate")
            if re.search(r"\braw_\w+", sql) and "event_time" not in sql:
                problems.append(f"{title}: raw read without an event_time predicate")
    assert not problems, "\n".join(problems)


def test_thresholds_come_from_the_scenario_targets(models: dict[str, Any]) -> None:
    targets = Targets.from_scenario("default")
    panel = next(p for p in models[wall.UID]["panels"] if p["title"] == "Online applications today")
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1] == {"value": targets.online_application, "color": "green"}
    # A different target file gives a different threshold, with no edit to the dashboard code.
    custom = catalog.dashboard_models(Targets(**{**targets.__dict__, "online_application": 0.9}))
    panel = next(p for p in custom[wall.UID]["panels"] if p["title"] == "Online applications today")
    assert panel["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == 0.9


def test_wall_is_a_dark_kiosk_screen_refreshed_every_10_s(models: dict[str, Any]) -> None:
    model = models[wall.UID]
    assert (model["refresh"], model["style"], model["timezone"]) == ("10s", "dark", "Asia/Ho_Chi_Minh")
    assert model["time"] == {"from": "now/d", "to": "now"} and model["editable"] is False
    big = [p for p in model["panels"] if p["type"] == "stat"]
    assert big and all(p["options"]["text"]["valueSize"] >= 48 for p in big)
    playlist = catalog.playlist_model()
    assert playlist["items"][0]["value"] == wall.UID
    assert {i["value"] for i in playlist["items"]} == {wall.UID, "ioc-service-centers", "ioc-filings", "ioc-network",
                                                         "ioc-service-index"}
    assert len({p["id"] for p in model["panels"]}) == len(model["panels"])
    for model in models.values():
        titles = [p["title"] for p in model["panels"]]
        assert len(set(titles)) == len(titles), model["uid"]


def test_committed_export_is_up_to_date() -> None:
    """deploy/grafana is what docker-compose mounts: it must be what the code exports now
    (regenerate with `ioc dashboards export --out deploy/grafana`)."""
    stale = [str(path) for path, content in render().items()
             if (REPO / "deploy/grafana" / path).read_text(encoding="utf-8") != content]
    assert not stale, f"stale export, run `ioc dashboards export --out deploy/grafana`: {stale}"
