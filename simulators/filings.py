"""Filings: dossier lifecycles at the 108 agencies.

A dossier is submitted (online any time, in person during office hours), then either rejected or
processed and its result issued. The level (province or commune) comes first, from the daily
volumes; the procedure follows its demand weight within that level; the agency is the
procedure's department (province level) or the committee of a commune drawn by population
weight (commune level). An online dossier is `online_full` or `online_partial` as its procedure
allows. Processing happens on the office clock, so due times are "N working days" and nobody
processes anything at night.

The run starts with a backlog: dossiers submitted in the weeks before the first simulated day
are generated too, and only their events inside the horizon are emitted. That way a run shows
processing and late dossiers from its first hour, and the realised on-time rate matches the
scenario instead of favouring fast (on-time) dossiers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc

from models.events import CHANNELS, FILINGS, LEVELS
from simulators.arrivals import Arrivals, Grid, in_person_shape, online_shape, per_bin_rate, poisson_arrivals
from simulators.clock import MS_MIN
from simulators.frame import EventTable
from simulators.scenario import PortalOutage
from simulators.world import Span, World

BIN_MS = 5 * MS_MIN
MIN_PROCESSING_MIN = 30.0  # office minutes: nobody decides a dossier faster than this
RESULT_DELAY_MIN = (5.0, 120.0)  # office minutes from the decision to the result
ONLINE, IN_PERSON = 0, 1  # channel groups of the arrival streams


@dataclass(frozen=True)
class Dossiers:
    submitted_ms: np.ndarray
    level: np.ndarray  # index into LEVELS
    channel: np.ndarray  # index into CHANNELS
    procedure: np.ndarray  # row of dim_procedures
    agency: np.ndarray  # row of dim_agencies


def events(world: World, span: Span) -> EventTable:
    rng = world.rng("filings")
    grid = Grid.build(world.calendar, _backlog_start(world, span), span.t1_ms, BIN_MS)
    arrivals = poisson_arrivals(rng, _arrival_rate(world, grid), grid)
    dossiers = _dossiers(world, rng, arrivals)
    table = world.table(FILINGS, vocab={"agency_code": world.column("dim_agencies", "agency_code"),
                                        "procedure_id": world.column("dim_procedures", "procedure_id")},
                        ids={"dossier_id": (f"D-{world.scope}-", 8)})
    _lifecycle(world, rng, dossiers, table)
    return table


def _backlog_start(world: World, span: Span) -> int:
    """Far enough back that every dossier still open at the start of the run is generated."""
    spec = world.scenario.filings
    longest = int(pc.max(world.reference.procedures.column("processing_days")).as_py())
    day, _ = world.local_days(span.t0_ms, span.t1_ms)
    back = longest + spec.max_lateness_days + 3  # working days, plus slack for the result delay
    first = np.busday_offset(np.datetime64(day, "D"), -back, roll="backward",
                             weekmask=world.scenario.office_hours.weekmask, holidays=world.calendar.holidays)
    return world.calendar.midnight_ms(first.astype(object))


def _arrival_rate(world: World, grid: Grid) -> np.ndarray:
    """Expected submissions per bin for the streams (level, channel group), row = 2 * level + group."""
    spec, cal = world.scenario.filings, world.calendar
    volume = np.array([spec.province_per_working_day, spec.commune_per_working_day]) * world.scenario.load_factor
    online_per_day = per_bin_rate(cal, online_shape(cal, spec.online_after_hours, spec.online_weekend), grid, 1.0)
    online = (volume * spec.online_application)[:, None] * online_per_day
    in_person = (volume * (1 - spec.online_application))[:, None] * per_bin_rate(cal, in_person_shape(cal), grid, 1.0)
    for outage in world.scenario.incidents_of(PortalOutage):
        down = grid.window(*world.incident_window(outage))
        # Some of the portal's users walk in instead, which they can only do while counters are open.
        in_person[:, down] += outage.shift_to_in_person * online[:, down] * grid.local.in_office[down]
        online[:, down] = 0.0
    return np.stack([online, in_person], axis=1).reshape(2 * len(LEVELS), len(grid))


def _dossiers(world: World, rng: np.random.Generator, arrivals: Arrivals) -> Dossiers:
    ref = world.reference
    n = len(arrivals)
    level = arrivals.stream // 2
    online = arrivals.stream % 2 == ONLINE
    proc_level = np.array(ref.procedures.column("level").to_pylist())
    demand = ref.procedures.column("demand_weight").to_numpy()
    procedure = np.zeros(n, dtype=np.int64)
    for code, name in enumerate(LEVELS):
        rows = np.flatnonzero(proc_level == name)
        mine = level == code
        procedure[mine] = rng.choice(rows, size=int(mine.sum()), p=demand[rows] / demand[rows].sum())

    full = np.array(ref.procedures.column("online_mode").to_pylist()) == "full"
    channel = np.where(online, np.where(full[procedure], CHANNELS.index("online_full"),
                                        CHANNELS.index("online_partial")), CHANNELS.index("in_person"))

    agency_row = {code: i for i, code in enumerate(world.column("dim_agencies", "agency_code"))}
    department = np.array([agency_row.get(code, -1) for code in world.column("dim_procedures", "department_code")])
    commune_agency = np.array([agency_row[code] for code in _commune_agency_codes(world)])
    weights = ref.communes.column("weight").to_numpy()
    commune = rng.choice(len(weights), size=n, p=weights / weights.sum())
    agency = np.where(level == LEVELS.index("province"), department[procedure], commune_agency[commune])
    return Dossiers(arrivals.time_ms, level, channel, procedure, agency)


def _commune_agency_codes(world: World) -> list[str]:
    """The committee's agency code for each commune, in dim_communes order."""
    agencies = world.reference.agencies
    by_commune = dict(zip(agencies.column("commune_code").to_pylist(), agencies.column("agency_code").to_pylist(),
                          strict=True))
    return [by_commune[c] for c in world.column("dim_communes", "commune_code")]


