"""Network health drill-down: the dedicated government data network, per access and core node."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards.common import any_subject_in, base, incidents_annotation
from dashboards.panels import ONE_MINUTE, stat_panel, table_panel, timeseries_panel
from dashboards.scope import agency_var, commune_var, node_scope, province_var
from dashboards.targets import Targets, availability, count_alarm, neutral

UID = "ioc-network"
SCOPE = node_scope()
RANGE = f"$__timeFilter(window_start) AND {SCOPE}"
# Outages are keyed by node then start (few rows); they overlap the range when they start before its
# end and end after its start.
OUTAGES_IN_RANGE = f"`start` <= $__toTime AND `end` >= $__fromTime AND {SCOPE}"


def build(targets: Targets) -> Dashboard:
    d = base(UID, "Network health", extra_tags=("network",),
             description="Availability, latency, loss, utilisation and outages of the data network.")
    d = d.with_variable(province_var()).with_variable(commune_var()).with_variable(agency_var())

    d = d.with_panel(stat_panel(
        "Availability", f"SELECT sum(up_samples) / nullIf(sum(samples), 0) AS availability FROM agg_network FINAL "
                        f"WHERE {RANGE}",
        unit="percentunit", decimals=3, thresholds=availability(targets.availability), w=6, h=4,
        description=f"Share of probes with the link up; target {targets.availability:.1%}."))
    d = d.with_panel(stat_panel(
        "Latency p95", f"SELECT ioc_sketch_quantile(sumMap(latency_sketch), 0.95) AS latency_p95_ms "
                       f"FROM agg_network FINAL WHERE {RANGE}", unit="ms", decimals=1, w=6, h=4))
    d = d.with_panel(stat_panel(
        "Outages", f"SELECT count() AS outages FROM network_outages FINAL WHERE {OUTAGES_IN_RANGE}",
        unit="short", thresholds=count_alarm(), w=6, h=4))
    d = d.with_panel(stat_panel(
        "Outage time", f"""
            SELECT sum(dateDiff('millisecond', greatest(`start`, $__fromTime), least(`end`, $__toTime))) / 1000
                   AS outage_s
            FROM network_outages FINAL
            WHERE {OUTAGES_IN_RANGE}
        """, unit="s", thresholds=count_alarm(1), w=6, h=4, description="Outage duration inside the time range."))

    d = d.with_panel(timeseries_panel(
        "Availability over time", f"""
            SELECT $__timeInterval(window_start) AS time, sum(up_samples) / nullIf(sum(samples), 0) AS availability
            FROM agg_network FINAL
            WHERE {RANGE}
            GROUP BY time
            ORDER BY time
        """, unit="percentunit", min_interval=ONE_MINUTE, w=12, thresholds=availability(targets.availability)))
    d = d.with_panel(timeseries_panel(
        "Latency", f"""
            SELECT $__timeInterval(window_start) AS time,
                   ioc_sketch_quantile(sumMap(latency_sketch), 0.5) AS p50,
                   ioc_sketch_quantile(sumMap(latency_sketch), 0.95) AS p95
            FROM agg_network FINAL
            WHERE {RANGE}
            GROUP BY time
            ORDER BY time
        """, unit="ms", min_interval=ONE_MINUTE, w=12))
    d = d.with_panel(timeseries_panel(
        "Loss and peak utilisation", f"""
            SELECT $__timeInterval(window_start) AS time,
                   sum(loss_sum) / nullIf(sum(samples), 0) / 100 AS mean_loss,
                   max(util_max) AS peak_utilisation
            FROM agg_network FINAL
            WHERE {RANGE}
            GROUP BY time
            ORDER BY time
        """, unit="percentunit", min_interval=ONE_MINUTE, w=12))
    d = d.with_panel(timeseries_panel(
        "Traffic", f"""
            SELECT $__timeInterval(window_start) AS time,
                   sum(rx_bps_sum) / nullIf(sum(samples), 0) * uniqExact(node_id) AS rx_bps,
                   sum(tx_bps_sum) / nullIf(sum(samples), 0) * uniqExact(node_id) AS tx_bps
            FROM agg_network FINAL
            WHERE {RANGE}
            GROUP BY time
            ORDER BY time
        """, unit="bps", min_interval=ONE_MINUTE, w=12,
        description="Mean throughput per node times the number of nodes: the network's total."))

    d = d.with_panel(table_panel(
        "Outage sessions", f"""
            SELECT o.node_id AS node, n.role AS role, ifNull(g.name, '') AS agency,
                   o.`start` AS started, o.`end` AS last_down, o.duration_s AS duration_s,
                   o.`end` >= $__toTime - INTERVAL 2 MINUTE AS ongoing
            FROM (SELECT * FROM network_outages FINAL WHERE {OUTAGES_IN_RANGE}) AS o
            INNER JOIN dim_nodes AS n ON n.node_id = o.node_id
            LEFT JOIN dim_agencies AS g ON g.agency_code = n.agency_code
            ORDER BY started DESC
            LIMIT 200
        """, w=12, h=9, units={"duration_s": "s"}, thresholds=neutral()))
    d = d.with_panel(table_panel(
        "Nodes, worst availability first", f"""
            SELECT a.node_id AS node, n.role AS role, a.up / nullIf(a.n, 0) AS availability,
                   ioc_sketch_quantile(a.sketch, 0.95) AS latency_p95_ms,
                   a.loss / nullIf(a.n, 0) / 100 AS mean_loss, a.util AS peak_utilisation
            FROM (
                SELECT node_id, sum(samples) AS n, sum(up_samples) AS up, sumMap(latency_sketch) AS sketch,
                       sum(loss_sum) AS loss, max(util_max) AS util
                FROM agg_network FINAL
                WHERE {RANGE}
                GROUP BY node_id
            ) AS a
            INNER JOIN dim_nodes AS n ON n.node_id = a.node_id
            ORDER BY availability ASC, latency_p95_ms DESC, node
            LIMIT 50
        """, w=12, h=9, thresholds=neutral(),
        units={"availability": "percentunit", "latency_p95_ms": "ms", "mean_loss": "percentunit",
               "peak_utilisation": "percentunit"}))

    return d.annotation(incidents_annotation(
        "Network incidents", f"family = 'network' AND {any_subject_in(node_scope('x'))}"))
