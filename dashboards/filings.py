"""Filings and online services drill-down: the national service-quality indicators per agency.

KPI definitions are those of simulators/README.md ("Realised KPIs") and the briefing: shares of
`submitted` (online application, online payment, digitisation, data reuse), of `processed`
(on time) and of `result_issued` (electronic results). Ratios are computed from summed counts,
never averaged from per-window ratios, so they stay exact when rolled up.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards.common import any_subject_in, base, incidents_annotation
from dashboards.panels import FIVE_MINUTES, bargauge_panel, stat_panel, table_panel, timeseries_panel
from dashboards.scope import agency_scope, agency_var, commune_var, province_var
from dashboards.targets import Targets, at_least, neutral

UID = "ioc-filings"
SCOPE = agency_scope()
RANGE = f"$__timeFilter(window_start) AND {SCOPE}"
ONLINE = "sumIf(submitted, channel != 'in_person')"


def _share(numerator: str, denominator: str, alias: str) -> str:
    return f"SELECT {numerator} / nullIf({denominator}, 0) AS {alias} FROM agg_filings FINAL WHERE {RANGE}"


def build(targets: Targets) -> Dashboard:
    d = base(UID, "Filings and online services", extra_tags=("filings",),
             description="Dossiers by channel, online services and processing against the KPI targets.")
    d = d.with_variable(province_var()).with_variable(commune_var()).with_variable(agency_var())

    d = d.with_panel(stat_panel("Dossiers submitted", f"SELECT sum(submitted) AS submitted FROM agg_filings FINAL "
                                f"WHERE {RANGE}", unit="short", w=6, h=4))
    d = d.with_panel(stat_panel("Processed", f"SELECT sum(processed) AS processed FROM agg_filings FINAL "
                                f"WHERE {RANGE}", unit="short", w=6, h=4))
    d = d.with_panel(stat_panel("Late", f"SELECT sum(late) AS late FROM agg_filings FINAL WHERE {RANGE}",
                                unit="short", w=6, h=4, description="Processed after their due time."))
    d = d.with_panel(stat_panel("Rejected", f"SELECT sum(rejected) AS rejected FROM agg_filings FINAL "
                                f"WHERE {RANGE}", unit="short", w=6, h=4))
    kpis = (
        ("Online applications", ONLINE, "sum(submitted)", "online_application", targets.online_application),
        ("Online payment", "sum(paid_online)", "sum(submitted)", "online_payment", targets.online_payment),
        ("Digitisation", "sum(digitised)", "sum(submitted)", "digitisation", targets.digitisation),
        ("Data reuse", "sum(reused_data)", "sum(submitted)", "data_reuse", targets.data_reuse),
        ("On-time processing", "sum(on_time)", "sum(processed)", "on_time", targets.on_time),
        ("E-results", "sum(electronic)", "sum(result_issued)", "electronic_results", targets.electronic_results),
    )
    for title, num, den, alias, target in kpis:
        d = d.with_panel(stat_panel(title, _share(num, den, alias), unit="percentunit", decimals=1,
                                    thresholds=at_least(target), w=4, h=5, description=f"Target {target:.0%}."))

    d = d.with_panel(timeseries_panel(
        "Dossiers submitted by channel", f"""
            SELECT $__timeInterval(window_start) AS time, channel, sum(submitted) AS submitted
            FROM agg_filings FINAL
            WHERE {RANGE}
            GROUP BY time, channel
            ORDER BY time, channel
        """, unit="short", min_interval=FIVE_MINUTES, w=12, stacked_bars=True))
    d = d.with_panel(timeseries_panel(
        "Online share and on-time share", f"""
            SELECT $__timeInterval(window_start) AS time,
                   {ONLINE} / nullIf(sum(submitted), 0) AS online_application,
                   sum(on_time) / nullIf(sum(processed), 0) AS on_time
            FROM agg_filings FINAL
            WHERE {RANGE}
            GROUP BY time
            ORDER BY time
        """, unit="percentunit", min_interval=FIVE_MINUTES, w=12, thresholds=at_least(targets.online_application),
        description=f"Dashed line: online-application target {targets.online_application:.0%}."))

    d = d.with_panel(bargauge_panel(
        "Online share by level", f"""
            SELECT level, {ONLINE} / nullIf(sum(submitted), 0) AS online_application
            FROM agg_filings FINAL
            WHERE {RANGE}
            GROUP BY level
            ORDER BY level
        """, unit="percentunit", thresholds=at_least(targets.online_application), lo=0, hi=1, w=6, h=10))
    d = d.with_panel(table_panel(
        "Agencies against targets (lagging first)", f"""
            SELECT g.name AS agency, g.level AS level, a.n_submitted AS submitted,
                   a.n_online / nullIf(a.n_submitted, 0) AS online_application,
                   a.n_paid / nullIf(a.n_submitted, 0) AS online_payment,
                   a.n_on_time / nullIf(a.n_processed, 0) AS on_time,
                   a.n_electronic / nullIf(a.n_results, 0) AS electronic_results,
                   a.n_late AS late
            FROM (
                SELECT agency_code, sum(submitted) AS n_submitted, {ONLINE} AS n_online,
                       sum(paid_online) AS n_paid, sum(processed) AS n_processed, sum(on_time) AS n_on_time,
                       sum(late) AS n_late, sum(result_issued) AS n_results, sum(electronic) AS n_electronic
                FROM agg_filings FINAL
                WHERE {RANGE}
                GROUP BY agency_code
            ) AS a
            INNER JOIN dim_agencies AS g ON g.agency_code = a.agency_code
            ORDER BY online_application ASC NULLS LAST, submitted DESC, agency
            LIMIT 200
        """, w=18, h=10, thresholds=neutral(),
        units={c: "percentunit" for c in ("online_application", "online_payment", "on_time", "electronic_results")}))

    return d.annotation(incidents_annotation(
        "Filing incidents", f"family = 'filings' AND {any_subject_in(agency_scope('x'))}",
        color="yellow"))
