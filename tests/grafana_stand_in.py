"""A local HTTP stand-in for the parts of Grafana's HTTP API that `ioc dashboards push` uses.

No Grafana can be installed here. The stand-in keeps folders, data sources, dashboards and
playlists in memory and answers like Grafana 11 does (shapes from the HTTP API reference):
- auth: `Authorization: Bearer <token>` or basic auth, else 401;
- GET of a missing object: 404 with {"message": ...};
- data sources never return secrets (`secureJsonFields: {"password": true}` instead), provisioned
  ones are `readOnly` and refuse updates (403);
- dashboards: POST /api/dashboards/db sets `id`, `version` (+1 per save), requires an existing
  folder, refuses an existing uid without `overwrite` (412), refuses provisioned dashboards (400);
  GET returns {"dashboard": ..., "meta": {"folderUid", "provisioned", ...}};
- playlists: the legacy /api/playlists endpoints, items returned with `order`.
Every request is logged as (method, path) so tests can assert that a second push wrote nothing.
"""

from __future__ import annotations

import base64
import copy
import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PLAYLIST_ITEM_TYPES = {"dashboard_by_uid", "dashboard_by_id", "dashboard_by_tag"}


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class GrafanaState:
    token: str = ""
    basic: tuple[str, str] | None = None
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)  # datasource uid -> secureJsonData
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)  # uid -> {"dashboard", "meta"}
    playlists: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] != "GET"]

    # -- helpers to set up provisioned objects, as file provisioning would have created them
    def provision_folder(self, uid: str, title: str) -> None:
        self.folders[uid] = {"id": next(self.ids), "uid": uid, "title": title, "version": 1}

    def provision_datasource(self, body: dict[str, Any]) -> None:
        self._store_datasource(body, read_only=True)

    def provision_dashboard(self, model: dict[str, Any], folder_uid: str) -> None:
        stored = copy.deepcopy(model) | {"id": next(self.ids), "version": 1}
        self.dashboards[model["uid"]] = {"dashboard": stored, "meta": {"folderUid": folder_uid, "provisioned": True}}

    def _store_datasource(self, body: dict[str, Any], read_only: bool, existing: dict[str, Any] | None = None) -> dict:
        for key in ("name", "type", "access"):
            if not body.get(key):
                raise ApiError(400, f"bad request data: {key} is required")
        uid = body.get("uid") or (existing or {}).get("uid") or f"ds{next(self.ids)}"
        secrets = self.secrets.setdefault(uid, {})
        secrets.update(body.get("secureJsonData") or {})
        stored = {
            "id": (existing or {}).get("id") or next(self.ids), "uid": uid, "orgId": 1, "name": body["name"],
            "type": body["type"], "access": body["access"], "url": body.get("url", ""),
            "isDefault": bool(body.get("isDefault", False)), "jsonData": copy.deepcopy(body.get("jsonData") or {}),
            "secureJsonFields": {k: True for k in secrets}, "readOnly": read_only,
            "version": (existing or {}).get("version", 0) + 1,
        }
        self.datasources[uid] = stored
        return stored


class _Handler(BaseHTTPRequestHandler):
    state: GrafanaState  # set on the subclass made per server

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read state.requests instead
        pass

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if self.state.token and header == f"Bearer {self.state.token}":
            return True
        if self.state.basic and header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return (user, password) == self.state.basic
        return False

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        self.state.requests.append((method, url.path))
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            if not self._authorized():
                raise ApiError(401, "Unauthorized")
            body = json.loads(raw) if raw else None
            status, answer = _route(self.state, method, url.path, parse_qs(url.query), body)
        except ApiError as exc:
            status, answer = exc.status, {"message": exc.message}
        except (ValueError, KeyError, TypeError) as exc:
            status, answer = 400, {"message": f"bad request: {exc}"}
        self._send(status, answer)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")