def _lifecycle(world: World, rng: np.random.Generator, d: Dossiers, table: EventTable) -> None:
    spec, cal = world.scenario.filings, world.calendar
    n = len(d.submitted_ms)
    per_day = cal.office_minutes
    keys = {"agency_code": d.agency, "dossier_id": np.arange(n), "procedure_id": d.procedure,
            "channel": d.channel, "level": d.level}

    submitted = cal.to_office(d.submitted_ms)
    days = world.reference.procedures.column("processing_days").to_numpy().astype(np.int64)[d.procedure]
    due_day = np.floor(submitted / per_day).astype(np.int64) + days  # due at the end of that working day
    due_ms = cal.end_of_working_day_ms(due_day)
    due_office = (due_day + 1) * per_day

    flags = {name: rng.random(n) < getattr(spec, rate) for name, rate in
             (("paid_online", "online_payment"), ("digitised", "digitisation"), ("reused_data", "data_reuse"))}
    table.add(d.submitted_ms, "submitted", **keys, **flags, due_time=due_ms)

    rejected = rng.random(n) < spec.rejection
    rejected_at = cal.from_office(submitted + rng.uniform(MIN_PROCESSING_MIN, 2 * per_day, n))
    _add_subset(table, "rejected", rejected, rejected_at, keys)

    on_time = rng.random(n) < spec.on_time
    early = submitted + MIN_PROCESSING_MIN + (due_office - submitted - MIN_PROCESSING_MIN) * rng.random(n)
    lateness = np.minimum(rng.exponential(spec.mean_lateness_days * per_day, n), spec.max_lateness_days * per_day)
    decided = np.where(on_time, early, due_office + 1.0 + lateness)
    processed_ms = cal.from_office(decided)
    done = ~rejected
    # on_time is read off the clock, so the flag and the two times can never disagree.
    _add_subset(table, "processed", done, processed_ms, keys, on_time=processed_ms <= due_ms, due_time=due_ms)

    result_ms = cal.from_office(decided + rng.uniform(*RESULT_DELAY_MIN, n))
    electronic = rng.random(n) < spec.electronic_results
    _add_subset(table, "result_issued", done, result_ms, keys, electronic=electronic)


def _add_subset(table: EventTable, kind: str, mask: np.ndarray, times: np.ndarray,
                keys: dict[str, np.ndarray], **extra: np.ndarray) -> None:
    rows = np.flatnonzero(mask)
    table.add(times[rows], kind, **{k: v[rows] for k, v in keys.items()}, **{k: v[rows] for k, v in extra.items()})
