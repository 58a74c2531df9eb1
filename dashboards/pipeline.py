"""Alerts and pipeline: what the streams raised, and whether the pipeline itself keeps up.

Pipeline health from what ClickHouse holds:
- flow: events per second by family (raw tables, deduplicated);
- delay: how long after a window closes its row lands (`ingested_at - window_end` on agg_*) and how
  far the newest window is behind the wall clock (freshness);
- checkpoints (`stream_checkpoints`): per consumer group and partition the next offset and when it
  was written; a worker that stops checkpointing shows as a growing age. Consumer lag in messages
  needs the brokers' end offsets, which ClickHouse does not have: the workers report it in their
  stats files (`var/worker-<pid>.json`);
- dead letters (`deadletters`, `deadletter_counts`) and late events (`late_events`).

Worker panels, from Prometheus (the workers' /metrics, streams/exporter.py; docker-compose scrapes
them): events in per second, consumer lag per partition, checkpoint and insert durations, the
writer's buffer. They are what ClickHouse cannot tell: how far behind the brokers a worker is.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards.common import INCIDENTS_IN_RANGE, base, incidents_annotation
from dashboards.panels import (
    EVENTS_PER_S,
    ONE_MINUTE,
    prometheus_timeseries_panel,
    stat_panel,
    table_panel,
    timeseries_panel,
)
from dashboards.targets import Targets, count_alarm, neutral

UID = "ioc-pipeline"
FAMILY_TABLES = (("service_center", "raw_service_center"), ("filings", "raw_filings"), ("network", "raw_network"))
AGG_TABLES = (("service_center", "agg_service_center"), ("filings", "agg_filings"), ("network", "agg_network"))


def _union(parts: list[str]) -> str:
    return "\n    UNION ALL\n    ".join(parts)


def build(targets: Targets) -> Dashboard:
    del targets  # no KPI here; the signature matches the other dashboards
    d = base(UID, "Incidents and pipeline", extra_tags=("pipeline",),
             description="Incidents found by the streams; flow, delay, checkpoints, dead letters and late events.")

    d = d.with_panel(stat_panel(
        "Incidents", f"SELECT count() AS incidents FROM incidents_current WHERE {INCIDENTS_IN_RANGE}",
        unit="short", w=4, h=4, description="Incidents open at some point of the time range."))
    d = d.with_panel(stat_panel(
        "Critical incidents", "SELECT count() AS critical FROM incidents_current "
                              f"WHERE {INCIDENTS_IN_RANGE} AND severity = 'critical'",
        unit="short", thresholds=count_alarm(), w=4, h=4))
    d = d.with_panel(stat_panel(
        "Dead letters", "SELECT count() AS dead_letters FROM deadletters FINAL WHERE $__timeFilter(received_at)",
        unit="short", thresholds=count_alarm(), w=4, h=4,
        description="Rejected messages (malformed, oversized, wrongly typed, future-dated, duplicates)."))
    d = d.with_panel(stat_panel(
        "Late events", "SELECT count() AS late_events FROM late_events FINAL WHERE $__timeFilter(event_time)",
        unit="short", thresholds=count_alarm(), w=4, h=4,
        description="Events later than the allowed lateness: stored, not counted in their windows."))
    # Newest window per table among those that started in the day before the range end (a key range).
    freshness = _union([f"SELECT max(window_end) AS newest FROM {t} FINAL "
                        "WHERE window_start > $__toTime - INTERVAL 1 DAY AND window_start <= $__toTime"
                        for _, t in AGG_TABLES])
    d = d.with_panel(stat_panel(
        "Freshness", f"""
            SELECT dateDiff('second', max(newest), $__toTime) AS behind_s
            FROM (
                {freshness}
            )
        """, unit="s", w=4, h=4,
        description="How far the newest window is behind the end of the range (now, when live)."))
    d = d.with_panel(stat_panel(
        "Oldest checkpoint", """
            SELECT if(count() = 0, NULL, dateDiff('second', min(written_at), now())) AS checkpoint_age_s
            FROM stream_checkpoints FINAL
        """, unit="s", w=4, h=4, no_value="no worker yet",
        description="Age of the stalest partition checkpoint (workers write one every IOC_CHECKPOINT_INTERVAL_S)."))

    d = d.with_panel(timeseries_panel(
        "Incidents opened, by severity", """
            SELECT $__timeInterval(`start`) AS time, severity, count() AS incidents
            FROM incidents_current
            WHERE $__timeFilter(`start`)
            GROUP BY time, severity
            ORDER BY time, severity
        """, unit="short", min_interval=ONE_MINUTE, w=12, stacked_bars=True))
    flow = _union([
        f"SELECT $__timeInterval(event_time) AS time, '{family}' AS family, count() AS events "
        f"FROM {table} FINAL WHERE $__timeFilter(event_time) GROUP BY time"
        for family, table in FAMILY_TABLES
    ])
    d = d.with_panel(timeseries_panel(
        "Events per second", f"""
            SELECT time, family, events / $__interval_s AS events_per_s
            FROM (
                {flow}
            )
            ORDER BY time, family
        """, unit=EVENTS_PER_S, min_interval=ONE_MINUTE, w=12, description="By event time, deduplicated."))
    delay = _union([
        f"SELECT $__timeInterval(window_start) AS time, '{family}' AS family, "
        f"quantile(0.99)(dateDiff('millisecond', window_end, ingested_at)) / 1000 AS delay_s "
        f"FROM {table} FINAL WHERE $__timeFilter(window_start) GROUP BY time"
        for family, table in AGG_TABLES
    ])
    d = d.with_panel(timeseries_panel(
        "Window delay p99", f"""
            SELECT time, family, delay_s
            FROM (
                {delay}
            )
            ORDER BY time, family
        """, unit="s", min_interval=ONE_MINUTE, w=12,
        description="From a window's end to its row being written (includes the allowed lateness wait; "
                    "a replayed day shows the replay's distance in time)."))
    d = d.with_panel(timeseries_panel(
        "Dead letters and late events", """
            SELECT time, series, n FROM (
                SELECT $__timeInterval(received_at) AS time, concat('dead: ', reason) AS series, count() AS n
                FROM deadletters FINAL
                WHERE $__timeFilter(received_at)
                GROUP BY time, series
                UNION ALL
                SELECT $__timeInterval(event_time) AS time, concat('late: ', family) AS series, count() AS n
                FROM late_events FINAL
                WHERE $__timeFilter(event_time)
                GROUP BY time, series
            )
            ORDER BY time, series
        """, unit="short", min_interval=ONE_MINUTE, w=12, stacked_bars=True))

    d = d.with_panel(table_panel(
        "Recent incidents", f"""
            SELECT `start` AS started, `end` AS ended, state, severity, family, title, arrayStringConcat(rules, ', ')
                   AS rules, length(subjects) AS subjects, length(communes) AS communes,
                   dateDiff('second', `start`, detected_at) AS detection_s, incident_id
            FROM incidents_current
            WHERE {INCIDENTS_IN_RANGE}
            ORDER BY `start` DESC, incident_id
            LIMIT 200
        """, w=24, h=9, units={"detection_s": "s"}, thresholds=neutral()))
    d = d.with_panel(table_panel(
        "Dead letters by reason", """
            SELECT source_topic AS topic, reason, count() AS letters, sum(payload_bytes) AS bytes,
                   max(received_at) AS last_received, any(detail) AS example
            FROM deadletters FINAL
            WHERE $__timeFilter(received_at)
            GROUP BY topic, reason
            ORDER BY letters DESC, topic, reason
        """, w=12, h=8, units={"bytes": "bytes"}, thresholds=neutral()))
    d = d.with_panel(table_panel(
        "Partition checkpoints", """
            SELECT consumer_group, topic, `partition`, next_offset, written_at,
                   dateDiff('second', written_at, now()) AS age_s
            FROM stream_checkpoints FINAL
            ORDER BY consumer_group, topic, `partition`
        """, w=12, h=8, units={"age_s": "s"}, thresholds=neutral()))
    d = d.with_panel(table_panel(
        "Late events by key", """
            SELECT family, key, count() AS events, min(event_time) AS earliest, max(event_time) AS latest,
                   max(detected_at) AS last_detected
            FROM late_events FINAL
            WHERE $__timeFilter(event_time)
            GROUP BY family, key
            ORDER BY events DESC, family, key
            LIMIT 100
        """, w=24, h=7, thresholds=neutral()))

    d = d.with_panel(prometheus_timeseries_panel(
        "Worker: events in per second", {
            "{{instance}} {{topic}}": "sum by (instance, topic) (rate(ioc_events_in_total[$__rate_interval]))",
            "{{instance}} dead letters": "sum by (instance) (rate(ioc_dead_letters_total[$__rate_interval]))",
        }, unit=EVENTS_PER_S, description="Per worker replica (Prometheus, the workers' /metrics)."))
    d = d.with_panel(prometheus_timeseries_panel(
        "Worker: consumer lag", {"{{topic}} p{{partition}}": "max by (topic, partition) (ioc_consumer_lag)"},
        unit="short", description="Offsets not processed yet, per partition (the brokers' end offsets)."))
    d = d.with_panel(prometheus_timeseries_panel(
        "Worker: checkpoint and insert time", {
            "{{instance}} checkpoint": "max by (instance) (ioc_checkpoint_last_seconds)",
            "{{instance}} insert": "max by (instance) (ioc_insert_last_seconds)",
            "{{instance}} buffered rows / 1M": "max by (instance) (ioc_sink_buffered_rows) / 1e6",
        }, unit="s", description="Last checkpoint (cut, ClickHouse writes, Kafka commit) and last insert; "
                                 "the writer's buffer in millions of rows (consumption pauses when it is full)."))

    return d.annotation(incidents_annotation("Incidents", "1 = 1"))