def _route(s: GrafanaState, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
    parts = [p for p in path.split("/") if p]
    if parts[:1] != ["api"]:
        raise ApiError(404, "Not found")
    parts = parts[1:]
    match method, parts:
        case "GET", ["health"]:
            return 200, {"database": "ok", "version": "11.6.0-stand-in"}
        case "GET", ["folders", uid]:
            if uid not in s.folders:
                raise ApiError(404, "folder not found")
            return 200, s.folders[uid]
        case "POST", ["folders"]:
            uid = body.get("uid") or f"f{next(s.ids)}"
            if uid in s.folders:
                raise ApiError(409, "a folder with the same uid already exists")
            s.folders[uid] = {"id": next(s.ids), "uid": uid, "title": body["title"], "version": 1}
            return 200, s.folders[uid]
        case "PUT", ["folders", uid]:
            folder = s.folders.get(uid) or _missing("folder not found")
            if not body.get("overwrite") and body.get("version") != folder["version"]:
                raise ApiError(412, "the folder has been changed by someone else")
            folder.update(title=body["title"], version=folder["version"] + 1)
            return 200, folder
        case "GET", ["datasources", "uid", uid]:
            if uid not in s.datasources:
                raise ApiError(404, "Data source not found")
            return 200, s.datasources[uid]
        case "POST", ["datasources"]:
            if body.get("uid") in s.datasources or any(d["name"] == body.get("name") for d in s.datasources.values()):
                raise ApiError(409, "data source with the same name or uid already exists")
            stored = s._store_datasource(body, read_only=False)
            return 200, {"datasource": stored, "id": stored["id"], "message": "Datasource added",
                         "name": stored["name"]}
        case "PUT", ["datasources", "uid", uid]:
            existing = s.datasources.get(uid) or _missing("Data source not found")
            if existing["readOnly"]:
                raise ApiError(403, "Cannot update read-only data source")
            stored = s._store_datasource(body | {"uid": uid}, read_only=False, existing=existing)
            return 200, {"datasource": stored, "id": stored["id"], "message": "Datasource updated"}
        case "GET", ["dashboards", "uid", uid]:
            if uid not in s.dashboards:
                raise ApiError(404, "Dashboard not found")
            return 200, s.dashboards[uid]
        case "POST", ["dashboards", "db"]:
            return 200, _save_dashboard(s, body)
        case "GET", ["playlists"]:
            wanted = query.get("query", [""])[0]
            return 200, [{"uid": p["uid"], "name": p["name"], "interval": p["interval"]}
                         for p in s.playlists.values() if wanted in p["name"]]
        case "GET", ["playlists", uid]:
            if uid not in s.playlists:
                raise ApiError(404, "Playlist not found")
            return 200, s.playlists[uid]
        case "POST", ["playlists"]:
            uid = body.get("uid") or f"p{next(s.ids)}"
            if uid in s.playlists:
                raise ApiError(409, "playlist already exists")
            s.playlists[uid] = _playlist(uid, body)
            return 200, s.playlists[uid]
        case "PUT", ["playlists", uid]:
            if uid not in s.playlists:
                raise ApiError(404, "Playlist not found")
            s.playlists[uid] = _playlist(uid, body)
            return 200, s.playlists[uid]
    raise ApiError(404, f"no route for {method} /api/{'/'.join(parts)}")


def _missing(message: str) -> Any:
    raise ApiError(404, message)


def _save_dashboard(s: GrafanaState, body: dict[str, Any]) -> dict[str, Any]:
    model = copy.deepcopy(body["dashboard"])
    uid = model.get("uid")
    if not uid or not model.get("title"):
        raise ApiError(400, "dashboard needs a uid and a title")
    folder_uid = body.get("folderUid", "")
    if folder_uid and folder_uid not in s.folders:
        raise ApiError(400, "folder not found")
    existing = s.dashboards.get(uid)
    if existing is not None:
        if existing["meta"].get("provisioned"):
            raise ApiError(400, "Cannot save provisioned dashboard")
        if not body.get("overwrite"):
            raise ApiError(412, "A dashboard with the same uid already exists")
    version = (existing["dashboard"]["version"] if existing else 0) + 1
    model["id"] = existing["dashboard"]["id"] if existing else next(s.ids)
    model["version"] = version
    s.dashboards[uid] = {"dashboard": model, "meta": {"folderUid": folder_uid, "provisioned": False,
                                                      "slug": uid, "version": version}}
    return {"id": model["id"], "uid": uid, "url": f"/d/{uid}", "status": "success", "version": version}


def _playlist(uid: str, body: dict[str, Any]) -> dict[str, Any]:
    items = []
    for order, item in enumerate(body.get("items") or [], start=1):
        if item.get("type") not in PLAYLIST_ITEM_TYPES:
            raise ApiError(400, f"invalid playlist item type {item.get('type')!r}")
        items.append({"playlistUid": uid, "type": item["type"], "value": str(item["value"]), "order": order,
                      "title": item.get("title", "")})
    if not body.get("name") or not body.get("interval"):
        raise ApiError(400, "playlist needs a name and an interval")
    return {"uid": uid, "name": body["name"], "interval": body["interval"], "items": items}


@contextmanager
def grafana_stand_in(state: GrafanaState) -> Iterator[str]:
    """Serve `state` on a free loopback port; yields the base URL."""
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
