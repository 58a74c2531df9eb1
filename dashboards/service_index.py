"""Service index and map: the Decision 766/QD-TTg index (sinks/service_index.py) with its five groups,
the ranking of communes and agencies, and a Geomap of communes (by index), service centers (by wait)
and network nodes (by link state) at their reference coordinates (approximate: models/reference.py).

The index is a daily rollup: "today" is the newest day computed up to the end of the range.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import geomap
from grafana_foundation_sdk.builders.common import FrameGeometrySource, MapLayerOptions
from grafana_foundation_sdk.builders.dashboard import Dashboard, DashboardLink, ThresholdsConfig
from grafana_foundation_sdk.models.common import FrameGeometrySourceMode
from grafana_foundation_sdk.models.dashboard import DynamicConfigValue, GridPos, Threshold, ThresholdsMode
from grafana_foundation_sdk.models.geomap import TooltipMode

from dashboards.common import TIMEZONE, TODAY, base, incidents_annotation
from dashboards.datasource import ref
from dashboards.panels import _target, stat_panel, table_panel
from dashboards.targets import GREEN, ORANGE, RED, Targets

UID = "ioc-service-index"
GROUPS = (("transparency", "Transparency", 18), ("progress", "Progress (on time)", 20),
          ("online", "Online services", 22), ("satisfaction", "Satisfaction", 18),
          ("digitisation", "Digitisation", 22))
# The newest computed day up to the end of the range, local time.
INDEX_DAY = f"day = (SELECT max(day) FROM service_index WHERE day <= toDate($__toTime, '{TIMEZONE}'))"


def index_thresholds(points: float = 100) -> ThresholdsConfig:
    """Red below 60% of the points, orange to 80%, green above (a reading aid, not the Decision's grades)."""
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps([
        Threshold(value=None, color=RED), Threshold(value=0.6 * points, color=ORANGE),
        Threshold(value=0.8 * points, color=GREEN)])


def province_index(column: str, period: str = "mtd") -> str:
    return (f"SELECT {column} FROM service_index WHERE period = '{period}' AND unit_level = 'province' "
            f"AND {INDEX_DAY}")


def index_row(d: Dashboard, *, big: bool) -> Dashboard:
    """The total and the five groups, month to date, for the province: the wall's first row too."""
    d = d.with_panel(stat_panel("Service index (766), month to date", province_index("total"), unit="none",
                                decimals=1, thresholds=index_thresholds(), big=big, w=4, h=5,
                                description="Decision 766/QD-TTg, out of 100; weights in models/service_index.toml."))
    for column, title, points in GROUPS:
        d = d.with_panel(stat_panel(f"{title} /{points}", province_index(column), unit="none", decimals=1,
                                    thresholds=index_thresholds(points), big=big, w=4, h=5))
    return d


def ranking(level: str, names: str, key: str) -> str:
    return f"""
        SELECT i.rank AS rank, ifNull(n.name, i.unit_code) AS unit, i.total AS total,
               i.transparency AS transparency, i.progress AS progress, i.online AS online,
               i.satisfaction AS satisfaction, i.digitisation AS digitisation, i.dossiers AS dossiers
        FROM (SELECT * FROM service_index WHERE period = 'mtd' AND unit_level = '{level}' AND {INDEX_DAY}) AS i
        LEFT JOIN {names} AS n ON n.{key} = i.unit_code
        ORDER BY rank, unit
        LIMIT 200
    """


COMMUNES_BY_INDEX = f"""
    SELECT c.name AS name, c.latitude AS latitude, c.longitude AS longitude, i.total AS index_total
    FROM dim_communes AS c
    INNER JOIN (SELECT unit_code, total FROM service_index
                WHERE period = 'mtd' AND unit_level = 'commune' AND {INDEX_DAY}) AS i ON i.unit_code = c.commune_code
    WHERE c.latitude IS NOT NULL
"""
CENTERS_BY_WAIT = f"""
    SELECT c.name AS name, c.latitude AS latitude, c.longitude AS longitude,
           ioc_sketch_quantile(w.sketch, 0.9) / 60 AS wait_p90_min
    FROM dim_centers AS c
    INNER JOIN (SELECT center_id, sumMap(wait_sketch) AS sketch FROM agg_service_center FINAL
                WHERE {TODAY} GROUP BY center_id) AS w ON w.center_id = c.center_id
    WHERE c.latitude IS NOT NULL
"""
NODES_BY_STATE = """
    SELECT n.node_id AS name, n.latitude AS latitude, n.longitude AS longitude, s.up AS link_up
    FROM dim_nodes AS n
    INNER JOIN (SELECT node_id, argMax(link_up, event_time) AS up FROM raw_network FINAL
                WHERE event_time > $__toTime - INTERVAL 2 MINUTE AND event_time <= $__toTime
                GROUP BY node_id) AS s ON s.node_id = n.node_id
    WHERE n.latitude IS NOT NULL
"""


def _markers(name: str, ref_id: str, color_field: str, size: int) -> MapLayerOptions:
    return (
        MapLayerOptions().type("markers").name(name).tooltip(True)
        .location(FrameGeometrySource().mode(FrameGeometrySourceMode.COORDS).latitude("latitude")
                  .longitude("longitude"))
        .filter_data({"id": "byRefId", "options": ref_id})
        .config({"showLegend": True, "style": {"color": {"field": color_field, "fixed": "blue"},
                                               "size": {"fixed": size}, "opacity": 0.8}})
    )


def _steps(*steps: tuple[float | None, str]) -> DynamicConfigValue:
    return DynamicConfigValue(id_val="thresholds", value={"mode": "absolute", "steps": [
        {"value": v, "color": c} for v, c in steps]})


def map_panel(w: int = 24, h: int = 14) -> geomap.Panel:
    """Communes by index, centers by wait p90, nodes by link state; drill-down links in the panel."""
    return (
        geomap.Panel()
        .title("Map: communes by index, centers by wait, network nodes by link")
        .description("Coordinates are approximate (district centroids, models/reference.py).")
        .datasource(ref())
        .targets([_target(COMMUNES_BY_INDEX, time_series=False).ref_id("A"),
                  _target(CENTERS_BY_WAIT, time_series=False).ref_id("B"),
                  _target(NODES_BY_STATE, time_series=False).ref_id("C")])
        .view(geomap.MapViewConfig().id("coords").lat(15).lon(108).zoom(8))
        .basemap(MapLayerOptions().type("default").name("Basemap"))
        .layers([_markers("Communes (index)", "A", "index_total", 7),
                 _markers("Service centers (wait p90, min)", "B", "wait_p90_min", 5),
                 _markers("Network nodes (link up)", "C", "link_up", 4)])
        .tooltip(geomap.TooltipOptions().mode(TooltipMode.DETAILS))
        .controls(geomap.ControlsOptions().show_zoom(True).mouse_wheel_zoom(True).show_scale(True))
        .override_by_name("index_total", [_steps((None, RED), (60, ORANGE), (80, GREEN))])
        .override_by_name("wait_p90_min", [_steps((None, GREEN), (15, ORANGE), (30, RED))])
        .override_by_name("link_up", [_steps((None, RED), (1, GREEN))])
        .links([DashboardLink("Service centers").url("/d/ioc-service-centers?${__url_time_range}"),
                DashboardLink("Network health").url("/d/ioc-network?${__url_time_range}"),
                DashboardLink("Filings").url("/d/ioc-filings?${__url_time_range}")])
        .grid_pos(GridPos(h=h, w=w, x=0, y=0))
    )


def build(targets: Targets) -> Dashboard:
    del targets  # the index has its own scale (points), not the KPI targets
    d = base(UID, "Service index and map", extra_tags=("index", "map"), time_from="now/d",
             description="Decision 766/QD-TTg service index, rankings, and the province on a map.")
    d = index_row(d, big=False)
    d = d.with_panel(map_panel(w=12, h=16))
    units = {c: "none" for c in ("total", *(g for g, _, _ in GROUPS))}
    d = d.with_panel(table_panel("Communes, month to date (rank 1 = best)",
                                 ranking("commune", "dim_communes", "commune_code"), w=12, h=16, units=units))
    d = d.with_panel(table_panel("Agencies, month to date (rank 1 = best)",
                                 ranking("agency", "dim_agencies", "agency_code"), w=24, h=12, units=units))
    d = d.with_panel(table_panel(
        "Province index by day", """
            SELECT day, total, transparency, progress, online, satisfaction, digitisation, dossiers
            FROM service_index
            WHERE period = 'day' AND unit_level = 'province' AND day <= toDate($__toTime, 'Asia/Ho_Chi_Minh')
            ORDER BY day DESC
            LIMIT 31
        """, w=24, h=8, units=units))
    return d.annotation(incidents_annotation("Incidents", "1 = 1"))
