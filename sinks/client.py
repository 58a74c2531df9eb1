"""One way to open ClickHouse: `connect(dsn, settings)` for a server (HTTP) and for embedded chDB alike.

Both go through `clickhouse_connect.get_client(dsn=...)`, so the writer, the migrations, the
dashboards' tests and the briefing run the same client code on either engine. Credentials come from
`Settings` (env or `IOC_*_FILE`), never from DSNs kept in the repository; a user named in the DSN is
used only when `IOC_CLICKHOUSE_USER` is empty.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from ioc.config import Settings
from sinks.dsn import chdb_path, is_chdb, normalize_dsn, with_database

log = logging.getLogger(__name__)


def connect(dsn: str, settings: Settings, *, database: str | None = None, **client_args: Any) -> Client:
    """A clickhouse-connect client for `dsn` (`database` overrides the DSN's database).

    chDB: one engine per process and one store path per engine; clients on the same path share it.
    HTTP: no server session is requested, so one client may serve several threads one call at a
    time (a session would reject overlapping queries); callers that share a client still serialise
    their calls, as `sinks.writer.ClickHouseWriter` does.
    """
    dsn = with_database(normalize_dsn(dsn), database)
    if is_chdb(dsn):
        location = chdb_path(dsn)
        if location.startswith("/"):
            Path(location).parent.mkdir(parents=True, exist_ok=True)
        return clickhouse_connect.get_client(dsn=dsn, **client_args)
    args: dict[str, Any] = {"autogenerate_session_id": False}
    if settings.clickhouse_user:
        args["username"] = settings.clickhouse_user
    if settings.clickhouse_password:
        args["password"] = settings.clickhouse_password
    if dsn.startswith("https:"):
        args["verify"] = settings.clickhouse_verify_tls
        if settings.clickhouse_ca_cert:
            args["ca_cert"] = settings.clickhouse_ca_cert
    args.update(client_args)
    return clickhouse_connect.get_client(dsn=dsn, **args)


def is_embedded(client: Client) -> bool:
    """True for an in-process chDB client (no users, no network, one process per store)."""
    return type(client).__name__ == "ChdbClient" or str(getattr(client, "uri", "")).startswith("chdb:")
