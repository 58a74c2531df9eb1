"""The morning briefing against the real engine: the session's simulated day (conftest `day_dsn`).

Every figure the page shows is recomputed here with independent SQL, mostly over the raw events
(raw_* FINAL, days as toDate(..., 'Asia/Ho_Chi_Minh')) where the briefing reads the daily rollups,
the window aggregates and UTC ranges; then the page must show it, formatted in each language.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from clickhouse_connect.driver.client import Client

from briefing import figures as fig
from briefing.data import BriefingData, FilingTotals, load_briefing_data
from briefing.i18n import NBSP, TEXT, Lang
from briefing.render import Names, render_page

DAY = date(2025, 7, 14)  # the simulated day; the briefing dated 2025-07-15 covers it
TZ = "Asia/Ho_Chi_Minh"
LOCAL = ZoneInfo(TZ)
GENERATED = datetime(2025, 7, 15, 0, 0, tzinfo=UTC)  # 07:00 in Vietnam
SKETCH_REL_ERROR = 0.0079  # streams/sketch.py: a bucket's representative is within 0.78 % of its values
LANGS = ("vi", "en")


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def data(client: Client) -> BriefingData:
    return load_briefing_data(client, DAY)


@pytest.fixture(scope="module")
def pages(data: BriefingData, targets: dict[str, float]) -> dict[str, str]:
    return {lang: render_page(data, Lang(lang), targets, generated=GENERATED) for lang in LANGS}


def sql(client: Client, query: str, day: date = DAY, **params: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in client.query(query, parameters={"day": day.isoformat(), **params}).result_rows]


class Sections(HTMLParser):
    """Text of each data-section, its tables (rows of cell texts) and its data-kpi / data-figure blocks."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.text: dict[str, list[str]] = {}
        self.tables: dict[str, list[list[list[str]]]] = {}
        self.blocks: dict[str, list[str]] = {}  # data-kpi or data-figure -> text
        self._section = ""
        self._open_blocks: list[tuple[str, int]] = []
        self._depth = 0
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and a.get("data-section"):
            self._section = a["data-section"] or ""
            self.text[self._section], self.tables[self._section] = [], []
        if tag == "div":
            self._depth += 1
            key = a.get("data-kpi") or a.get("data-figure")
            if key:
                self.blocks[key] = []
                self._open_blocks.append((key, self._depth))
        if tag == "table" and self._section:
            self.tables[self._section].append([])
        elif tag == "tr" and self._section:
            self.tables[self._section][-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._section:
            self.tables[self._section][-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "section":
            self._section = ""
        elif tag == "div":
            if self._open_blocks and self._open_blocks[-1][1] == self._depth:
                self._open_blocks.pop()
            self._depth -= 1

    def handle_data(self, text: str) -> None:
        if self._cell is not None:
            self._cell.append(text)
        if self._section:
            self.text[self._section].append(text)
        for key, _ in self._open_blocks:
            self.blocks[key].append(text)

    def section_text(self, name: str) -> str:
        return " ".join(" ".join(self.text[name]).split())

    def block(self, key: str) -> str:
        return " ".join(" ".join(self.blocks[key]).split())

    def rows(self, section: str, table: int = 0) -> list[list[str]]:
        return self.tables[section][table][1:]  # without the header row


def normal(text: str) -> str:
    """Collapse whitespace as the parser does (NBSP is whitespace to str.split)."""
    return " ".join(text.split())


# ---------------------------------------------------------------- formatting


def test_number_and_date_formats_per_language() -> None:
    vi, en = Lang("vi"), Lang("en")
    assert vi.percent(0.6146) == f"61,46{NBSP}%" and en.percent(0.6146) == "61.46%"
    assert vi.integer(8300) == "8.300" and en.integer(8300) == "8,300"
    assert vi.decimal(1234.5) == "1.234,5" and en.decimal(1234.5) == "1,234.5"
    assert vi.points(-0.0611) == f"−6,11{NBSP}điểm" and en.points(0.0241) == f"+2.41{NBSP}pts"
    assert vi.points(-0.00001) == f"±0,00{NBSP}điểm"  # a change that rounds to zero has no sign
    assert vi.day(DAY) == "Thứ Hai, 14/07/2025" and en.day(DAY) == "Monday 14 July 2025"
    assert vi.percent(None) == en.integer(None) == "–"
    with pytest.raises(ValueError, match="unknown language"):
        Lang("fr")
    assert all(len(pair) == 2 for pair in TEXT.values())
    assert all(all(pair) for key, pair in TEXT.items() if not key.startswith("center_en"))  # no label left empty


# ---------------------------------------------------------------- headline KPIs


RAW_FILINGS = f"""
SELECT
    countIf(kind = 'submitted'), countIf(kind = 'submitted' AND channel != 'in_person'),
    countIf(kind = 'submitted' AND paid_online), countIf(kind = 'submitted' AND digitised),
    countIf(kind = 'submitted' AND reused_data), countIf(kind = 'processed'),
    countIf(kind = 'processed' AND on_time), countIf(kind = 'processed' AND NOT on_time),
    countIf(kind = 'result_issued'), countIf(kind = 'result_issued' AND electronic), countIf(kind = 'rejected')
FROM raw_filings FINAL
WHERE toDate(event_time, '{TZ}') = {{day:Date}}
"""


def test_headline_kpis_equal_the_raw_events(client: Client, data: BriefingData, pages: dict[str, str],
                                            targets: dict[str, float]) -> None:
    raw = FilingTotals(*sql(client, RAW_FILINGS)[0])
    assert data.day.filings == raw
    assert raw.submitted > 1000 and raw.processed > 1000  # the fixture is a real day
    rates = raw.rates()
    for lang in LANGS:
        page, lg = Sections(pages[lang]), Lang(lang)
        for key in fig.HEADLINE:
            card = page.block(key)
            assert normal(lg.percent(rates[key])) in card, (lang, key, card)
            assert normal(lg.percent(targets[key])) in card
            assert normal(lg.points(rates[key] - targets[key])) in card  # type: ignore[operator]
            assert normal(f"{lg.t('week_before')}: {lg.t('no_data')}") in card  # no data a week earlier
        assert page.block("dossiers_received").endswith(lg.integer(raw.submitted))
        assert page.block("dossiers_processed").endswith(lg.integer(raw.processed))
        assert page.block("dossiers_rejected").endswith(lg.integer(raw.rejected))


def test_operations_kpis_equal_the_raw_events(client: Client, data: BriefingData, pages: dict[str, str],
                                              targets: dict[str, float]) -> None:
    (issued, called, abandoned, wait_sum, wait_p90_raw), = sql(client, f"""
        SELECT countIf(kind = 'issued'), countIf(kind = 'called'), countIf(kind = 'abandoned'),
               sumIf(wait_s, kind = 'called'),
               arrayElement(arraySort(groupArrayIf(wait_s, kind = 'called')),
                            toUInt64(floor(0.9 * (countIf(kind = 'called') - 1))) + 1)
        FROM raw_service_center FINAL WHERE toDate(event_time, '{TZ}') = {{day:Date}}""")
    (samples, up), = sql(client, f"""
        SELECT count(), countIf(link_up) FROM raw_network FINAL WHERE toDate(event_time, '{TZ}') = {{day:Date}}""")
    (sketch_p90,), = sql(client, f"""
        SELECT ioc_sketch_quantile(sumMap(wait_sketch), 0.9) FROM agg_service_center FINAL
        WHERE toDate(window_start, '{TZ}') = {{day:Date}}""")
    (outages,), = sql(client, f"""
        SELECT count() FROM network_outages FINAL WHERE toDate(`start`, '{TZ}') = {{day:Date}}""")
    s, n = data.day.service, data.day.network
    assert (s.issued, s.called, s.abandoned, s.wait_count) == (issued, called, abandoned, called)
    assert s.wait_sum_s == pytest.approx(wait_sum, rel=1e-12)
    assert s.wait_p90_s == sketch_p90 and s.wait_p90_s == pytest.approx(wait_p90_raw, rel=SKETCH_REL_ERROR)
    assert (n.samples, n.up_samples, n.outages) == (samples, up, outages)
    values = {"abandonment": abandoned / (abandoned + called), "mean_wait_min": wait_sum / called / 60,
              "availability": up / samples}
    for lang in LANGS:
        page, lg = Sections(pages[lang]), Lang(lang)
        assert normal(lg.percent(values["abandonment"])) in page.block("abandonment")
        assert normal(lg.minutes(values["mean_wait_min"])) in page.block("mean_wait_min")
        assert normal(lg.minutes(targets["mean_wait_min"])) in page.block("mean_wait_min")
        assert normal(lg.percent(values["availability"])) in page.block("availability")
        assert page.block("tickets_issued").endswith(lg.integer(issued))
        assert page.block("wait_p90").endswith(normal(lg.minutes(sketch_p90 / 60)))
        assert page.block("outages").endswith(lg.integer(outages))


# ---------------------------------------------------------------- communes and agencies


RAW_AGENCIES = f"""
SELECT f.agency_code, a.level, f.n_submitted, f.n_online, f.n_processed, f.n_on_time
FROM
(
    SELECT agency_code, countIf(kind = 'submitted') AS n_submitted,
           countIf(kind = 'submitted' AND channel != 'in_person') AS n_online,
           countIf(kind = 'processed') AS n_processed, countIf(kind = 'processed' AND on_time) AS n_on_time
    FROM raw_filings FINAL WHERE toDate(event_time, '{TZ}') = {{day:Date}}
    GROUP BY agency_code
) AS f
INNER JOIN dim_agencies AS a ON a.agency_code = f.agency_code
ORDER BY f.agency_code
"""


def expected_gaps(rows: list[tuple[Any, ...]], level: str, targets: dict[str, float]) -> dict[str, tuple[Any, ...]]:
    """code -> (submitted, online share, on-time share, gap, late) by the rule the page states in its note."""
    out = {}
    for code, lvl, submitted, online, processed, on_time in rows:
        if lvl != level:
            continue
        shares = {"online_application": online / submitted if submitted >= 5 else None,
                  "on_time": on_time / processed if processed >= 5 else None}
        judged = [max(0.0, targets[k] - v) for k, v in shares.items() if v is not None]
        out[code] = (submitted, shares["online_application"], shares["on_time"], sum(judged) if judged else None)
    return out


@pytest.mark.parametrize("level, section", [("commune", "communes"), ("province", "departments")])
def test_lagging_agencies_equal_the_raw_events(client: Client, data: BriefingData, pages: dict[str, str],
                                               targets: dict[str, float], level: str, section: str) -> None:
    raw = expected_gaps(sql(client, RAW_AGENCIES), level, targets)
    late = dict(sql(client, f"""SELECT agency_code, countIf(kind = 'processed' AND NOT on_time) FROM raw_filings FINAL
                                WHERE toDate(event_time, '{TZ}') = {{day:Date}} GROUP BY agency_code"""))
    ranked = sorted((c for c, v in raw.items() if v[3]), key=lambda c: (-raw[c][3], -late.get(c, 0), c))[: fig.TOP]
    shown = fig.lagging(data, level, targets)
    assert [s.day.code for s in shown] == ranked and len(ranked) == fig.TOP
    for s in shown:
        assert (s.day.submitted, s.online, s.on_time, s.gap) == pytest.approx(raw[s.day.code][:4])
    for lang in LANGS:
        lg, names = Lang(lang), Names(data.dims, Lang(lang))
        rows = Sections(pages[lang]).rows(section)
        assert rows == [[normal(x) for x in (names.agency(c), lg.integer(raw[c][0]), lg.percent(raw[c][1], 1),
                                             lg.percent(raw[c][2], 1), lg.pts(raw[c][3]))] for c in ranked]
        # nothing a week earlier to compare with: said plainly, with the date
        assert normal(lg.t("no_comparison", lg.short_day(DAY - timedelta(days=7)))) in \
            Sections(pages[lang]).section_text(section)


def test_agency_names_come_from_dim_agencies(client: Client, data: BriefingData) -> None:
    names = {code: (vi, en) for code, vi, en in sql(client, "SELECT agency_code, name, name_en FROM dim_agencies")}
    assert len(names) == 108
    for lang, i in (("vi", 0), ("en", 1)):
        n = Names(data.dims, Lang(lang))
        assert all(n.agency(code) == pair[i] for code, pair in names.items())


# ---------------------------------------------------------------- dossiers


RAW_OPEN = f"""
SELECT agency_code,
       countIf(toDate(due, '{TZ}') = {{day:Date}}) AS overdue,
       countIf(toDate(due, '{TZ}') = {{day:Date}} + 1) AS due_soon
FROM
(
    SELECT dossier_id, any(agency_code) AS agency_code, maxIf(due_time, kind = 'submitted') AS due,
           countIf(kind = 'submitted') AS submitted, countIf(kind IN ('processed', 'rejected')) AS closed
    FROM raw_filings FINAL
    WHERE toDate(event_time, '{TZ}') <= {{day:Date}}
    GROUP BY dossier_id
    HAVING submitted > 0 AND closed = 0
)
GROUP BY agency_code
"""


def test_late_and_due_dossiers_equal_the_raw_events(client: Client, data: BriefingData,
                                                    pages: dict[str, str]) -> None:
    late = {c: n for c, n in sql(client, f"""
        SELECT agency_code, countIf(kind = 'processed' AND NOT on_time) AS n FROM raw_filings FINAL
        WHERE toDate(event_time, '{TZ}') = {{day:Date}} GROUP BY agency_code HAVING n > 0""")}
    open_ = {c: (o, d) for c, o, d in sql(client, RAW_OPEN) if o or d}
    expected = {c: (late.get(c, 0), *open_.get(c, (0, 0))) for c in set(late) | set(open_)}
    rows = fig.late_rows(data)
    assert {r.code: (r.processed_late, r.overdue, r.due_soon) for r in rows} == expected
    totals = tuple(sum(v[i] for v in expected.values()) for i in range(3))
    assert fig.late_totals(rows) == totals
    # the simulated day: backlog dossiers processed late, none of its own fell due, tomorrow's are warned about
    assert totals[0] > 0 and totals[1] == 0 and totals[2] > 0
    top = sorted(expected, key=lambda c: (-(expected[c][0] + expected[c][1]), -expected[c][2], c))[: fig.TOP]
    for lang in LANGS:
        page, lg, names = Sections(pages[lang]), Lang(lang), Names(data.dims, Lang(lang))
        for key, total in zip(("processed_late", "became_overdue", "due_soon"), totals, strict=True):
            assert page.block(key).endswith(lg.integer(total))
        assert page.rows("dossiers") == [[normal(names.agency(c)), *(lg.integer(v) for v in expected[c])] for c in top]


# ---------------------------------------------------------------- service centers


def test_hotspots_equal_the_raw_events(client: Client, data: BriefingData, pages: dict[str, str]) -> None:
    raw = {c: (i, ca, a) for c, i, ca, a in sql(client, f"""
        SELECT center_id, countIf(kind = 'issued'), countIf(kind = 'called'), countIf(kind = 'abandoned')
        FROM raw_service_center FINAL WHERE toDate(event_time, '{TZ}') = {{day:Date}} GROUP BY center_id""")}
    sketch = dict(sql(client, f"""
        SELECT center_id, ioc_sketch_quantile(sumMap(wait_sketch), 0.9) AS p FROM agg_service_center FINAL
        WHERE toDate(window_start, '{TZ}') = {{day:Date}} GROUP BY center_id HAVING p IS NOT NULL"""))
    exact = dict(sql(client, f"""
        SELECT center_id, arrayElement(arraySort(groupArray(wait_s)), toUInt64(floor(0.9 * (count() - 1))) + 1)
        FROM raw_service_center FINAL WHERE kind = 'called' AND toDate(event_time, '{TZ}') = {{day:Date}}
        GROUP BY center_id"""))
    top = sorted(sketch, key=lambda c: (-sketch[c], -raw[c][2] / (raw[c][1] + raw[c][2]), c))[: fig.TOP]
    spots = fig.hotspots(data)
    assert [c.center_id for c in spots] == top and top[0] == "QNG-HCC"  # the surge at the provincial center
    for c in spots:
        assert (c.issued, c.called, c.abandoned) == raw[c.center_id]
        assert c.wait_p90_s == sketch[c.center_id]
        assert c.wait_p90_s == pytest.approx(exact[c.center_id], rel=SKETCH_REL_ERROR)
    for lang in LANGS:
        lg, names = Lang(lang), Names(data.dims, Lang(lang))
        assert Sections(pages[lang]).rows("hotspots") == [
            [normal(x) for x in (names.center(c), lg.integer(raw[c][0]), lg.minutes(sketch[c] / 60),
                                 lg.percent(raw[c][2] / (raw[c][1] + raw[c][2]), 1))] for c in top]
    assert Names(data.dims, Lang("vi")).center("QNG-HCC") == "Trung tâm Phục vụ hành chính công tỉnh Quảng Ngãi"


# ---------------------------------------------------------------- network


def test_network_incidents_and_sla_equal_sql(client: Client, data: BriefingData, pages: dict[str, str],
                                             targets: dict[str, float]) -> None:
    outages = sql(client, f"""
        SELECT node_id, toTimeZone(`start`, '{TZ}'), duration_s FROM network_outages FINAL
        WHERE toDate(`start`, '{TZ}') = {{day:Date}} OR toDate(`end`, '{TZ}') = {{day:Date}} ORDER BY `start`""")
    # a degradation: an incident of the loss rule on a node (not an outage, which network_outages has)
    degraded = sql(client, f"""
        SELECT subject, toTimeZone(`start`, '{TZ}'), dateDiff('second', `start`, `end`) / 60
        FROM incidents_current
        WHERE family = 'network' AND has(rules, 'loss_high') AND NOT has(rules, 'node_down')
          AND toDate(`start`, '{TZ}') = {{day:Date}}""")
    expected = sorted([(n, "outage", s.replace(tzinfo=None), d / 60) for n, s, d in outages]
                      + [(n, "degraded", s.replace(tzinfo=None), float(m)) for n, s, m in degraded],
                      key=lambda x: (x[2], x[0]))
    got = [(i.node_id, i.kind, i.start.astimezone(LOCAL).replace(tzinfo=None), i.duration_min)
           for i in data.incidents]
    assert got == expected
    # the default scenario's two network incidents, as the pipeline recorded them
    assert [(n, k, f"{s:%H:%M}", round(m)) for n, k, s, m in expected] == [
        ("N-000.05.00.H55", "outage", "10:00", 45), ("N-000.00.03.H55", "degraded", "14:00", 90)]
    per_node = {n: (s, u) for n, s, u in sql(client, f"""
        SELECT node_id, count(), countIf(link_up) FROM raw_network FINAL
        WHERE toDate(event_time, '{TZ}') = {{day:Date}} GROUP BY node_id""")}
    target = targets["availability"]
    meeting = sum(1 for s, u in per_node.values() if u / s >= target)
    below = sorted((u / s, n) for n, (s, u) in per_node.items() if u / s < target)
    hourly = {(n, h): v for n, h, v in sql(client, f"""
        SELECT node_id, toHour(event_time, '{TZ}'), countIf(link_up) / count() FROM raw_network FINAL
        WHERE toDate(event_time, '{TZ}') = {{day:Date}} AND node_id IN {{nodes:Array(String)}}
        GROUP BY node_id, toHour(event_time, '{TZ}')""", nodes=[e[0] for e in expected])}
    for node, series in data.hourly.node_availability.items():
        assert series == pytest.approx([hourly.get((node, h)) for h in range(24)], rel=1e-12)
    all_s, all_u = (sum(v[i] for v in per_node.values()) for i in range(2))
    for lang in LANGS:
        lg, names = Lang(lang), Names(data.dims, Lang(lang))
        page = Sections(pages[lang])
        text = page.section_text("network")
        assert normal(lg.t("sla_line", lg.percent(target), meeting, len(per_node), lg.percent(all_u / all_s))) in text
        assert normal(lg.t("below_sla", ", ".join(f"{n} ({lg.percent(a)})" for a, n in below))) in text
        assert page.rows("network") == [
            [node, normal(lg.t(f"kind_{kind}")), f"{start:%H:%M}", normal(lg.minutes(minutes, 0)),
             names.affected(node), normal(lg.percent(per_node[node][1] / per_node[node][0]))]
            for node, kind, start, minutes in expected]
    assert Names(data.dims, Lang("vi")).affected("N-000.05.00.H55") == "Phường 05"  # dim_nodes -> dim_communes
    assert Names(data.dims, Lang("en")).affected("N-000.00.03.H55") == "Department of Justice"
    assert Names(data.dims, Lang("vi")).affected("CORE-01") == "toàn tỉnh"


# ---------------------------------------------------------------- incidents of the day


def test_incidents_of_the_day_equal_sql(client: Client, data: BriefingData, pages: dict[str, str]) -> None:
    """One row per incident open during the day (not one per breaching window), with its duration and
    impact; the simulated Monday has its node outage, degraded link, queue surge and portal outage."""
    rows = sql(client, f"""
        SELECT severity, title, toTimeZone(`start`, '{TZ}'), toTimeZone(`end`, '{TZ}'), length(subjects),
               length(communes), family
        FROM incidents_current
        WHERE toDate(`start`, '{TZ}') <= {{day:Date}} AND (`end` IS NULL OR toDate(`end`, '{TZ}') >= {{day:Date}})
        ORDER BY indexOf(['critical', 'warning', 'info'], severity), `start`, incident_id""")
    assert [(i.severity, i.title, i.subjects, i.communes) for i in data.day_incidents] == [
        (r[0], r[1], r[4], r[5]) for r in rows]
    assert {r[6] for r in rows} == {"network", "service_center", "filings"}
    shown = rows[: fig.MAX_INCIDENT_ROWS]  # the most severe first; the rest are counted in the note
    hours = sum(((r[3] or r[2]) - r[2]).total_seconds() for r in rows) / 3600
    critical = sum(1 for r in rows if r[0] == "critical")
    for lang in LANGS:
        lg = Lang(lang)
        page = Sections(pages[lang])
        got = page.rows("day_incidents")
        assert [row[:3] for row in got] == [
            [lg.severity(r[0]), normal(r[1]), f"{r[2]:%H:%M}–" + (f"{r[3]:%H:%M}" if r[3] else lg.t("still_open"))]
            for r in shown]
        assert [row[4] for row in got] == [normal(lg.t("impact", lg.integer(r[4]), lg.integer(r[5]))) for r in shown]
        if len(rows) > len(shown):
            assert normal(lg.t("more_incidents", len(rows) - len(shown))) in page.section_text("day_incidents")
        assert normal(lg.t("incidents_total", lg.integer(len(rows)), lg.integer(critical), lg.decimal(hours, 1))) \
            in page.section_text("day_incidents")


# ---------------------------------------------------------------- charts


def test_hourly_charts_equal_the_raw_events(client: Client, data: BriefingData, pages: dict[str, str]) -> None:
    filings = {h: (o, p) for h, o, p in sql(client, f"""
        SELECT toHour(event_time, '{TZ}') AS h, countIf(channel != 'in_person'), countIf(channel = 'in_person')
        FROM raw_filings FINAL WHERE kind = 'submitted' AND toDate(event_time, '{TZ}') = {{day:Date}} GROUP BY h""")}
    availability = dict(sql(client, f"""
        SELECT toHour(event_time, '{TZ}') AS h, countIf(link_up) / count() FROM raw_network FINAL
        WHERE toDate(event_time, '{TZ}') = {{day:Date}} GROUP BY h"""))
    wait = dict(sql(client, f"""
        SELECT toHour(event_time, '{TZ}') AS h,
               arrayElement(arraySort(groupArray(wait_s)), toUInt64(floor(0.9 * (count() - 1))) + 1)
        FROM raw_service_center FINAL WHERE kind = 'called' AND toDate(event_time, '{TZ}') = {{day:Date}}
        GROUP BY h"""))
    open_hours: dict[int, list[int]] = {}  # per local hour: critical, other incidents open during it
    start, end = data.day.window.start, data.day.window.end
    for i in data.day_incidents:
        first = max(i.start, start).astimezone(ZoneInfo(TZ)).hour
        last = (min(i.end or end, end) - timedelta(milliseconds=1)).astimezone(ZoneInfo(TZ)).hour
        for hour in range(first, last + 1):
            open_hours.setdefault(hour, [0, 0])[0 if i.severity == "critical" else 1] += 1
    h = data.hourly
    assert list(zip(h.filings_online, h.filings_in_person, strict=True)) == [filings.get(i, (0, 0)) for i in range(24)]
    assert list(h.availability) == pytest.approx([availability.get(i) for i in range(24)], rel=1e-12)
    assert [v is None for v in h.wait_p90_s] == [i not in wait for i in range(24)]
    for i, v in enumerate(h.wait_p90_s):
        if v is not None:
            assert v == pytest.approx(wait[i], rel=SKETCH_REL_ERROR)
    assert [list(p) for p in zip(h.incidents_critical, h.incidents_other, strict=True)] == [
        open_hours.get(i, [0, 0]) for i in range(24)]
    for lang in LANGS:  # each bar and point carries its figure in a <title>
        lg, page = Lang(lang), pages[lang]
        for i, (o, p) in filings.items():
            assert f"<title>{i:02d}:00 · {lg.t('online')} {lg.integer(o)} · {lg.t('in_person')} {lg.integer(p)}" \
                   f"</title>" in page
        for i, a in availability.items():
            assert f"<title>{i:02d}:00 · {lg.percent(a)}</title>" in page


# ---------------------------------------------------------------- languages and the page


def test_both_languages_render_with_their_own_words(pages: dict[str, str]) -> None:
    vi, en = pages["vi"], pages["en"]
    assert '<html lang="vi">' in vi and '<html lang="en">' in en and '<meta charset="utf-8">' in vi
    for text in ("Bản tin sáng IOC", "Thứ Hai, 14/07/2025", "Nộp hồ sơ trực tuyến", "Thanh toán trực tuyến",
                 "Số hóa hồ sơ", "Giải quyết đúng hạn", "Trả kết quả điện tử", "Tái sử dụng dữ liệu số",
                 "Xã, phường chậm nhất", "Sở, ngành chậm nhất", "Hồ sơ trễ hạn và sắp đến hạn", "Sự cố mạng và SLA",
                 "Sự cố trong ngày", "Quảng Ngãi", "Mất kết nối", "Nghiêm trọng", "Sở Tư pháp"):
        assert text in vi, text
    for text in ("IOC morning briefing", "Monday 14 July 2025", "Online applications", "Processed on time",
                 "Communes lagging most", "Departments lagging most", "Network incidents and SLA",
                 "Incidents of the day", "Quang Ngai", "Link down", "Critical", "Department of Justice"):
        assert text in en, text
    # numbers in each language's convention, never the other's
    assert re.search(r"\d+,\d\d\u00a0%", vi) and not re.search(r"\d\.\d\d%", vi)
    assert re.search(r"\d+\.\d\d%", en) and not re.search(r"\d,\d\d\u00a0%", en)
    for page in (vi, en):
        assert not re.search(r"\b(None|nan|NaN|inf)\b", page)
        assert "@page" in page and "size: A4 portrait" in page and "<script" not in page
        assert page.count("<svg") >= 4 + 2  # four charts and a sparkline per incident


def test_a_day_without_data_gives_a_no_data_page(client: Client, targets: dict[str, float]) -> None:
    empty = load_briefing_data(client, date(2025, 8, 1))
    assert not empty.has_data
    vi = render_page(empty, Lang("vi"), targets, generated=GENERATED)
    en = render_page(empty, Lang("en"), targets, generated=GENERATED)
    assert "Không có dữ liệu cho ngày 01/08/2025" in vi and "No data for 2025-08-01" in en
    for page in (vi, en):
        assert 'data-nodata="2025-08-01"' in page and "data-section" not in page and "<svg" not in page


def test_ioc_briefing_command_writes_the_page(day_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from ioc.cli import main

    out = tmp_path / "b" / "briefing.html"
    assert main(["briefing", "--date", "2025-07-15", "--lang", "vi", "--clickhouse", day_dsn, "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    html = out.read_text(encoding="utf-8")
    assert "Số liệu ngày Thứ Hai, 14/07/2025" in html and 'data-section="day_incidents"' in html


def test_ioc_briefing_explains_a_store_without_the_schema(client: Client, chdb_store: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from ioc.cli import main

    client.command("CREATE DATABASE IF NOT EXISTS briefing_unmigrated")
    try:
        code = main(["briefing", "--date", "2025-07-15", "--clickhouse", f"chdb://{chdb_store}?database="
                     "briefing_unmigrated", "--out", str(tmp_path / "x.html")])
    finally:
        client.command("DROP DATABASE IF EXISTS briefing_unmigrated")
    assert code == 2 and "run `ioc db migrate`" in capsys.readouterr().err
    assert not (tmp_path / "x.html").exists()
