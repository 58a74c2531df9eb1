"""ClickHouse DSNs: `http(s)://[user@]host:port[/database]` for a server, `chdb://PATH` for embedded chDB.

clickhouse-connect parses `chdb://` DSNs as URLs: in `chdb://./var/ioc.chdb` (our documented default)
the netloc `.` becomes the store and `var` the database, and `chdb://var/ioc.chdb` would open a store
named `var`. We therefore read everything after `chdb://` as a filesystem path and hand
clickhouse-connect the unambiguous absolute form `chdb:///abs/path`. A `?database=NAME` query part
is kept (clickhouse-connect reads it), which is how tests put each case in its own database.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

CHDB_SCHEME = "chdb://"
_MEMORY = ("", "memory", ":memory:")


def is_chdb(dsn: str) -> bool:
    return dsn.startswith("chdb:")


def chdb_path(dsn: str) -> str:
    """The store location of a chdb DSN as written (before normalisation), without the query part."""
    return dsn[len(CHDB_SCHEME) :].partition("?")[0] if dsn.startswith(CHDB_SCHEME) else dsn[len("chdb:") :]


def normalize_dsn(dsn: str, cwd: Path | None = None) -> str:
    """Return a DSN clickhouse-connect reads as intended.

    - `chdb://./var/ioc.chdb`, `chdb://var/ioc.chdb`, `chdb://~/x`, `chdb:///abs` -> `chdb:///abs/...`
      (relative paths resolve against `cwd`, default the process working directory);
    - `chdb://memory` and `chdb://:memory:` stay in-memory;
    - server DSNs are returned unchanged.
    """
    dsn = dsn.strip()
    if not is_chdb(dsn):
        if "://" not in dsn:
            raise ValueError(f"not a ClickHouse DSN (expected http(s)://host:port or chdb://PATH): {dsn!r}")
        return dsn
    rest = dsn[len(CHDB_SCHEME) :] if dsn.startswith(CHDB_SCHEME) else dsn[len("chdb:") :]
    location, sep, query = rest.partition("?")
    if location in _MEMORY:
        return f"chdb://memory{sep}{query}"
    path = Path(location).expanduser()
    if not path.is_absolute():
        path = (cwd or Path.cwd()) / path
    # resolve() collapses `./` and `..`: chDB compares engine paths literally, one path per process.
    return f"chdb://{path.resolve()}{sep}{query}"  # resolve() is absolute: "chdb://" + "/abs/..."


def with_database(dsn: str, database: str | None) -> str:
    """The same DSN pointing at `database` (None: the DSN's own or the server default)."""
    if database is None:
        return dsn
    if is_chdb(dsn):
        location, _, _ = dsn.partition("?")
        return f"{location}?database={database}"
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def dsn_database(dsn: str) -> str | None:
    """The database a DSN names, if any."""
    if is_chdb(dsn):
        _, _, query = dsn.partition("?")
        for item in query.split("&"):
            key, _, value = item.partition("=")
            if key == "database" and value:
                return value
        return None
    path = urlsplit(dsn).path.strip("/")
    return path.split("/")[0] or None


def redact_dsn(dsn: str) -> str:
    """A DSN safe to log: any password is replaced by `***`."""
    if is_chdb(dsn):
        return dsn
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    user = parts.username or ""
    host = parts.hostname or ""
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
