"""All IOC dashboards, the wall playlist, and their JSON models.

Uids are fixed: provisioning, push and the kiosk/playlist URLs all address dashboards by uid, so a
re-export or a second push updates in place instead of creating copies.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.builders.playlist import Playlist, PlaylistItem
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import filings, network, pipeline, service_centers, service_index, wall
from dashboards.common import FOLDER_TITLE, FOLDER_UID
from dashboards.targets import Targets

__all__ = ["FOLDER_TITLE", "FOLDER_UID", "PLAYLIST_UID", "DashboardSpec", "dashboard_models", "playlist_model"]

PLAYLIST_UID = "ioc-wall-rotation"
PLAYLIST_NAME = "IOC wall rotation"
PLAYLIST_INTERVAL = "1m"


@dataclass(frozen=True)
class DashboardSpec:
    uid: str
    slug: str  # file name of the exported model
    build: Callable[[Targets], Dashboard]
    in_playlist: bool


DASHBOARDS: tuple[DashboardSpec, ...] = (
    DashboardSpec(wall.UID, "ioc-wall", wall.build, True),
    DashboardSpec(service_centers.UID, "service-centers", service_centers.build, True),
    DashboardSpec(filings.UID, "filings", filings.build, True),
    DashboardSpec(network.UID, "network", network.build, True),
    DashboardSpec(service_index.UID, "service-index", service_index.build, True),
    DashboardSpec(pipeline.UID, "pipeline", pipeline.build, False),
)


def to_json(obj: Any) -> Any:
    """An SDK object (or builder product) as plain JSON data."""
    return json.loads(json.dumps(obj, cls=JSONEncoder))


def dashboard_models(targets: Targets | None = None) -> dict[str, dict[str, Any]]:
    """uid -> dashboard JSON model, thresholds from the scenario's [targets]."""
    targets = targets or Targets.from_scenario()
    models = {}
    for spec in DASHBOARDS:
        model = to_json(spec.build(targets).build())
        # Stable panel ids (the SDK leaves them to Grafana): links like ?viewPanel=N keep working.
        for number, panel in enumerate(model.get("panels", []), start=1):
            panel["id"] = number
        if model.get("uid") != spec.uid:
            raise AssertionError(f"dashboard {spec.slug} built with uid {model.get('uid')!r}, expected {spec.uid!r}")
        models[spec.uid] = model
    return models


def playlist_model() -> dict[str, Any]:
    """The wall rotation: the wall between each drill-down, so the headline numbers come back often."""
    rotation: list[str] = []
    for spec in DASHBOARDS:
        if spec.in_playlist and spec.uid != wall.UID:
            rotation += [wall.UID, spec.uid]
    titles = {spec.uid: spec.slug for spec in DASHBOARDS}
    items = [PlaylistItem().type("dashboard_by_uid").value(uid).title(titles[uid]) for uid in rotation]
    return to_json(Playlist().uid(PLAYLIST_UID).name(PLAYLIST_NAME).interval(PLAYLIST_INTERVAL).items(items).build())
