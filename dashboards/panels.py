"""Panel factories: one SDK builder per visualisation, each with one ClickHouse SQL target.

Conventions every query follows (and tests/test_dashboards.py checks on real data):
- aggregates are read with FINAL, so a window re-emitted with a higher version counts once;
- the time predicate is on the first sorting-key column (`window_start` of agg_*, `event_time` of
  raw_*, whose key starts with toStartOfHour(event_time)), so ClickHouse prunes granules first;
- time series bucket with `$__timeInterval(col) AS time`, return `time` first and order by it;
  a label column after `time` makes one series per label (format 0, long to wide in the plugin);
- stats return exactly one row of numbers.
"""

from __future__ import annotations

import string
import textwrap

from grafana_foundation_sdk.builders import bargauge, gauge, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders.common import (
    GraphThresholdsStyleConfig,
    ReduceDataOptions,
    StackingConfig,
    VizLegendOptions,
    VizTextDisplayOptions,
)
from grafana_foundation_sdk.builders.dashboard import ThresholdsConfig
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    BigValueTextMode,
    GraphDrawStyle,
    GraphTresholdsStyleMode,
    LegendDisplayMode,
    LegendPlacement,
    StackingMode,
    VizOrientation,
)
from grafana_foundation_sdk.models.dashboard import DataSourceRef, DynamicConfigValue, GridPos

from dashboards.datasource import prometheus_ref, ref
from dashboards.query import ClickHouseQueryBuilder
from dashboards.targets import neutral

# Time series ask for at most this many points: a 24 h range becomes 5-minute buckets
# (rangeutil.roundInterval(86 400 000 / 288) = 300 000 ms), a 1 h range 10-second ones raised to
# the panel's min interval. Fixing it (instead of Grafana's default, the panel width in pixels)
# keeps the bucket size the same on a wall screen and on a laptop.
MAX_POINTS = 288
EVENTS_PER_S = "suffix: ev/s"  # a Grafana custom unit
ONE_MINUTE = "1m"  # service-center and network windows (streams/specs.py)
FIVE_MINUTES = "5m"  # filings windows


def sql(text: str) -> str:
    """Dedented, stripped SQL as it appears in Grafana's editor."""
    return textwrap.dedent(text).strip()


def _target(text: str, *, time_series: bool) -> ClickHouseQueryBuilder:
    q = ClickHouseQueryBuilder().ref_id("A").datasource(ref()).raw_sql(sql(text))
    return q.time_series() if time_series else q.table()


def _pos(w: int, h: int) -> GridPos:
    return GridPos(h=h, w=w, x=0, y=0)


def stat_panel(title: str, query: str, *, unit: str, thresholds: ThresholdsConfig | None = None,
               decimals: int | None = None, w: int = 4, h: int = 5, big: bool = False,
               description: str = "", no_value: str = "–") -> stat.Panel:
    """A single number; `big` for the wall (readable across the room)."""
    p = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(ref())
        .with_target(_target(query, time_series=False))
        .unit(unit)
        .thresholds(thresholds or neutral())
        .color_mode(BigValueColorMode.BACKGROUND if big else BigValueColorMode.VALUE)
        .graph_mode(BigValueGraphMode.NONE)
        .text_mode(BigValueTextMode.VALUE)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .orientation(VizOrientation.AUTO)
        .no_value(no_value)
        .grid_pos(_pos(w, h))
    )
    if big:
        p = p.text(VizTextDisplayOptions().title_size(22).value_size(64))
    if decimals is not None:
        p = p.decimals(decimals)
    return p


def gauge_panel(title: str, query: str, *, unit: str, thresholds: ThresholdsConfig, lo: float, hi: float,
                w: int = 4, h: int = 5, decimals: int | None = None, description: str = "") -> gauge.Panel:
    p = (
        gauge.Panel()
        .title(title)
        .description(description)
        .datasource(ref())
        .with_target(_target(query, time_series=False))
        .unit(unit)
        .min(lo)
        .max(hi)
        .thresholds(thresholds)
        .show_threshold_markers(True)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .grid_pos(_pos(w, h))
    )
    if decimals is not None:
        p = p.decimals(decimals)
    return p


def _timeseries(title: str, description: str, source: DataSourceRef, unit: str, w: int, h: int) -> timeseries.Panel:
    """What every time series here shares: legend below, 2 px lines, a light fill."""
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(source)
        .unit(unit)
        .legend(VizLegendOptions().show_legend(True).display_mode(LegendDisplayMode.LIST)
                .placement(LegendPlacement.BOTTOM).calcs([]))
        .grid_pos(_pos(w, h))
        .line_width(2)
        .fill_opacity(10)
    )


def timeseries_panel(title: str, query: str, *, unit: str, min_interval: str, w: int = 12, h: int = 8,
                     thresholds: ThresholdsConfig | None = None, stacked_bars: bool = False,
                     decimals: int | None = None, description: str = "") -> timeseries.Panel:
    """`thresholds` are drawn as dashed lines (a target line), not as colours."""
    p = (
        _timeseries(title, description, ref(), unit, w, h)
        .with_target(_target(query, time_series=True))
        .interval(min_interval)
        .max_data_points(MAX_POINTS)
    )
    if thresholds is not None:
        p = p.thresholds(thresholds).thresholds_style(GraphThresholdsStyleConfig().mode(GraphTresholdsStyleMode.DASHED))
    if decimals is not None:
        p = p.decimals(decimals)
    if stacked_bars:
        p = p.draw_style(GraphDrawStyle.BARS).fill_opacity(80).stacking(StackingConfig().mode(StackingMode.NORMAL))
    return p


def table_panel(title: str, query: str, *, w: int = 12, h: int = 9, units: dict[str, str] | None = None,
                description: str = "", thresholds: ThresholdsConfig | None = None) -> table.Panel:
    """`units` maps result column names to Grafana units (per-column overrides)."""
    p = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(ref())
        .with_target(_target(query, time_series=False))
        .show_header(True)
        .grid_pos(_pos(w, h))
    )
    if thresholds is not None:
        p = p.thresholds(thresholds)
    for column, unit in (units or {}).items():
        p = p.override_by_name(column, [DynamicConfigValue(id_val="unit", value=unit)])
    return p


def bargauge_panel(title: str, query: str, *, unit: str, thresholds: ThresholdsConfig, w: int = 8, h: int = 10,
                   lo: float | None = None, hi: float | None = None, description: str = "") -> bargauge.Panel:
    """One bar per row: the query returns a label column and one number (reduceOptions.values)."""
    p = (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(ref())
        .with_target(_target(query, time_series=False))
        .unit(unit)
        .thresholds(thresholds)
        .orientation(VizOrientation.HORIZONTAL)
        .reduce_options(ReduceDataOptions().calcs(["lastNotNull"]).values(True).limit(20))
        .grid_pos(_pos(w, h))
    )
    if lo is not None:
        p = p.min(lo)
    if hi is not None:
        p = p.max(hi)
    return p


def prometheus_timeseries_panel(title: str, exprs: dict[str, str], *, unit: str, w: int = 8, h: int = 7,
                                description: str = "") -> timeseries.Panel:
    """A time series of PromQL expressions (the workers' /metrics through Prometheus); `exprs` maps a
    legend format (e.g. "{{instance}}") to its expression, one query each."""
    p = _timeseries(title, description, prometheus_ref(), unit, w, h)
    for ref_id, (legend, expr) in zip(string.ascii_uppercase, exprs.items(), strict=False):
        p = p.with_target(prometheus.Dataquery().ref_id(ref_id).datasource(prometheus_ref()).expr(expr)
                          .legend_format(legend).range())
    return p
