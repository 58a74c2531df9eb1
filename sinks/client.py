"""One way to open ClickHouse: `connect(dsn, settings)` for a server (HTTP) and for embedded chDB alike.

Both go through `clickhouse_connect.get_client(dsn=...)`, so the writer, the migrations, the
dashboards' tests and the briefing run the same client code on either engine. Credentials come from
`Settings` (env or `IOC_*_FILE`), never from DSNs kept in the repository; a user named in the DSN is
used only when `IOC_CLICKHOUSE_USER` is empty.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.httputil import get_pool_manager

from models.settings import Settings
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
        # clickhouse-connect (1.12) takes host, port and database from a DSN but not its scheme: it
        # infers TLS from the port (443/8443 only), so `https://ch:9440` went out as plain HTTP,
        # password included, and the CA setting was ignored (tests/test_security.py).
        args["interface"] = "https"
        args["pool_mgr"] = _tls_pool(settings.clickhouse_verify_tls, settings.clickhouse_ca_cert)
    args.update(client_args)
    return clickhouse_connect.get_client(dsn=dsn, **args)


_tls_pools: dict[tuple[bool, str], Any] = {}
_tls_pools_lock = threading.Lock()


def _tls_pool(verify: bool, ca_cert: str) -> Any:
    """One shared HTTPS connection pool per TLS configuration, owned here and not by a client.

    A client given `verify`/`ca_cert` builds and owns a pool, and its `close()` then fails with the
    urllib3 this project installs (grafana-client -> niquests -> urllib3-future replaces urllib3:
    `'TrafficPolice' object has no attribute 'lock'`), so every migration, writer reset and briefing
    over TLS crashed on close. Plain HTTP shares clickhouse-connect's default pool the same way.
    """
    with _tls_pools_lock:
        key = (verify, ca_cert)
        if key not in _tls_pools:
            _tls_pools[key] = get_pool_manager(verify=verify, ca_cert=ca_cert or None)
        return _tls_pools[key]


def is_embedded(client: Client) -> bool:
    """True for an in-process chDB client (no users, no network, one process per store)."""
    return type(client).__name__ == "ChdbClient" or str(getattr(client, "uri", "")).startswith("chdb:")
