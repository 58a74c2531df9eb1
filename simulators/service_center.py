"""Service centers: ticket lifecycles and counter shifts at the 97 one-stop centers.

A ticket is issued (arrivals follow office hours and the Monday rush), then either called to a
counter after waiting in line or abandoned when the visitor's patience runs out first, and a
called ticket is served. Waits come from a fluid first-come-first-served queue per center:
the counters start `counters / mean service time` services a minute while open, so a surge or a
Monday morning builds a line that drains at that rate. Everything is array arithmetic; the only
loop is over time bins (one step for all centers at once).
"""

from __future__ import annotations

import numpy as np

from models.events import SERVICE_CENTER
from simulators.arrivals import Arrivals, Grid, in_person_shape, per_bin_rate, poisson_arrivals
from simulators.clock import MS_MIN
from simulators.frame import EventTable
from simulators.scenario import QueueSurge
from simulators.world import Span, World

WALK_UP_MS = 20_000  # mean time from being called to sitting at the counter
RATING_CUTS = (0.02, 0.07, 0.35)  # P(rating 1..4) = 2%, 5%, 28%, 65% when nobody had to wait


def events(world: World, span: Span) -> EventTable:
    spec = world.scenario.service_center
    centers = world.reference.centers
    province = np.array(centers.column("level").to_pylist()) == "province"
    counters = centers.column("counters").to_numpy().astype(np.int64)
    service_min = np.where(province, spec.province_service_min, spec.commune_service_min)
    grid = Grid.build(world.calendar, span.t0_ms, span.t1_ms, MS_MIN)
    rng = world.rng("service_center")

    tickets = poisson_arrivals(rng, _arrival_rate(world, grid, province), grid)
    capacity = counters[:, None] * (_open(world, grid) / service_min[:, None])  # service starts per minute bin
    line = _call_times(tickets, capacity, grid, spec.patience_min)
    reached = np.maximum(line, tickets.time_ms) + rng.exponential(WALK_UP_MS, len(tickets))
    patience = rng.exponential(spec.patience_min * MS_MIN, len(tickets))
    # Called only if the counter comes before the patience runs out, and while counters are open:
    # whoever is still in line at closing goes home. Still in line when the run ends means waited
    # longer than the patience by then, so that is an abandonment too (if it falls in the run).
    call_bin = np.clip((np.nan_to_num(reached, posinf=0) - span.t0_ms) // MS_MIN, 0, len(grid) - 1).astype(np.int64)
    called = (reached - tickets.time_ms < patience) & (capacity[tickets.stream, call_bin] > 0)

    table = world.table(SERVICE_CENTER, vocab={"center_id": centers.column("center_id").to_pylist()},
                        ids={"ticket_id": (f"T-{world.scope}-", 7)})
    _ticket_events(table, rng, tickets, called, reached, patience, counters, service_min)
    _counter_events(table, rng, world, span, counters)
    return table


def _arrival_rate(world: World, grid: Grid, province: np.ndarray) -> np.ndarray:
    """Expected tickets per (center, minute). Commune centers scale with their commune's weight."""
    spec = world.scenario.service_center
    communes = world.reference.communes
    weight = dict(zip(communes.column("commune_code").to_pylist(), communes.column("weight").to_numpy(), strict=True))
    relative = np.array([weight[c] * len(weight) if c else 1.0 for c in world.column("dim_centers", "commune_code")])
    per_day = np.where(province, spec.province_tickets_per_day, spec.commune_tickets_per_day * relative)
    shape = per_bin_rate(world.calendar, in_person_shape(world.calendar), grid, 1.0)
    rate = (per_day * world.scenario.load_factor)[:, None] * shape[None, :]
    center_ids = world.reference.centers.column("center_id").to_pylist()
    for surge in world.scenario.incidents_of(QueueSurge):
        rate[center_ids.index(surge.center), grid.window(*world.incident_window(surge))] *= surge.factor
    return rate


def _open(world: World, grid: Grid) -> np.ndarray:
    """Bins in which counters serve: office sessions plus the overtime that drains the line."""
    lt, overtime = grid.local, world.scenario.service_center.overtime_min
    after = np.zeros(len(grid), dtype=bool)
    for end in world.calendar.sessions[:, 1]:
        after |= lt.working & (lt.minute >= end) & (lt.minute < end + overtime)
    return (lt.in_office | after).astype(np.float64)


def _call_times(tickets: Arrivals, capacity: np.ndarray, grid: Grid, patience_min: float) -> np.ndarray:
    """When each ticket would reach a counter, if it stayed (inf: not on the day it was issued).

    A fluid first-come-first-served line per center with reneging (the fluid Erlang-A model):
    each bin, the people in line give up at rate 1 / patience and the counters take
    `capacity[c, b]` of them. A ticket arriving with `x` people ahead is called once the
    counters have taken everyone ahead who did not give up: x_{n+1} = decay * x_n - C_n <= 0.
    Scaling by decay^-n turns that into "cumulative scaled capacity S reaches a target", one
    `searchsorted` per center and day instead of a loop over tickets. The line resets overnight.
    """
    n_centers, n_bins = capacity.shape
    decay = np.exp(-(grid.bin_ms / MS_MIN) / patience_min)
    day_start = np.flatnonzero(np.append(True, grid.local.day[1:] != grid.local.day[:-1]))
    day_of_bin = np.repeat(np.arange(len(day_start)), np.diff(np.append(day_start, n_bins)))
    m = np.arange(n_bins) - day_start[day_of_bin]  # bin index within its local day

    arrivals = np.bincount(tickets.stream * n_bins + tickets.bin, minlength=n_centers * n_bins)
    arrivals = arrivals.reshape(n_centers, n_bins)
    ahead_at_bin = np.zeros((n_centers, n_bins))
    line = np.zeros(n_centers)
    for b in range(n_bins):
        if m[b] == 0:
            line[:] = 0.0
        ahead_at_bin[:, b] = line
        line = np.maximum(decay * line + arrivals[:, b] - capacity[:, b], 0.0)

    scaled = capacity * decay ** -(m + 1.0)
    cum = np.cumsum(scaled, axis=1)
    cum -= np.where(day_start > 0, cum[:, np.maximum(day_start - 1, 0)], 0.0)[:, day_of_bin]  # restart daily

    # People ahead: the line at the start of the bin plus earlier arrivals in the same bin.
    group = tickets.stream * n_bins + tickets.bin
    rank_in_bin = np.arange(len(tickets)) - np.searchsorted(group, group, side="left")
    ahead = ahead_at_bin[tickets.stream, tickets.bin] + rank_in_bin
    before = np.where(m[tickets.bin] > 0, cum[tickets.stream, np.maximum(tickets.bin - 1, 0)], 0.0)
    target = before + ahead * decay ** -m[tickets.bin]

    out = np.full(len(tickets), np.inf)
    out[ahead <= 0] = tickets.time_ms[ahead <= 0]  # nobody ahead: straight to a free counter
    waiting = np.flatnonzero(ahead > 0)
    key = tickets.stream[waiting] * len(day_start) + day_of_bin[tickets.bin[waiting]]
    for k in np.unique(key):
        rows = waiting[key == k]
        center, day = divmod(int(k), len(day_start))
        first = day_start[day]
        last = day_start[day + 1] if day + 1 < len(day_start) else n_bins
        segment = cum[center, first:last]
        n = np.searchsorted(segment, target[rows], side="left")
        ok = n < len(segment)
        n = np.minimum(n, len(segment) - 1)
        prev = np.where(n > 0, segment[np.maximum(n - 1, 0)], 0.0)
        step = segment[n] - prev
        frac = np.divide(target[rows] - prev, step, out=np.zeros(len(rows)), where=step > 0).clip(0.0, 1.0)
        out[rows] = np.where(ok, grid.start_ms[first + n] + frac * grid.bin_ms, np.inf)
    return out


def _ticket_events(table: EventTable, rng: np.random.Generator, tickets: Arrivals, called: np.ndarray,
                   called_at: np.ndarray, patience: np.ndarray, counters: np.ndarray,
                   service_min: np.ndarray) -> None:
    center, issued_at = tickets.stream, tickets.time_ms
    number = np.arange(len(tickets))
    table.add(issued_at, "issued", center_id=center, ticket_id=number)

    gave_up = np.flatnonzero(~called)
    table.add(issued_at[gave_up] + patience[gave_up].astype(np.int64), "abandoned", center_id=center[gave_up],
              ticket_id=gave_up, wait_s=np.round(patience[gave_up] / 1000, 1))

    idx = np.flatnonzero(called)
    c = center[idx]
    call = called_at[idx].astype(np.int64)
    wait_s = np.round((call - issued_at[idx]) / 1000, 1)
    counter = 1 + (rng.random(len(idx)) * counters[c]).astype(np.int64)
    table.add(call, "called", center_id=c, ticket_id=idx, counter_id=counter, wait_s=wait_s)

    sigma = 0.5  # lognormal service times: most visits short, a few long ones
    service_s = np.round(rng.lognormal(np.log(service_min[c] * 60) - sigma**2 / 2, sigma), 1)
    # Satisfaction falls with the wait: an hour in line halves the chance of a top rating.
    mood = rng.random(len(idx)) * (1 - 0.6 * np.minimum(wait_s / 3600, 1.0))
    rating = 1 + sum((mood > cut).astype(np.int64) for cut in RATING_CUTS)
    table.add(call + (service_s * 1000).astype(np.int64), "served", center_id=c, ticket_id=idx,
              counter_id=counter, service_s=service_s, rating=rating)


def _counter_events(table: EventTable, rng: np.random.Generator, world: World, span: Span,
                    counters: np.ndarray) -> None:
    """Each counter opens at the start of every session and closes after its end (and overtime)."""
    first, last = world.local_days(span.t0_ms, span.t1_ms)
    starts, ends = world.calendar.session_bounds_ms(world.calendar.working_days(first, last))
    center = np.repeat(np.arange(len(counters)), counters)
    counter_id = np.concatenate([np.arange(1, n + 1) for n in counters])
    shifts = starts.size
    center, counter_id = np.tile(center, shifts), np.tile(counter_id, shifts)
    opened = np.repeat(starts.ravel(), counters.sum())
    closed = np.repeat(ends.ravel(), counters.sum())
    overtime = world.scenario.service_center.overtime_min * MS_MIN
    table.add(opened + rng.integers(-2 * MS_MIN, 3 * MS_MIN, len(opened)), "counter_opened",
              center_id=center, counter_id=counter_id)
    table.add(closed + rng.integers(0, int(overtime) + 1, len(closed)), "counter_closed",
              center_id=center, counter_id=counter_id)
