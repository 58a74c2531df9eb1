"""Versioned schema migrations: `ioc db migrate --clickhouse DSN` calls `migrate(dsn, settings)`.

Migrations are the files `sinks/migrations/NNNN_name.sql`, applied in order, each recorded with its
checksum in `schema_migrations`; an applied migration is never re-run, and editing one after it was
applied is an error (write a new one). ClickHouse DDL is not transactional, so every statement is
written to be re-runnable (IF NOT EXISTS): a migration interrupted halfway is simply applied again.

Migration files are literal SQL and take no parameters. What depends on configuration is applied
after them, on every run, as reconciliation that does nothing when nothing changed:
- raw-event TTL from `raw_ttl_days`, counted from ingestion (ALTER ... MODIFY TTL only if it
  differs; 0 removes it);
- the dimension tables from models/reference.py (reloaded only if the reference data changed);
- the read-only user for Grafana (on a server; chDB has no users and no network, so it is skipped
  with a logged message).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from importlib import resources

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from models.settings import Settings
from sinks.client import connect, is_embedded
from sinks.dimensions import load_reference
from sinks.dsn import dsn_database, normalize_dsn, redact_dsn
from sinks.sql import identifier, split_statements, string_literal
from sinks.tables import RAW_TABLES

log = logging.getLogger(__name__)

_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_TTL_DAYS = re.compile(r"\bTTL\b.*?toIntervalDay\((\d+)\)")

MIGRATIONS_TABLE_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version UInt32,
    name String,
    checksum String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def statements(self) -> list[str]:
        return split_statements(self.sql)


@dataclass
class MigrationReport:
    database: str
    applied: list[str] = field(default_factory=list)  # migrations applied by this run
    already_applied: list[str] = field(default_factory=list)
    ttl_changes: list[str] = field(default_factory=list)
    reference_reloaded: list[str] = field(default_factory=list)
    reader: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.applied or self.ttl_changes or self.reference_reloaded)


def load_migrations() -> list[Migration]:
    found: list[Migration] = []
    for entry in resources.files("sinks.migrations").iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions in sinks/migrations: {versions}")
    return found


def migrate(dsn: str, settings: Settings, *, database: str | None = None) -> MigrationReport:
    """Bring the database named by `dsn` (or `database`) up to the latest schema.

    Creates the database first if the DSN names one that does not exist yet.
    """
    dsn = normalize_dsn(dsn)
    database = database or dsn_database(dsn)
    if database:
        admin = connect(dsn, settings, database="default")
        try:
            admin.command(f"CREATE DATABASE IF NOT EXISTS {identifier(database)}")
        finally:
            admin.close()
    client = connect(dsn, settings, database=database)
    try:
        report = migrate_client(client, settings)
    finally:
        client.close()
    log.info(
        "clickhouse %s (database %s): applied %s; ttl %s; reference %s; reader: %s",
        redact_dsn(dsn), report.database, report.applied or "nothing new", report.ttl_changes or "unchanged",
        report.reference_reloaded or "unchanged", report.reader,
    )
    return report


def migrate_client(client: Client, settings: Settings) -> MigrationReport:
    """`migrate` on an open client (its current database)."""
    client.command(MIGRATIONS_TABLE_DDL)
    report = MigrationReport(database=str(client.command("SELECT currentDatabase()")))
    applied = {
        int(version): checksum
        for version, checksum in client.query("SELECT version, checksum FROM schema_migrations FINAL").result_rows
    }
    for migration in load_migrations():
        label = f"{migration.version:04d}_{migration.name}"
        if migration.version in applied:
            if applied[migration.version] != migration.checksum:
                raise RuntimeError(
                    f"migration {label} changed after it was applied; add a new migration instead of editing it"
                )
            report.already_applied.append(label)
            continue
        for statement in migration.statements:
            client.command(statement)
        client.insert(
            "schema_migrations",
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
        report.applied.append(label)
    report.ttl_changes = reconcile_raw_ttl(client, settings.raw_ttl_days)
    report.reference_reloaded = load_reference(client)
    report.reader = ensure_reader(client, settings)
    return report


def current_raw_ttl(client: Client) -> dict[str, int | None]:
    """Raw table -> TTL in days (None: no TTL), read from the table definitions."""
    rows = client.query(
        "SELECT name, engine_full FROM system.tables "
        "WHERE database = currentDatabase() AND name IN {names:Array(String)}",
        parameters={"names": list(RAW_TABLES.values())},
    ).result_rows
    out: dict[str, int | None] = {}
    for name, engine_full in rows:
        match = _TTL_DAYS.search(engine_full)
        out[name] = int(match.group(1)) if match else None
    return out


def reconcile_raw_ttl(client: Client, days: int) -> list[str]:
    """Make every raw table expire rows `days` after they were ingested (0: keep forever).

    The clock is ingestion, not event time: replays load historical days (e.g. a recorded July 2025),
    and a TTL on event_time would delete them at the first merge after loading.
    """
    days = int(days)  # interpolated into DDL (TTL takes no parameters): it must be a plain integer
    changes: list[str] = []
    for table, current in current_raw_ttl(client).items():
        if days > 0 and current != days:
            ttl = f"toDateTime(ingested_at) + toIntervalDay({days})"
            client.command(f"ALTER TABLE {identifier(table)} MODIFY TTL {ttl}")
            changes.append(f"{table}: {current or 'none'} -> {days} days")
        elif days <= 0 and current is not None:
            client.command(f"ALTER TABLE {identifier(table)} REMOVE TTL")
            changes.append(f"{table}: {current} days -> none")
    return changes


def ensure_reader(client: Client, settings: Settings) -> str:
    """Create (or update) the read-only user Grafana connects as, with SELECT on this database only."""
    user = settings.clickhouse_reader_user
    if not user:
        return "skipped: IOC_CLICKHOUSE_READER_USER is empty"
    if is_embedded(client):
        message = (
            f"skipped: chDB is embedded (no users, no network access), so the read-only user {user!r} "
            "is not created; run `ioc db migrate --clickhouse http(s)://...` against a ClickHouse server "
            "for Grafana"
        )
        log.warning(message)
        return message
    if not settings.clickhouse_reader_password:
        message = f"skipped: set IOC_CLICKHOUSE_READER_PASSWORD (or _FILE) to create the read-only user {user!r}"
        log.warning(message)
        return message
    database = identifier(str(client.command("SELECT currentDatabase()")))
    role = identifier(f"{user}_role")
    password = string_literal(settings.clickhouse_reader_password)
    statements = [
        f"CREATE ROLE IF NOT EXISTS {role}",
        f"GRANT SELECT ON {database}.* TO {role}",
        f"CREATE USER IF NOT EXISTS {identifier(user)} IDENTIFIED WITH sha256_password BY {password}",
        # Keeps the password in step with the setting when the user already existed.
        f"ALTER USER {identifier(user)} IDENTIFIED WITH sha256_password BY {password}",
        f"GRANT {role} TO {identifier(user)}",
        # readonly = 2: no writes or DDL, but Grafana may still set query settings (timeouts, limits).
        f"ALTER USER {identifier(user)} DEFAULT ROLE {role} SETTINGS readonly = 2",
    ]
    try:
        for statement in statements:
            client.command(statement)
    except DatabaseError as exc:
        # Never log the statement: it carries the password.
        message = f"failed: could not create the read-only user {user!r} (code {getattr(exc, 'code', None)})"
        log.warning("%s; grant the migrating user ACCESS MANAGEMENT or create it by hand", message)
        return message
    return f"ok: {user} (SELECT on {database}.*)"
