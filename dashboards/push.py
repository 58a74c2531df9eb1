"""`ioc dashboards push --grafana-url URL`: folder, data source, dashboards and playlist, idempotently.

Each object is read first and written only when it differs from the code (or is missing), so a
second push makes no write request at all. Objects Grafana reports as provisioned from files
(data source `readOnly`, dashboard `meta.provisioned`) are left alone: the files own them, and the
API would refuse the write. That lets the compose stack run push just for the playlist, which
file provisioning cannot create.

The reader password is sent when the data source is created, and again only with
`update_secrets` (Grafana never returns a stored secret, so it cannot be compared).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

from dashboards.catalog import FOLDER_TITLE, FOLDER_UID, PLAYLIST_UID, dashboard_models, playlist_model
from dashboards.datasource import (
    DATASOURCE_UID,
    PROMETHEUS_UID,
    ClickHouseEndpoint,
    api_datasource,
    prometheus_datasource,
)
from dashboards.targets import Targets
from models.settings import Settings

log = logging.getLogger(__name__)
# Fields Grafana sets on save; they are not part of what the code defines.
_SERVER_FIELDS = ("id", "version")


@dataclass
class PushReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # provisioned from files

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)

    def lines(self) -> list[str]:
        return [f"{verb:9} {', '.join(items)}" for verb, items in
                (("created", self.created), ("updated", self.updated), ("unchanged", self.unchanged),
                 ("skipped", self.skipped)) if items]


def connect(url: str, settings: Settings, timeout: float = 10.0) -> GrafanaApi:
    """A grafana-client API with a token (IOC_GRAFANA_TOKEN) or basic auth (IOC_GRAFANA_USER/_PASSWORD)."""
    credential: str | tuple[str, str]
    if settings.grafana_token:
        credential = settings.grafana_token
    elif settings.grafana_user:
        credential = (settings.grafana_user, settings.grafana_password)
    else:
        raise ValueError("no Grafana credentials: set IOC_GRAFANA_TOKEN (a service-account token) "
                         "or IOC_GRAFANA_USER and IOC_GRAFANA_PASSWORD")
    return GrafanaApi.from_url(url, credential=credential, timeout=timeout)


def _get(call: Any, *args: Any) -> Any | None:
    """A GET that returns None on 404 (grafana-client raises for every 4xx)."""
    try:
        return call(*args)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise


def _strip(model: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in model.items() if k not in _SERVER_FIELDS}


def ensure_folder(api: GrafanaApi, report: PushReport) -> None:
    current = _get(api.folder.get_folder, FOLDER_UID)
    name = f"folder {FOLDER_UID}"
    if current is None:
        api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        report.created.append(name)
    elif current.get("title") != FOLDER_TITLE:
        api.folder.update_folder(FOLDER_UID, title=FOLDER_TITLE, overwrite=True)
        report.updated.append(name)
    else:
        report.unchanged.append(name)


def ensure_datasource(api: GrafanaApi, endpoint: ClickHouseEndpoint, settings: Settings, report: PushReport,
                      update_secrets: bool = False) -> None:
    name = f"datasource {DATASOURCE_UID}"
    current = _get(api.datasource.get_datasource_by_uid, DATASOURCE_UID)
    if current is None:
        if not settings.clickhouse_reader_password:
            raise ValueError("set IOC_CLICKHOUSE_READER_PASSWORD (or _FILE): the data source needs it")
        api.datasource.create_datasource(api_datasource(endpoint, settings, with_password=True))
        report.created.append(name)
        return
    if current.get("readOnly"):
        report.skipped.append(name)
        return
    desired = api_datasource(endpoint, settings, with_password=False)
    json_data = current.get("jsonData") or {}
    same = (all(current.get(k) == desired[k] for k in ("name", "type", "access", "isDefault"))
            and all(json_data.get(k) == v for k, v in desired["jsonData"].items()))  # type: ignore[union-attr]
    has_password = bool((current.get("secureJsonFields") or {}).get("password"))
    if same and has_password and not update_secrets:
        report.unchanged.append(name)
        return
    send_password = update_secrets or not has_password
    if send_password and not settings.clickhouse_reader_password:
        raise ValueError("set IOC_CLICKHOUSE_READER_PASSWORD (or _FILE) to store the reader's password")
    api.datasource.update_datasource_by_uid(DATASOURCE_UID, api_datasource(endpoint, settings,
                                                                           with_password=send_password))
    report.updated.append(name)


def ensure_prometheus(api: GrafanaApi, url: str, report: PushReport) -> None:
    """The Prometheus data source the pipeline dashboard's worker panels read."""
    name = f"datasource {PROMETHEUS_UID}"
    desired = prometheus_datasource(url)
    current = _get(api.datasource.get_datasource_by_uid, PROMETHEUS_UID)
    if current is None:
        api.datasource.create_datasource(desired)
        report.created.append(name)
    elif current.get("readOnly"):
        report.skipped.append(name)
    elif all(current.get(k) == desired[k] for k in ("name", "type", "url")):
        report.unchanged.append(name)
    else:
        api.datasource.update_datasource_by_uid(PROMETHEUS_UID, desired)
        report.updated.append(name)


