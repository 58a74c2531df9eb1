"""Ground truth: the incidents a simulation injects, with what each one hits.

`ioc simulate` writes them into `manifest.json` ("incidents") and `ioc bench alerts` scores the
stream's incidents against them: an injected incident is detected when an incident of its family
touches one of its subjects while it lasts (or within `MATCH_SLACK_MS` after: a queue outlives its
surge), and an incident that matches no injected one is a false alarm.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from models.reference import downstream
from simulators.scenario import DegradedLink, Incident, NodeOutage, PortalOutage, QueueSurge
from simulators.world import World

MATCH_SLACK_MS = 60 * 60_000


@dataclass(frozen=True)
class InjectedIncident:
    kind: str  # the scenario's incident kind
    family: str  # the event family it shows in: network, service_center, filings
    subject: str  # the node or center it was injected on, or the province
    affected: tuple[str, ...]  # every subject it hits (a node and the nodes below it), subject first
    start_ms: int  # UTC, ms since the epoch
    end_ms: int

    def as_json(self) -> dict[str, object]:
        out = asdict(self)
        out["affected"] = list(self.affected)
        out["start"] = _iso(self.start_ms)
        out["end"] = _iso(self.end_ms)
        return out


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


def injected(world: World) -> list[InjectedIncident]:
    """The scenario's incidents that fall in the run, in start order."""
    out = []
    for incident in world.scenario.incidents:
        start, end = world.incident_window(incident)
        if end <= world.t0_ms or start >= world.t1_ms:
            continue
        family, subject, affected = _target(world, incident)
        out.append(InjectedIncident(incident.kind, family, subject, affected, start, end))
    return sorted(out, key=lambda i: (i.start_ms, i.subject))


def _target(world: World, incident: Incident) -> tuple[str, str, tuple[str, ...]]:
    if isinstance(incident, NodeOutage | DegradedLink):
        return "network", incident.node, tuple(downstream(world.reference.nodes, incident.node))
    if isinstance(incident, QueueSurge):
        return "service_center", incident.center, (incident.center,)
    if isinstance(incident, PortalOutage):
        return "filings", world.scenario.province, (world.scenario.province,)
    raise TypeError(f"no ground truth for incident kind {incident.kind!r}")
