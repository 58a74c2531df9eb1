"""What every IOC dashboard shares: time zone, links, the incidents annotation, SQL fragments."""

from __future__ import annotations

import re

from grafana_foundation_sdk.builders.dashboard import AnnotationQuery, Dashboard, DashboardLink, TimePicker
from grafana_foundation_sdk.models.dashboard import DashboardLinkType

from dashboards.datasource import ref
from dashboards.panels import sql
from dashboards.query import ClickHouseQueryBuilder

TIMEZONE = "Asia/Ho_Chi_Minh"  # the leaders' and operators' day (UTC+7, no DST)
FOLDER_UID = "ioc"
FOLDER_TITLE = "IOC"
TAG = "ioc"

# "Today" on the wall: the local day that contains the end of the time range, up to that end.
# Written in SQL rather than left to the time picker so that the KPIs stay "today" even when
# someone widens the range; the 5-minute (filings) and 1-minute windows align with local
# midnight because UTC+7 is a whole number of hours.
TODAY = f"window_start >= toStartOfDay($__toTime, '{TIMEZONE}') AND window_start < $__toTime"


def base(uid: str, title: str, *, description: str, time_from: str = "now-24h", refresh: str = "1m",
         extra_tags: tuple[str, ...] = ()) -> Dashboard:
    return (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags([TAG, *extra_tags])
        .timezone(TIMEZONE)
        .time(time_from, "now")
        .refresh(refresh)
        .style("dark")
        .week_start("monday")
        .timepicker(TimePicker().refresh_intervals(["10s", "30s", "1m", "5m", "15m"]))
        .link(
            DashboardLink("IOC dashboards")
            .type(DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(False)
            .keep_time(True)
        )
    )


# Incidents open at some point of the time range (incidents_current: one row per incident).
INCIDENTS_IN_RANGE = "`start` <= $__toTime AND (`end` IS NULL OR `end` >= $__fromTime)"


def any_subject_in(scope: str) -> str:
    """A scope filter `x IN (SELECT id FROM ...)` (dashboards.scope) turned into one on an incident:
    true when any of its `subjects` is in scope (an outage upstream counts where it cuts off)."""
    match = re.fullmatch(r"x IN \(SELECT (\w+) (FROM .*)\)", scope, flags=re.S)
    if match is None:
        raise ValueError(f"not a scope filter on x: {scope}")
    return f"hasAny(subjects, (SELECT groupArray({match.group(1)}) {match.group(2)}))"


def incidents_annotation(name: str, where: str, color: str = "red") -> AnnotationQuery:
    """Incidents as annotation regions: from their start to their end (now while open).

    `where` narrows them (family, severity, the dashboard's scope); it is SQL on `incidents_current`.
    Columns are the names Grafana maps by default: `time`, `timeEnd`, `text`, and `tags`, a
    comma-separated string Grafana splits into tags (filterable per dashboard).
    """
    target = (
        ClickHouseQueryBuilder()
        .ref_id("Anno")
        .datasource(ref())
        .table()
        .raw_sql(sql(f"""
            SELECT `start` AS time, ifNull(`end`, $__toTime) AS timeEnd,
                   concat(severity, ' (', state, '): ', title) AS text,
                   concat(family, ',', severity, ',', state) AS tags
            FROM incidents_current
            WHERE `start` <= $__toTime AND (`end` IS NULL OR `end` >= $__fromTime) AND {where}
            ORDER BY time
            LIMIT 500
        """))
    )
    # The SDK's AnnotationTarget models only the built-in Grafana annotation source; a data-source
    # annotation carries a query of that data source, so the ClickHouse target is passed as is.
    return (
        AnnotationQuery()
        .name(name)
        .datasource(ref())
        .enable(True)
        .hide(False)
        .icon_color(color)
        .target(target)  # type: ignore[arg-type]
    )
