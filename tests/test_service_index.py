"""The Decision 766 service index: stored by the rollups, equal to an independent computation in pandas
from the raw events of a simulated week, per agency, commune and province, per day and month-to-date."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from clickhouse_connect.driver.client import Client

from models.reference import province_reference
from models.service_index import load_index_weights
from models.settings import Settings
from simulators.generate import generate
from sinks.client import connect
from sinks.migrate import migrate
from sinks.rollups import refresh_rollups
from sinks.writer import ClickHouseWriter
from streams.pipeline import process_tables

WEEK = date(2025, 7, 14)  # Monday to Sunday
SETTINGS = Settings()


@pytest.fixture(scope="module")
def week() -> dict[str, pd.DataFrame]:
    tables = generate("default", WEEK, 24 * 7, seed=3, families=["filings", "service_center"])
    return {name: t.to_pandas() for name, t in tables.items()} | {"_arrow": tables}  # type: ignore[dict-item]


@pytest.fixture(scope="module")
def index_client(chdb_store: Path, week: dict) -> Iterator[Client]:
    dsn = f"chdb://{chdb_store}?database=service_index_week"
    migrate(dsn, SETTINGS)
    with ClickHouseWriter(dsn, SETTINGS) as writer:
        for out in process_tables(week["_arrow"], SETTINGS):
            writer.add_many([(t, rows) for t, rows in out.rows if rows.num_rows])
        writer.flush()
    client = connect(dsn, SETTINGS)
    refresh_rollups(client)
    try:
        yield client
    finally:
        client.command("DROP DATABASE IF EXISTS service_index_week")
        client.close()


def local_day(times: pd.Series) -> pd.Series:
    return (times.dt.tz_convert("Asia/Ho_Chi_Minh")).dt.date


def counts_from_raw(week: dict) -> pd.DataFrame:
    """Per (day, unit_level, unit_code): the counts the index rests on, straight from the events."""
    ref = province_reference("QNG")
    agencies = ref.agencies.to_pandas()[["agency_code", "level", "commune_code", "province_code"]]
    centers = ref.centers.to_pandas()[["center_id", "level", "commune_code"]]
    f = week["filings"].copy()
    f["day"] = local_day(f["event_time"])
    sub, proc, res = f.kind == "submitted", f.kind == "processed", f.kind == "result_issued"
    f["submitted"] = sub
    f["submitted_online"] = sub & (f.channel != "in_person")
    for flag in ("paid_online", "digitised", "reused_data"):
        f[flag] = sub & f[flag].fillna(False).astype(bool)
    f["processed"], f["on_time"] = proc, proc & (f.on_time.fillna(False).astype(bool))
    f["result_issued"], f["electronic"] = res, res & f.electronic.fillna(False).astype(bool)
    cols = ["submitted", "submitted_online", "paid_online", "digitised", "reused_data", "processed", "on_time",
            "result_issued", "electronic"]
    f = f.drop(columns=["level"]).merge(agencies, on="agency_code")
    s = week["service_center"]
    s = s[s.rating.notna()].copy()
    s["day"] = local_day(s["event_time"])
    s = s.merge(centers, on="center_id")
    s["commune_code"] = s.commune_code.fillna("")
    ratings = s.groupby(["day", "level", "commune_code"]).rating.agg(["count", "sum"]).reset_index()
    agencies["commune_code"] = agencies.commune_code.fillna("")
    f["commune_code"] = f.commune_code.fillna("")
    parts = []
    for level, key, rows in (("agency", "agency_code", f), ("commune", "commune_code", f[f.level == "commune"]),
                             ("province", "province_code", f)):
        g = rows.groupby(["day", key])[cols].sum().reset_index().rename(columns={key: "unit_code"})
        parts.append(g.assign(unit_level=level))
    by_agency = ratings.merge(agencies, on=["level", "commune_code"])
    for level, key, rows in (("agency", "agency_code", by_agency),
                             ("commune", "commune_code", ratings[ratings.level == "commune"]),
                             ("province", None, ratings.assign(unit="QNG"))):
        g = rows.groupby(["day", key or "unit"])[["count", "sum"]].sum().reset_index()
        parts.append(g.rename(columns={key or "unit": "unit_code", "count": "rating_count", "sum": "rating_sum"})
                     .assign(unit_level=level))
    out = pd.concat(parts).fillna(0).groupby(["day", "unit_level", "unit_code"]).sum().reset_index()
    return out


def score(c: pd.DataFrame) -> pd.DataFrame:
    """The index of models/service_index.toml, written out again by hand."""
    def share(num: str, den: str) -> pd.Series:
        return (c[num] / c[den]).where(c[den] > 0)

    shares = {"electronic_results": share("electronic", "result_issued"), "on_time": share("on_time", "processed"),
              "online_application": share("submitted_online", "submitted"),
              "online_payment": share("paid_online", "submitted"),
              "satisfaction": ((c.rating_sum / c.rating_count - 1) / 3).where(c.rating_count > 0),
              "digitised": share("digitised", "submitted"), "reused_data": share("reused_data", "submitted")}
    out = c[["period", "day", "unit_level", "unit_code"]].copy()
    got, possible = 0.0, 0.0
    for g in load_index_weights().groups:
        num = sum(w * shares[s].fillna(0) for s, w in g.parts)
        den = sum(w * shares[s].notna() for s, w in g.parts)
        out[g.name] = (g.points * num / den).where(den > 0)
        got = got + out[g.name].fillna(0)
        possible = possible + g.points * out[g.name].notna()
    out["total"] = (100 * got / possible).where(possible > 0)
    return out


def expected_index(week: dict) -> pd.DataFrame:
    daily = counts_from_raw(week)
    mtd = []
    for day in sorted(daily.day.unique()):
        month = daily[(daily.day <= day) & (pd.to_datetime(daily.day).dt.month == pd.Timestamp(day).month)]
        mtd.append(month.drop(columns="day").groupby(["unit_level", "unit_code"]).sum().reset_index().assign(day=day))
    both = pd.concat([daily.assign(period="day"), pd.concat(mtd).assign(period="mtd")])
    return score(both)


def test_stored_index_equals_the_one_computed_from_raw_events(index_client: Client, week: dict) -> None:
    expected = expected_index(week).set_index(["period", "day", "unit_level", "unit_code"]).sort_index()
    stored = index_client.query_df("SELECT period, day, unit_level, unit_code, transparency, progress, online, "
                                   "satisfaction, digitisation, total FROM service_index")
    stored["day"] = pd.to_datetime(stored.day).dt.date
    stored = stored.set_index(["period", "day", "unit_level", "unit_code"]).sort_index()
    assert set(stored.index.get_level_values("unit_level")) == {"agency", "commune", "province"}
    assert len(set(stored.index.get_level_values("day"))) == 7
    assert stored.index.equals(expected.index)
    for column in ("transparency", "progress", "online", "satisfaction", "digitisation", "total"):
        a, b = stored[column].to_numpy(float), expected[column].to_numpy(float)
        assert np.array_equal(np.isnan(a), np.isnan(b)), column
        assert np.allclose(a[~np.isnan(a)], b[~np.isnan(b)], rtol=1e-9), column


def test_ranking_and_recomputation_are_idempotent(index_client: Client) -> None:
    sql = ("SELECT period, day, unit_level, unit_code, total, rank, units FROM service_index "
           "ORDER BY period, day, unit_level, unit_code")
    before = index_client.query(sql).result_rows
    refresh_rollups(index_client)  # again: the latest computation replaces, nothing doubles
    assert index_client.query(sql).result_rows == before
    province = [r for r in before if r[2] == "province"]
    assert len(province) == 14 and all(r[5] == 1 and r[6] == 1 for r in province)
    day = [r for r in before if r[0] == "day" and r[1] == WEEK and r[2] == "commune"]
    ranked = sorted(day, key=lambda r: r[5])
    assert ranked[0][5] == 1 and all(a[4] >= b[4] for a, b in itertools.pairwise(ranked))


def test_bad_weights_are_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "w.toml"
    path.write_text("[groups.progress]\npoints = 20\nparts = { on_time = 1.0 }\n")
    with pytest.raises(ValueError, match="must be exactly transparency"):
        load_index_weights(path)
    good = load_index_weights().source.read_text()
    path.write_text(good.replace("on_time = 1.0", "on_tme = 1.0"))
    with pytest.raises(ValueError, match="unknown share 'on_tme'"):
        load_index_weights(path)
    assert load_index_weights().points == 100