def ensure_dashboard(api: GrafanaApi, model: dict[str, Any], report: PushReport) -> None:
    uid = model["uid"]
    name = f"dashboard {uid}"
    current = _get(api.dashboard.get_dashboard, uid)
    if current is not None:
        meta = current.get("meta") or {}
        if meta.get("provisioned"):
            report.skipped.append(name)
            return
        if _strip(current.get("dashboard") or {}) == _strip(model) and meta.get("folderUid") == FOLDER_UID:
            report.unchanged.append(name)
            return
    api.dashboard.update_dashboard({
        "dashboard": _strip(model),
        "folderUid": FOLDER_UID,
        "overwrite": True,  # the uid is ours: replace whatever version is there
        "message": "ioc dashboards push",
    })
    (report.created if current is None else report.updated).append(name)


def _playlist_items(playlist: dict[str, Any]) -> list[tuple[str, str]]:
    items = sorted(playlist.get("items") or [], key=lambda i: i.get("order", 0))
    return [(str(i.get("type")), str(i.get("value"))) for i in items]


def ensure_playlist(api: GrafanaApi, report: PushReport) -> None:
    """Grafana has no playlist element in grafana-client: the legacy /api/playlists endpoints."""
    desired = playlist_model()
    name = f"playlist {PLAYLIST_UID}"
    current = _get(api.client.GET, f"/playlists/{PLAYLIST_UID}")
    if current is None:
        # Grafana versions that ignore a client-chosen uid: find ours by its exact name instead.
        found = [p for p in api.client.GET("/playlists", params={"query": desired["name"]}) or []
                 if p.get("name") == desired["name"]]
        if found:
            current = api.client.GET(f"/playlists/{found[0]['uid']}")
    body = {"name": desired["name"], "interval": desired["interval"], "items": desired["items"]}
    if current is None:
        api.client.POST("/playlists", json={"uid": PLAYLIST_UID, **body})
        report.created.append(name)
    elif (current.get("name"), current.get("interval"), _playlist_items(current)) == (
            desired["name"], desired["interval"], _playlist_items(desired)):
        report.unchanged.append(name)
    else:
        api.client.PUT(f"/playlists/{current['uid']}", json=body)
        report.updated.append(name)


def push(api: GrafanaApi, endpoint: ClickHouseEndpoint, settings: Settings, *, scenario: str = "default",
         update_secrets: bool = False, prometheus_url: str = "") -> PushReport:
    """`prometheus_url`: where Grafana reaches Prometheus; empty leaves that data source alone (the
    worker panels then show "data source not found" until one with uid ioc-prometheus exists)."""
    report = PushReport()
    ensure_folder(api, report)
    ensure_datasource(api, endpoint, settings, report, update_secrets=update_secrets)
    if prometheus_url:
        ensure_prometheus(api, prometheus_url, report)
    for model in dashboard_models(Targets.from_scenario(scenario)).values():
        ensure_dashboard(api, model, report)
    ensure_playlist(api, report)
    log.info("grafana push: %s", "; ".join(report.lines()))
    return report
