"""What one simulation run knows: scenario, reference data, calendar, horizon, seed.

Each family generator gets the same `World` and draws from its own random stream
(`world.rng(name)`), so adding draws to one family never changes another family's events.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import cached_property

import numpy as np

from models.reference import Reference, province_reference
from models.schema import Family
from simulators.clock import MS_MIN, Calendar
from simulators.frame import EventTable
from simulators.scenario import Incident, Scenario, ScenarioError


def reference_for(province: str) -> Reference:
    try:
        return province_reference(province)
    except ValueError as exc:
        raise ScenarioError(str(exc)) from None


@dataclass(frozen=True)
class Span:
    """A slice [t0, t1) of the run that one generator call fills; `index` numbers the slices."""

    t0_ms: int
    t1_ms: int
    index: int = 0


@dataclass(frozen=True)
class World:
    scenario: Scenario
    start: date  # first simulated local day; the run begins at its local midnight
    hours: float
    seed: int
    reference: Reference = field(repr=False)
    calendar: Calendar = field(repr=False)

    @classmethod
    def create(cls, scenario: Scenario, start: date, hours: float, seed: int,
               reference: Reference | None = None) -> World:
        reference = reference or reference_for(scenario.province)
        world = cls(scenario, start, hours, seed, reference, Calendar(scenario))
        world.check_incident_targets()
        return world

    @cached_property
    def t0_ms(self) -> int:
        return self.calendar.midnight_ms(self.start)

    @cached_property
    def t1_ms(self) -> int:
        return self.t0_ms + round(self.hours * 3_600_000)

    @cached_property
    def scope(self) -> str:
        """8 hex digits naming this run in every id, so ids of different runs never collide."""
        text = f"{self.scenario.name}|{self.seed}|{self.start.isoformat()}|{self.hours!r}"
        return hashlib.blake2b(text.encode(), digest_size=4).hexdigest()

    def spans(self, slice_hours: float | None = None) -> list[Span]:
        """The run as one span, or cut every `slice_hours` from its start."""
        if slice_hours is None:
            return [Span(self.t0_ms, self.t1_ms)]
        step = round(slice_hours * 3_600_000)
        starts = range(self.t0_ms, self.t1_ms, step)
        return [Span(a, min(a + step, self.t1_ms), i) for i, a in enumerate(starts)]

    def rng(self, stream: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(stream.encode())])

    def table(self, family: Family, vocab: Mapping[str, Sequence[str]] | None = None,
              ids: Mapping[str, tuple[str, int]] | None = None) -> EventTable:
        """An empty event table whose event ids read `<F>-<scope>-<n>` (F: the family's initial)."""
        return EventTable(family, f"{family.name[0].upper()}-{self.scope}-", vocab or {}, ids or {})

    def incident_window(self, incident: Incident) -> tuple[int, int]:
        """UTC ms [start, end) of an incident (its start is local time on day `day`)."""
        midnight = self.calendar.midnight_ms(self.start + timedelta(days=incident.day))
        start = midnight + incident.start * MS_MIN
        return start, start + round(incident.duration_min * MS_MIN)

    def local_days(self, t0_ms: int, t1_ms: int) -> tuple[int, int]:
        """First and last local day (days since epoch) touched by [t0, t1)."""
        days = self.calendar.decompose(np.array([t0_ms, t1_ms - 1])).day
        return int(days[0]), int(days[1])

    def column(self, table: str, name: str) -> list:
        return self.reference.tables()[table].column(name).to_pylist()

    def check_incident_targets(self) -> None:
        nodes = set(self.column("dim_nodes", "node_id"))
        centers = set(self.column("dim_centers", "center_id"))
        for incident in self.scenario.incidents:
            for attr, known in (("node", nodes), ("center", centers)):
                target = getattr(incident, attr, None)
                if target is not None and target not in known:
                    sample = ", ".join(sorted(known)[:4])
                    raise ScenarioError(f"incident {incident.kind}: unknown {attr} {target!r} (e.g. {sample}, ...)")

