"""Table names: the contract between the streams (writers), the dashboards and the briefing (readers)."""

from __future__ import annotations

from models.events import FAMILIES

# family name -> raw events table
RAW_TABLES: dict[str, str] = {name: f"raw_{name}" for name in FAMILIES}
# family name -> windowed aggregates table (ReplacingMergeTree(version); read with FINAL)
AGG_TABLES: dict[str, str] = {name: f"agg_{name}" for name in FAMILIES}
NETWORK_OUTAGES = "network_outages"
LATE_EVENTS = "late_events"
INCIDENTS = "incidents"  # ReplacingMergeTree(version) on incident_id
INCIDENT_ACKS = "incident_acks"
DEADLETTERS = "deadletters"
DEADLETTER_COUNTS = "deadletter_counts"  # view
# Daily rollups as readers see them (views with FINAL over rollup_daily_* storage).
DAILY_VIEWS = ("daily_filings", "daily_service_center", "daily_network")
ROLLUP_TABLES = tuple(f"rollup_{name}" for name in DAILY_VIEWS)
DIMENSION_TABLES = ("dim_provinces", "dim_communes", "dim_agencies", "dim_procedures", "dim_centers", "dim_nodes")
