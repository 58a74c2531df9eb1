"""IOC Wall: the kiosk screen of the operations center. Dark, large type, refreshed every 10 s.

Everything is "today, now" (Asia/Ho_Chi_Minh): KPIs against the scenario targets, queues at the
service centers, the network, open incidents and the event flow. No template variables: the wall
shows the whole province; the drill-downs narrow it down.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards.common import TIMEZONE, TODAY, base, incidents_annotation
from dashboards.panels import EVENTS_PER_S, ONE_MINUTE, bargauge_panel, stat_panel, table_panel, timeseries_panel
from dashboards.service_index import index_row
from dashboards.targets import Targets, at_least, at_most, availability, count_alarm, neutral

UID = "ioc-wall"
# An incident is open at the end of the range when it started by then and had not ended (a replayed
# day seen later shows what was open at that moment).
OPEN_AT_END = "`start` <= $__toTime AND (`end` IS NULL OR `end` > $__toTime)"
# "Flowing": events whose event time falls in the 5 minutes before the end of the range.
RECENT = "event_time > $__toTime - INTERVAL 5 MINUTE AND event_time <= $__toTime"


def _filings_share(numerator: str, denominator: str, alias: str) -> str:
    return f"""
        SELECT {numerator} / nullIf({denominator}, 0) AS {alias}
        FROM agg_filings FINAL
        WHERE {TODAY}
    """


def build(targets: Targets) -> Dashboard:
    d = base(UID, "IOC Wall", description="Today at a glance: filings against targets, queues, network, incidents.",
             time_from="now/d", refresh="10s", extra_tags=("wall",)).readonly()
    big = {"big": True, "w": 4, "h": 5}

    # Row 0: the Decision 766 service index and its five groups, month to date (what leaders are ranked by).
    d = index_row(d, big=True)

    # Row 1: administrative procedures today against the targets of the scenario.
    d = d.with_panel(stat_panel(
        "Online applications today", _filings_share("sumIf(submitted, channel != 'in_person')", "sum(submitted)",
                                                    "online_application"),
        unit="percentunit", decimals=1, thresholds=at_least(targets.online_application), **big,
        description=f"Share of dossiers submitted online (full or partial); target {targets.online_application:.0%}."))
    d = d.with_panel(stat_panel(
        "Online payment today", _filings_share("sum(paid_online)", "sum(submitted)", "online_payment"),
        unit="percentunit", decimals=1, thresholds=at_least(targets.online_payment), **big,
        description=f"Share of dossiers paid online; target {targets.online_payment:.0%}."))
    d = d.with_panel(stat_panel(
        "On-time processing today", _filings_share("sum(on_time)", "sum(processed)", "on_time"),
        unit="percentunit", decimals=1, thresholds=at_least(targets.on_time), **big,
        description=f"Share of dossiers processed before their due time; target {targets.on_time:.0%}."))
    d = d.with_panel(stat_panel(
        "E-results today", _filings_share("sum(electronic)", "sum(result_issued)", "electronic_results"),
        unit="percentunit", decimals=1, thresholds=at_least(targets.electronic_results), **big,
        description=f"Share of results issued electronically; target {targets.electronic_results:.0%}."))
    d = d.with_panel(stat_panel(
        "Digitisation today", _filings_share("sum(digitised)", "sum(submitted)", "digitisation"),
        unit="percentunit", decimals=1, thresholds=at_least(targets.digitisation), **big,
        description=f"Share of dossiers digitised on submission; target {targets.digitisation:.0%}."))
    d = d.with_panel(stat_panel(
        "Dossiers today", f"SELECT sum(submitted) AS dossiers FROM agg_filings FINAL WHERE {TODAY}",
        unit="short", thresholds=neutral(), **big))

    # Row 2: public service centers, now.
    d = d.with_panel(stat_panel(
        "Waiting now", f"""
            SELECT toInt64(sum(issued)) - toInt64(sum(called)) - toInt64(sum(abandoned)) AS waiting
            FROM agg_service_center FINAL
            WHERE {TODAY}
        """, unit="short", thresholds=neutral(), **big,
        description="Tickets issued today and neither called to a counter nor abandoned, all centers."))
    d = d.with_panel(stat_panel(
        "Wait p90 today", f"""
            SELECT ioc_sketch_quantile(sumMap(wait_sketch), 0.9) AS wait_p90_s
            FROM agg_service_center FINAL
            WHERE {TODAY}
        """, unit="s", decimals=1, thresholds=at_most(targets.mean_wait_min * 60 * 2), **big,
        description="90th percentile of the wait before a counter call (merged window sketches); "
                    f"red above twice the {targets.mean_wait_min:g}-minute mean-wait target."))
    d = d.with_panel(stat_panel(
        "Mean wait today", f"""
            SELECT sum(wait_sum) / nullIf(sum(wait_count), 0) AS mean_wait_s
            FROM agg_service_center FINAL
            WHERE {TODAY}
        """, unit="s", decimals=1, thresholds=at_most(targets.mean_wait_min * 60), **big,
        description=f"Mean wait before a counter call; target at most {targets.mean_wait_min:g} min."))
    d = d.with_panel(stat_panel(
        "Abandoned today", f"""
            SELECT sum(abandoned) / nullIf(sum(abandoned) + sum(called), 0) AS abandonment
            FROM agg_service_center FINAL
            WHERE {TODAY}
        """, unit="percentunit", decimals=1, thresholds=at_most(targets.abandonment), **big,
        description=f"Tickets abandoned before a call; target at most {targets.abandonment:.0%}."))
    d = d.with_panel(stat_panel(
        "Network availability today", f"""
            SELECT sum(up_samples) / nullIf(sum(samples), 0) AS availability
            FROM agg_network FINAL
            WHERE {TODAY}
        """, unit="percentunit", decimals=2, thresholds=availability(targets.availability), **big,
        description=f"Share of probes with the link up; target {targets.availability:.1%}."))
    d = d.with_panel(stat_panel(
        "Nodes in outage", """
            SELECT uniqExact(node_id) AS nodes_in_outage
            FROM network_outages FINAL
            WHERE `start` <= $__toTime AND `end` >= $__toTime - INTERVAL 2 MINUTE
        """, unit="short", thresholds=count_alarm(), **big,
        description="Outage sessions still open: last down probe within the 2-minute session gap."))

    # Row 3: incidents and the event flow.
    d = d.with_panel(stat_panel(
        "Open incidents", f"SELECT count() AS open_incidents FROM incidents_current WHERE {OPEN_AT_END}",
        unit="short", thresholds=count_alarm(), big=True, w=4, h=5,
        description="One per problem (a node down with the communes below it is one), acknowledged or not."))
    d = d.with_panel(stat_panel(
        "Critical incidents", f"""
            SELECT count() AS critical_incidents
            FROM incidents_current
            WHERE {OPEN_AT_END} AND severity = 'critical'
        """, unit="short", thresholds=count_alarm(), big=True, w=4, h=5))
    d = d.with_panel(stat_panel(
        "Events flowing", f"""
            SELECT (
                (SELECT count() FROM raw_service_center FINAL WHERE {RECENT})
                + (SELECT count() FROM raw_filings FINAL WHERE {RECENT})
                + (SELECT count() FROM raw_network FINAL WHERE {RECENT})
            ) / 300 AS events_per_s
        """, unit=EVENTS_PER_S, decimals=1, thresholds=neutral(), big=True, w=4, h=5,
        description="Events per second over the last 5 minutes, all three streams (deduplicated)."))
    d = d.with_panel(timeseries_panel(
        "Today: tickets and dossiers", """
            SELECT time, series, value FROM (
                SELECT $__timeInterval(window_start) AS time, 'tickets issued' AS series,
                       toFloat64(sum(issued)) AS value
                FROM agg_service_center FINAL
                WHERE $__timeFilter(window_start)
                GROUP BY time
                UNION ALL
                SELECT $__timeInterval(window_start) AS time, 'dossiers submitted' AS series,
                       toFloat64(sum(submitted)) AS value
                FROM agg_filings FINAL
                WHERE $__timeFilter(window_start)
                GROUP BY time
            )
            ORDER BY time, series
        """, unit="short", min_interval=ONE_MINUTE, w=12, h=5))

    # Row 4: where the queues are, and what is wrong.
    d = d.with_panel(bargauge_panel(
        "Waiting now by center", f"""
            SELECT c.name AS center, q.waiting AS waiting
            FROM (
                SELECT center_id, toInt64(sum(issued)) - toInt64(sum(called)) - toInt64(sum(abandoned)) AS waiting
                FROM agg_service_center FINAL
                WHERE {TODAY}
                GROUP BY center_id
            ) AS q
            INNER JOIN dim_centers AS c ON c.center_id = q.center_id
            WHERE q.waiting > 0
            ORDER BY waiting DESC, center
            LIMIT 10
        """, unit="short", thresholds=neutral(), w=8, h=10, lo=0))
    d = d.with_panel(table_panel(
        "Incidents today", f"""
            SELECT severity, if({OPEN_AT_END}, if(state = 'acknowledged', 'acknowledged', 'open'), 'resolved')
                   AS state, title, `start` AS started,
                   dateDiff('minute', `start`, if({OPEN_AT_END}, $__toTime, `end`)) AS minutes,
                   length(subjects) AS subjects, length(communes) AS communes
            FROM incidents_current
            WHERE `start` <= $__toTime AND (`end` IS NULL OR `end` >= toStartOfDay($__toTime, '{TIMEZONE}'))
            ORDER BY state = 'resolved', indexOf(['critical', 'warning', 'info'], severity), started DESC
            LIMIT 20
        """, w=16, h=10, units={"minutes": "m"},
        description="Open ones first, most severe first; minutes till now while open."))

    return d.annotation(incidents_annotation("Critical incidents", "severity = 'critical'"))
