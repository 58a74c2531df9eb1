"""Operators' side of the incidents in ClickHouse: list them, acknowledge one (`ioc incidents`).

The engine owns `incidents` (versioned rows); acknowledgements go to `incident_acks`, a table of their
own, so an operator's write never races the engine's next version of the same incident. The view
`incidents_current` joins the two into the lifecycle state: open -> acknowledged -> resolved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client

STATES = ("open", "acknowledged", "resolved")


@dataclass(frozen=True)
class IncidentRow:
    incident_id: str
    state: str
    severity: str
    family: str
    subject: str
    title: str
    start: datetime  # UTC
    end: datetime | None
    subjects: int
    communes: int
    acknowledged_by: str | None


def list_incidents(client: Client, states: tuple[str, ...] = ("open", "acknowledged"), limit: int = 50,
                   since: datetime | None = None) -> list[IncidentRow]:
    """Incidents in these states, open ones first, most severe first, newest first."""
    unknown = set(states) - set(STATES)
    if unknown:
        raise ValueError(f"unknown state(s) {sorted(unknown)}; known: {', '.join(STATES)}")
    rows = client.query(
        """SELECT incident_id, state, severity, family, subject, title, start, `end`, length(subjects),
                  length(communes), acknowledged_by
           FROM incidents_current
           WHERE has({states:Array(String)}, state) AND (`end` IS NULL OR `end` >= {since:DateTime64(3, 'UTC')})
           ORDER BY state = 'resolved', indexOf(['critical', 'warning', 'info'], severity), start DESC
           LIMIT {limit:UInt32}""",
        parameters={"states": list(states), "since": since or datetime(1970, 1, 1), "limit": limit}).result_rows
    return [IncidentRow(*r[:6], _utc(r[6]), _utc(r[7]), *r[8:]) for r in rows]


def _utc(value: datetime | None) -> datetime | None:
    """clickhouse-connect returns naive datetimes for DateTime64(3, 'UTC') columns: they are UTC."""
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


def acknowledge(client: Client, incident_id: str, by: str, note: str = "", at: datetime | None = None) -> str:
    """Mark an incident acknowledged (again: the latest acknowledgement wins); its state afterwards."""
    found = client.query("SELECT state FROM incidents_current WHERE incident_id = {id:String}",
                         parameters={"id": incident_id}).result_rows
    if not found:
        raise LookupError(f"no incident {incident_id!r} (see `ioc incidents list`)")
    at = at or datetime.now(UTC)
    client.insert("incident_acks", [[incident_id, at, by, note]],
                  column_names=["incident_id", "acknowledged_at", "acknowledged_by", "note"])
    return str(client.query("SELECT state FROM incidents_current WHERE incident_id = {id:String}",
                            parameters={"id": incident_id}).result_rows[0][0])
