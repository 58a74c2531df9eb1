"""The page: one HTML template for both languages, every label from `briefing.i18n`, charts inline SVG.

One A4 portrait page (CSS @page, print styles): leaders print it or save it as PDF. Everything the page
needs is inside the file (no fonts, scripts or images to fetch), so it opens offline and in a mail.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from html import escape
from string import Template

from briefing import figures as fig
from briefing import svg
from briefing.data import TZ, BriefingData, Dimensions, Incident
from briefing.i18n import DASH, NBSP, Lang

BAD, NEAR = "#c0392b", "#d68910"  # critical / below target, and warning / near it (as the CSS classes)
ONLINE_COLOR, IN_PERSON_COLOR, LINE_COLOR = "#2e86c1", "#aab7c4", "#884ea0"

PAGE = Template("""<!DOCTYPE html>
<html lang="$lang">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>$css</style>
</head>
<body>
<main class="page">
$body
</main>
</body>
</html>
""")

CSS = """
@page { size: A4 portrait; margin: 7mm 8mm; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; background: #e9edf1; color: #1f2d3a;
       font: 8pt/1.2 "Segoe UI", Arial, "Liberation Sans", "DejaVu Sans Condensed", "Noto Sans", sans-serif; }
.page { width: 210mm; min-height: 297mm; margin: 0 auto; padding: 7mm 8mm; background: #fff; }
@media print {
  body { background: #fff; }
  .page { width: auto; min-height: 0; margin: 0; padding: 0; }
  section, .card, table { break-inside: avoid; }
}
header { display: flex; justify-content: space-between; align-items: flex-end;
         border-bottom: 2px solid #1a5276; padding-bottom: 1.5mm; margin-bottom: 2mm; }
h1 { font-size: 14pt; margin: 0; color: #1a5276; }
header .sub { font-size: 8.5pt; color: #34495e; }
header .meta { text-align: right; font-size: 8pt; }
header .meta strong { font-size: 10pt; }
h2 { font-size: 8.5pt; margin: 1.6mm 0 0.6mm; color: #1a5276; text-transform: uppercase; letter-spacing: 0.02em; }
.cards { display: grid; grid-template-columns: repeat(6, minmax(0, 1fr)); gap: 1.5mm; }
.card { border: 1px solid #d5dbe1; border-top: 3px solid #6c7a89; border-radius: 1mm; padding: 1mm 1.5mm; }
.card.ok { border-top-color: #1e8449; } .card.near { border-top-color: #d68910; }
.card.bad { border-top-color: #c0392b; }
.card .label { font-size: 7.5pt; color: #34495e; }
.card .value { font-size: 13pt; font-weight: bold; line-height: 1.15; }
.card .line { font-size: 7pt; line-height: 1.15; color: #4a5561; }
.volumes { grid-column: span 3; border: 1px solid #d5dbe1; border-radius: 1mm; padding: 1mm 1.5mm;
           display: grid; grid-template-columns: 1fr 1fr; gap: 0.5mm 3mm; align-content: center; }
.volumes div { display: flex; justify-content: space-between; font-size: 7.5pt; }
.volumes b { font-size: 10pt; }
.charts { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 2mm; }
.charts figure { margin: 0; }
.charts figcaption { font-size: 7.5pt; color: #34495e; margin-bottom: 0.5mm; }
.legend { display: block; min-height: 1.2em; font-size: 6.5pt; }
.legend i { display: inline-block; width: 2mm; height: 2mm; margin: 0 0.6mm 0 0; vertical-align: middle; }
.legend i ~ i { margin-left: 1.5mm; }
svg.chart { width: 100%; height: auto; display: block; }
svg.spark { width: 30mm; height: 4mm; vertical-align: middle; margin-left: 1mm; }
.two { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 4mm; }
table { width: 100%; border-collapse: collapse; font-size: 7.2pt; }
th { text-align: left; font-weight: 600; color: #34495e; border-bottom: 1px solid #aab7c4; padding: 0.3mm 0.8mm; }
td { border-bottom: 1px solid #eef1f4; padding: 0.15mm 0.8mm; vertical-align: middle; }
td.n, th.n { text-align: right; white-space: nowrap; }
.note { font-size: 7.2pt; color: #4a5561; margin: 0.8mm 0; }
.empty { font-size: 7.5pt; color: #6c7a89; font-style: italic; margin: 0.8mm 0; }
.big { display: grid; grid-template-columns: repeat(3, 1fr); gap: 1.5mm; margin-bottom: 1mm; }
.big div { border: 1px solid #d5dbe1; border-radius: 1mm; padding: 0.6mm 1.2mm; font-size: 7pt;
           display: flex; justify-content: space-between; align-items: center; gap: 1mm; }
.big b { font-size: 13pt; }
.good { color: #1e8449; } .bad { color: #c0392b; } .near { color: #d68910; } .muted { color: #6c7a89; }
.sev-critical { color: #c0392b; font-weight: 600; } .sev-warning { color: #d68910; }
footer { margin-top: 2mm; border-top: 1px solid #d5dbe1; padding-top: 1mm; font-size: 7pt; color: #6c7a89; }
.nodata { margin-top: 40mm; text-align: center; }
.nodata h2 { font-size: 16pt; text-transform: none; }
.nodata p { font-size: 10pt; color: #4a5561; max-width: 140mm; margin: 3mm auto; }
"""


def _e(text: object) -> str:
    return escape(str(text))


def _table(headers: Sequence[tuple[str, bool]], rows: Iterable[Sequence[str]]) -> str:
    """headers: (label, numeric); cells are already-escaped HTML."""
    head = "".join(f'<th class="n">{_e(h)}</th>' if n else f"<th>{_e(h)}</th>" for h, n in headers)
    body = "".join("<tr>" + "".join(f'<td class="n">{c}</td>' if headers[i][1] else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(name: str, title: str, inner: str) -> str:
    """A titled block; data-section lets tests (and readers of the HTML) find it."""
    return f'<section data-section="{name}"><h2>{_e(title)}</h2>{inner}</section>'


def _empty(text: str) -> str:
    return f'<p class="empty">{_e(text)}</p>'


def _local(t: datetime) -> datetime:
    return t.astimezone(TZ)


class Names:
    """Display names from the dimension tables, in the briefing's language."""

    def __init__(self, dims: Dimensions, lang: Lang) -> None:
        self.dims, self.lang = dims, lang

    @property
    def province(self) -> str:
        return self.dims.province_name if self.lang.code == "vi" else self.dims.province_name_en

    def agency(self, code: str) -> str:
        a = self.dims.agencies.get(code)
        if a is None:
            return code
        return a.name if self.lang.code == "vi" else a.name_en

    def center(self, center_id: str) -> str:
        c = self.dims.centers.get(center_id)
        if c is None:
            return center_id
        if self.lang.code == "vi":
            return c.name
        # dim_centers has no English name: the commune's (proper) name in an English phrase.
        if c.commune_code:
            return self.lang.t("center_en_commune", self.dims.communes.get(c.commune_code, c.commune_code))
        return self.lang.t("center_en_province", self.dims.province_name_en)

    def affected(self, node_id: str) -> str:
        """What a node's incident cuts off: its commune, its department, or (a core node) everything."""
        n = self.dims.nodes.get(node_id)
        if n is None:
            return DASH
        if n.commune_code:
            return self.dims.communes.get(n.commune_code, n.commune_code)
        if n.agency_code:
            return self.agency(n.agency_code)
        return self.lang.t("whole_province")

    def subject(self, family: str, subject: str) -> str:
        if family == "service_center":
            return self.center(subject)
        if family == "filings":
            return self.agency(subject)
        if family == "network" and subject in self.dims.nodes:
            return f"{subject} ({self.affected(subject)})"
        return subject


# ---------------------------------------------------------------- sections


def _value(lang: Lang, card: fig.KpiCard, value: float | None) -> str:
    return lang.minutes(value) if card.unit == "minutes" else lang.percent(value)


def _delta(lang: Lang, card: fig.KpiCard, delta: float | None) -> str:
    if delta is None:
        return DASH
    if card.unit == "minutes":
        return lang.signed(delta, lang.minutes)
    return lang.points(delta)


def _arrow(delta: float | None) -> str:
    if delta is None:
        return ""
    return "▲" if delta > 0 else ("▼" if delta < 0 else "▶")


def kpi_card(lang: Lang, card: fig.KpiCard) -> str:
    """Value; target and the distance to it (coloured by status); last week's value and the change."""
    if card.target is None:
        target_lines = f'<div class="line">{_e(lang.t("target"))}: {DASH}</div>'
    else:
        bound = lang.t("at_least") if card.higher_is_better else lang.t("at_most")
        status_class = {"ok": "good", "near": "near", "bad": "bad"}.get(card.status, "muted")
        target_lines = (f'<div class="line">{_e(lang.t("target"))} {bound}{NBSP}{_e(_value(lang, card, card.target))}'
                        f' <span class="{status_class}">{_arrow(card.vs_target)}{NBSP}'
                        f'{_e(_delta(lang, card, card.vs_target))}</span></div>')
    if card.vs_week is None:
        week = f'{_e(lang.t("week_before"))}: <span class="muted">{_e(lang.t("no_data"))}</span>'
    else:
        good = card.trend_is_good
        week_class = "muted" if good is None else ("good" if good else "bad")
        week = (f'{_e(lang.t("week_before"))}: {_e(_value(lang, card, card.previous))} <span class="{week_class}">'
                f'{_arrow(card.vs_week)}{NBSP}{_e(_delta(lang, card, card.vs_week))}</span>')
    return (f'<div class="card {card.status}" data-kpi="{card.key}"><div class="label">{_e(lang.t(card.key))}</div>'
            f'<div class="value">{_e(_value(lang, card, card.value))}</div>{target_lines}'
            f'<div class="line">{week}</div></div>')


def section_kpis(lang: Lang, data: BriefingData, targets: dict[str, float]) -> str:
    cards = "".join(kpi_card(lang, c) for c in fig.kpi_cards(data, targets, fig.HEADLINE))
    ops = "".join(kpi_card(lang, c) for c in fig.kpi_cards(data, targets, fig.OPERATIONS))
    f, s, n = data.day.filings, data.day.service, data.day.network
    volumes = [
        ("dossiers_received", lang.integer(f.submitted)),
        ("tickets_issued", lang.integer(s.issued)),
        ("dossiers_processed", lang.integer(f.processed)),
        ("wait_p90", lang.minutes(None if s.wait_p90_s is None else s.wait_p90_s / 60)),
        ("dossiers_rejected", lang.integer(f.rejected)),
        ("outages", lang.integer(n.outages)),
    ]
    strip = "".join(f'<div data-figure="{k}"><span>{_e(lang.t(k))}</span><b>{_e(v)}</b></div>' for k, v in volumes)
    return _section("kpis", lang.t("sec_kpis"),
                    f'<div class="cards">{cards}{ops}<div class="volumes">{strip}</div></div>')


def section_charts(lang: Lang, data: BriefingData, targets: dict[str, float]) -> str:
    h = data.hourly
    hours = [f"{i:02d}:00" for i in range(24)]
    filings = svg.stacked_bars(
        [(h.filings_online, ONLINE_COLOR), (h.filings_in_person, IN_PERSON_COLOR)],
        [f"{hours[i]} · {lang.t('online')} {lang.integer(h.filings_online[i])} · {lang.t('in_person')} "
         f"{lang.integer(h.filings_in_person[i])}" for i in range(24)],
        label=lang.t("chart_filings"), fmt=lambda v: lang.integer(int(v)))
    wait_min = [None if v is None else v / 60 for v in h.wait_p90_s]
    wait = svg.line(wait_min, [f"{hours[i]} · {lang.minutes(wait_min[i])}" for i in range(24)],
                    label=lang.t("chart_wait"), color=LINE_COLOR, low=0.0, fmt=lambda v: lang.decimal(v, 0))
    pct = [None if v is None else v * 100 for v in h.availability]
    target = targets.get("availability")
    low = min([v for v in pct if v is not None] + ([target * 100] if target else []), default=99.0)
    network = svg.line(pct, [f"{hours[i]} · {lang.percent(h.availability[i])}" for i in range(24)],
                       label=lang.t("chart_network"), color=ONLINE_COLOR, low=min(99.0, low - 0.1), high=100.0,
                       reference=None if target is None else target * 100, fmt=lambda v: lang.decimal(v, 1))
    incidents = svg.stacked_bars(
        [(h.incidents_critical, BAD), (h.incidents_other, NEAR)],
        [f"{hours[i]} · {lang.t('critical')} {lang.integer(h.incidents_critical[i])} · {lang.t('warning')} "
         f"{lang.integer(h.incidents_other[i])}" for i in range(24)],
        label=lang.t("chart_incidents"), fmt=lambda v: lang.integer(int(v)))

    def legend(*items: tuple[str, str]) -> str:
        return '<span class="legend">' + "".join(f'<i style="background:{c}"></i>{_e(t)}' for t, c in items) \
            + "</span>"

    figures = [
        (lang.t("chart_filings"), legend((lang.t("online"), ONLINE_COLOR), (lang.t("in_person"), IN_PERSON_COLOR)),
         filings),
        (lang.t("chart_wait"), legend(), wait),
        (lang.t("chart_network"), legend(), network),
        (lang.t("chart_incidents"), legend((lang.t("critical"), BAD), (lang.t("warning"), NEAR)), incidents),
    ]
    body = "".join(f"<figure><figcaption>{_e(t)} {leg}</figcaption>{chart}</figure>" for t, leg, chart in figures)
    return _section("hourly", lang.t("sec_hourly"), f'<div class="charts">{body}</div>')


def _lag_table(lang: Lang, names: Names, scores: list[fig.AgencyScore]) -> str:
    if not scores:
        return _empty(lang.t("none_lagging"))
    rows = [(_e(names.agency(s.day.code)), _e(lang.integer(s.day.submitted)), _e(lang.percent(s.online, 1)),
             _e(lang.percent(s.on_time, 1)), _e(lang.pts(s.gap)))
            for s in scores]
    return _table([(lang.t("col_name"), False), (lang.t("col_dossiers"), True), (lang.t("col_online"), True),
                   (lang.t("col_on_time"), True), (lang.t("col_gap"), True)], rows)


def _improved_table(lang: Lang, names: Names, moves: list[fig.Improvement], comparable: bool,
                    week_before: date) -> str:
    if not comparable:
        return _empty(lang.t("no_comparison", lang.short_day(week_before)))
    if not moves:
        return _empty(lang.t("none_improved"))
    rows = [(_e(names.agency(m.code)), _e(lang.pts(m.gap_before)), _e(lang.pts(m.gap_now)),
             f'<span class="good">▲{NBSP}{_e(lang.pts(m.better_by))}</span>') for m in moves]
    return _table([(lang.t("col_name"), False), (lang.t("col_gap_before"), True), (lang.t("col_gap_now"), True),
                   (lang.t("col_better"), True)], rows)


def section_agencies(lang: Lang, names: Names, data: BriefingData, targets: dict[str, float]) -> str:
    comparable = bool(data.week_before.filings.submitted or data.week_before.filings.processed)
    week_before = data.week_before.window.day

    def block(level: str, name: str) -> str:
        lag = _lag_table(lang, names, fig.lagging(data, level, targets))
        better = _improved_table(lang, names, fig.improved(data, level, targets), comparable, week_before)
        return _section(name, lang.t(f"sec_{name}"), f'{lag}<h2>{_e(lang.t(f"sec_{name}_up"))}</h2>{better}')

    return (f'<div class="two">{block("commune", "communes")}{block("province", "departments")}</div>'
            f'<p class="note">{_e(lang.t("gap_note", fig.MIN_DOSSIERS))}</p>')


def section_dossiers(lang: Lang, names: Names, data: BriefingData) -> str:
    rows = fig.late_rows(data)
    late, overdue, due_soon = fig.late_totals(rows)
    big = "".join(f'<div data-figure="{k}"><span>{_e(lang.t(k))}</span><b class="{c}">{_e(lang.integer(v))}</b></div>'
                  for k, v, c in (("processed_late", late, "bad" if late else "good"),
                                  ("became_overdue", overdue, "bad" if overdue else "good"),
                                  ("due_soon", due_soon, "near" if due_soon else "good")))
    top = fig.top_late(rows)
    table = _table(
        [(lang.t("col_name"), False), (lang.t("col_processed_late"), True), (lang.t("col_overdue"), True),
         (lang.t("col_due_soon"), True)],
        [(_e(names.agency(r.code)), _e(lang.integer(r.processed_late)), _e(lang.integer(r.overdue)),
          _e(lang.integer(r.due_soon))) for r in top],
    ) if top else _empty(lang.t("none_late"))
    return _section("dossiers", lang.t("sec_dossiers"), f'<div class="big">{big}</div>{table}')


def section_hotspots(lang: Lang, names: Names, data: BriefingData) -> str:
    spots = fig.hotspots(data)
    if not spots:
        return _section("hotspots", lang.t("sec_hotspots"), _empty(lang.t("no_data")))
    rows = [(_e(names.center(c.center_id)), _e(lang.integer(c.issued)),
             _e(lang.minutes(None if c.wait_p90_s is None else c.wait_p90_s / 60)),
             _e(lang.percent(c.abandonment, 1))) for c in spots]
    table = _table([(lang.t("col_center"), False), (lang.t("col_tickets"), True), (lang.t("col_wait_p90"), True),
                    (lang.t("col_abandoned"), True)], rows)
    return _section("hotspots", lang.t("sec_hotspots"), table)


def _start(lang: Lang, incident: Incident, day: date) -> str:
    return _clock_on(lang, incident.start, day)


def section_network(lang: Lang, names: Names, data: BriefingData, targets: dict[str, float]) -> str:
    network = data.day.network
    target = targets.get("availability")
    parts = []
    notes = []
    if target is not None and network.nodes:
        notes.append(lang.t("sla_line", lang.percent(target), len(network.meeting(target)), len(network.nodes),
                            lang.percent(network.availability)))
        below = network.below(target)
        if below:
            listed = ", ".join(f"{n.node_id} ({lang.percent(n.availability)})" for n in below[: fig.TOP])
            notes.append(lang.t("below_sla", listed + (f" (+{len(below) - fig.TOP})" if len(below) > fig.TOP else "")))
    if notes:
        parts.append(f'<p class="note">{_e(" ".join(notes))}</p>')
    by_node = {n.node_id: n for n in network.nodes}
    shown = fig.top_incidents(data.incidents)
    if shown:
        rows = []
        for i in shown:
            spark = svg.sparkline(data.hourly.node_availability.get(i.node_id, ()), low=0.0, high=1.0,
                                  color=BAD if i.kind == "outage" else NEAR, label=i.node_id)
            day_availability = by_node[i.node_id].availability if i.node_id in by_node else None
            rows.append((_e(i.node_id), _e(lang.t(f"kind_{i.kind}")), _e(_start(lang, i, data.day.window.day)),
                         _e(lang.minutes(i.duration_min, 0)), _e(names.affected(i.node_id)),
                         f"{_e(lang.percent(day_availability))} {spark}"))
        parts.append(_table([(lang.t("col_node"), False), (lang.t("col_kind"), False), (lang.t("col_start"), True),
                             (lang.t("col_duration"), True), (lang.t("col_affected"), False),
                             (lang.t("col_day_availability"), True)], rows))
        if len(data.incidents) > len(shown):
            parts.append(f'<p class="note">{_e(lang.t("more_incidents", len(data.incidents) - len(shown)))}</p>')
    else:
        parts.append(_empty(lang.t("no_incidents")))
    return _section("network", lang.t("sec_network"), "".join(parts))


def section_index(lang: Lang, names: Names, data: BriefingData) -> str:
    """The Decision 766 index: the day and month to date against a week and a month before, its trend,
    the communes lowest month to date and those improved most on a week."""
    ix = data.index
    if not ix.has_data:
        return _section("index", lang.t("sec_index"), _empty(lang.t("no_data")))

    def delta(now: float | None, before: float | None, against: str) -> str:
        if now is None or before is None:
            return ""
        change = lang.signed(now - before, lambda v: lang.decimal(v, 1))
        return f" <small>({_e(change)} {_e(lang.t(against))})</small>"

    big = (f'<div data-figure="index_day"><span>{_e(lang.t("index_day"))}</span><b>{_e(lang.decimal(ix.day, 1))}</b>'
           f'{delta(ix.day, ix.week_before, "vs_week")}</div>'
           f'<div data-figure="index_mtd"><span>{_e(lang.t("index_mtd"))}</span><b>{_e(lang.decimal(ix.mtd, 1))}</b>'
           f'{delta(ix.mtd, ix.previous_mtd, "vs_month")}</div>')
    if len(ix.trend) >= 2:
        values, caption = [t for _, t in ix.trend], lang.t("index_trend", len(ix.trend))
        spark = svg.sparkline(values, low=min(values) - 1, high=max(values) + 1, color=NEAR,
                              label=f'{lang.t("sec_index")} · {caption}')
        big += f'<div data-figure="index_trend"><span>{_e(caption)}</span>{spark}</div>'
    commune = lambda code: names.dims.communes.get(code, code)  # noqa: E731
    lists = [f'<span data-list="index_lowest">{_e(lang.t("index_lowest"))}: '
             + _e(", ".join(f"{commune(c)} {lang.decimal(v, 1)}" for c, v in ix.lowest)) + "</span>"]
    if ix.improved:
        lists.append(f'<span data-list="index_improved">{_e(lang.t("index_improved"))}: '
                     + _e(", ".join(f"{commune(c)} +{lang.decimal(v, 1)}" for c, v in ix.improved)) + "</span>")
    inner = f'<div class="big">{big}</div><p class="note">{" · ".join(lists)}</p>'
    return _section("index", lang.t("sec_index"), inner)


def section_day_incidents(lang: Lang, names: Names, data: BriefingData) -> str:
    """The day's incidents (not alerts: one row per problem) with their duration and impact."""
    shown = data.day_incidents
    if not shown:
        return _section("day_incidents", lang.t("sec_day_incidents"), _empty(lang.t("no_day_incidents")))
    day, until = data.day.window.day, data.day.window.end
    rows = []
    for i in shown[: fig.MAX_INCIDENT_ROWS]:
        end = lang.t("still_open") if i.end is None else _clock_on(lang, i.end, day)
        rows.append((f'<span class="sev-{_e(i.severity)}">{_e(lang.severity(i.severity))}</span>', _e(i.title),
                     _e(f"{_clock_on(lang, i.start, day)}–{end}"), _e(lang.minutes(i.duration_min(until), 0)),
                     _e(lang.t("impact", lang.integer(i.subjects), lang.integer(i.communes))),
                     _e(lang.minutes(i.detection_s / 60, 0))))
    table = _table([(lang.t("col_severity"), False), (lang.t("col_incident"), False), (lang.t("col_time"), True),
                    (lang.t("col_duration"), True), (lang.t("col_impact"), False), (lang.t("col_detected"), True)],
                   rows)
    critical = sum(1 for i in shown if i.severity == "critical")
    hours = sum(i.duration_min(until) for i in shown) / 60
    note = lang.t("incidents_total", lang.integer(len(shown)), lang.integer(critical), lang.decimal(hours, 1))
    if len(shown) > fig.MAX_INCIDENT_ROWS:
        note += " " + lang.t("more_incidents", len(shown) - fig.MAX_INCIDENT_ROWS)
    return _section("day_incidents", lang.t("sec_day_incidents"), f'{table}<p class="note">{_e(note)}</p>')


def _clock_on(lang: Lang, when: datetime, day: date) -> str:
    local = _local(when)
    return lang.clock(local) if local.date() == day else f"{lang.short_day(local.date())} {lang.clock(local)}"


# ---------------------------------------------------------------- pages


def _header(lang: Lang, names: Names, day: date, generated: datetime, compare: date | None) -> str:
    meta = [f'<strong>{_e(lang.t("figures_for", lang.day(day)))}</strong>']
    if compare is not None:
        meta.append(_e(lang.t("compared_with", lang.short_day(compare))))
    meta.append(_e(lang.t("generated", lang.stamp(generated.astimezone(TZ)))))
    return (f'<header><div><h1>{_e(lang.t("title"))}</h1><div class="sub">{_e(lang.t("subtitle", names.province))}'
            f'</div></div><div class="meta">{"<br>".join(meta)}</div></header>')


def render_page(data: BriefingData, lang: Lang, targets: dict[str, float], *, generated: datetime,
                scenario: str = "default") -> str:
    """The briefing for `data.day` as one HTML document (a "no data" page when ClickHouse has none)."""
    names = Names(data.dims, lang)
    day = data.day.window.day
    title = f"{lang.t('title')} – {names.province} – {lang.short_day(day)}"
    if not data.has_data:
        body = (_header(lang, names, day, generated, None)
                + f'<section class="nodata" data-nodata="{day.isoformat()}">'
                f'<h2>{_e(lang.t("no_data_title", lang.short_day(day)))}</h2>'
                f'<p>{_e(lang.t("no_data_body"))}</p></section>')
        return PAGE.substitute(lang=lang.code, title=_e(title), css=CSS, body=body)
    body = "\n".join([
        _header(lang, names, day, generated, data.week_before.window.day),
        section_kpis(lang, data, targets),
        section_index(lang, names, data),
        section_charts(lang, data, targets),
        section_agencies(lang, names, data, targets),
        f'<div class="two">{section_dossiers(lang, names, data)}{section_hotspots(lang, names, data)}</div>',
        section_network(lang, names, data, targets),
        section_day_incidents(lang, names, data),
        f'<footer>{_e(lang.t("footer", scenario))}</footer>',
    ])
    return PAGE.substitute(lang=lang.code, title=_e(title), css=CSS, body=body)
