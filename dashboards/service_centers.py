"""Service centers drill-down: tickets, waits, abandonment and ratings per center (1-minute windows)."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards.common import TIMEZONE, any_subject_in, base, incidents_annotation
from dashboards.panels import ONE_MINUTE, gauge_panel, stat_panel, table_panel, timeseries_panel
from dashboards.scope import center_scope, center_var, commune_var, province_var
from dashboards.targets import Targets, at_least, at_most, neutral

UID = "ioc-service-centers"
SCOPE = center_scope()
RANGE = f"$__timeFilter(window_start) AND {SCOPE}"


def _stat_sql(expr: str, alias: str) -> str:
    return f"SELECT {expr} AS {alias} FROM agg_service_center FINAL WHERE {RANGE}"


def build(targets: Targets) -> Dashboard:
    d = base(UID, "Service centers", extra_tags=("service-centers",),
             description="Public administrative service centers: queues, waits, abandonment, ratings.")
    d = d.with_variable(province_var()).with_variable(commune_var()).with_variable(center_var())

    d = d.with_panel(stat_panel("Tickets issued", _stat_sql("sum(issued)", "issued"), unit="short", w=4))
    d = d.with_panel(stat_panel("Served", _stat_sql("sum(served)", "served"), unit="short", w=4))
    d = d.with_panel(stat_panel(
        "Abandonment", _stat_sql("sum(abandoned) / nullIf(sum(abandoned) + sum(called), 0)", "abandonment"),
        unit="percentunit", decimals=1, thresholds=at_most(targets.abandonment), w=4,
        description=f"Abandoned / (abandoned + called); target at most {targets.abandonment:.0%}."))
    d = d.with_panel(stat_panel(
        "Mean wait", _stat_sql("sum(wait_sum) / nullIf(sum(wait_count), 0)", "mean_wait_s"),
        unit="s", decimals=1, thresholds=at_most(targets.mean_wait_min * 60), w=4,
        description=f"Target at most {targets.mean_wait_min:g} min."))
    d = d.with_panel(stat_panel(
        "Wait p90", _stat_sql("ioc_sketch_quantile(sumMap(wait_sketch), 0.9)", "wait_p90_s"),
        unit="s", decimals=1, thresholds=at_most(targets.mean_wait_min * 60 * 2), w=4))
    d = d.with_panel(gauge_panel(
        "Mean rating", _stat_sql("sum(rating_sum) / nullIf(sum(rating_count), 0)", "mean_rating"),
        unit="none", decimals=2, lo=1, hi=4, thresholds=at_least(3.0, near=0.8), w=4,
        description="Citizens' rating after service, 1 (poor) to 4 (very good)."))

    d = d.with_panel(timeseries_panel(
        "Tickets", f"""
            SELECT $__timeInterval(window_start) AS time,
                   sum(issued) AS issued, sum(served) AS served, sum(abandoned) AS abandoned
            FROM agg_service_center FINAL
            WHERE {RANGE}
            GROUP BY time
            ORDER BY time
        """, unit="short", min_interval=ONE_MINUTE, w=12))
    d = d.with_panel(timeseries_panel(
        "Waiting time", f"""
            SELECT $__timeInterval(window_start) AS time,
                   ioc_sketch_quantile(sumMap(wait_sketch), 0.5) AS p50,
                   ioc_sketch_quantile(sumMap(wait_sketch), 0.9) AS p90,
                   sum(wait_sum) / nullIf(sum(wait_count), 0) AS mean
            FROM agg_service_center FINAL
            WHERE {RANGE}
            GROUP BY time
            ORDER BY time
        """, unit="s", min_interval=ONE_MINUTE, w=12, thresholds=at_most(targets.mean_wait_min * 60),
        description="Quantiles merged from the windows' sketches (relative error under 1%)."))
    # The queue is a running total within each local day (it empties every evening).
    d = d.with_panel(timeseries_panel(
        "Queue length", f"""
            SELECT time, sum(delta) OVER (PARTITION BY toDate(time, '{TIMEZONE}') ORDER BY time) AS waiting
            FROM (
                SELECT $__timeInterval(window_start) AS time,
                       toInt64(sum(issued)) - toInt64(sum(called)) - toInt64(sum(abandoned)) AS delta
                FROM agg_service_center FINAL
                WHERE {RANGE}
                GROUP BY time
            )
            ORDER BY time
        """, unit="short", min_interval=ONE_MINUTE, w=12,
        description="Tickets waiting at the end of each interval (since local midnight or the range start)."))
    d = d.with_panel(timeseries_panel(
        "Counters open", f"""
            SELECT time, sum(delta) OVER (PARTITION BY toDate(time, '{TIMEZONE}') ORDER BY time) AS counters_open
            FROM (
                SELECT $__timeInterval(window_start) AS time,
                       toInt64(sum(counters_opened)) - toInt64(sum(counters_closed)) AS delta
                FROM agg_service_center FINAL
                WHERE {RANGE}
                GROUP BY time
            )
            ORDER BY time
        """, unit="short", min_interval=ONE_MINUTE, w=12))

    d = d.with_panel(table_panel(
        "Centers", f"""
            SELECT c.name AS center, c.level AS level, a.issued, a.served, a.abandoned,
                   a.abandoned / nullIf(a.abandoned + a.called, 0) AS abandonment,
                   a.wait_sum / nullIf(a.wait_count, 0) AS mean_wait_s,
                   ioc_sketch_quantile(a.sketch, 0.9) AS wait_p90_s,
                   a.rating_sum / nullIf(a.rating_count, 0) AS mean_rating
            FROM (
                SELECT center_id, sum(issued) AS issued, sum(served) AS served, sum(abandoned) AS abandoned,
                       sum(called) AS called, sum(wait_sum) AS wait_sum, sum(wait_count) AS wait_count,
                       sumMap(wait_sketch) AS sketch, sum(rating_sum) AS rating_sum, sum(rating_count) AS rating_count
                FROM agg_service_center FINAL
                WHERE {RANGE}
                GROUP BY center_id
            ) AS a
            INNER JOIN dim_centers AS c ON c.center_id = a.center_id
            ORDER BY abandonment DESC, center
        """, w=24, h=10, thresholds=neutral(),
        units={"abandonment": "percentunit", "mean_wait_s": "s", "wait_p90_s": "s"}))

    return d.annotation(incidents_annotation(
        "Service-center incidents", f"family = 'service_center' AND {any_subject_in(center_scope('x'))}",
        color="orange"))
