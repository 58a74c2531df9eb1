"""Network telemetry: every node reports every `interval_s`.

Traffic follows the working day (busy in office hours, a lunch dip, quiet nights and weekends);
latency grows with utilisation like a queue (base / (1 - u) shape), loss appears only on hot
links. A degraded link adds latency, jitter and loss; a node outage reports `link_up = false`
with no traffic. While a link is down, the probe gets no reply: latency and jitter are reported
as 0 and loss as 100%, and consumers must read them only when `link_up` is true. The network is a
tree (models.reference): an incident on a node hits every node below it too (an aggregation node
that goes dark takes its communes' access links with it; a slow one slows them).
The whole run is one (nodes x samples) matrix per metric.
"""

from __future__ import annotations

import numpy as np

from models.events import NETWORK
from models.reference import downstream
from simulators.arrivals import Grid
from simulators.clock import MS_MIN
from simulators.frame import EventTable
from simulators.scenario import DegradedLink, NodeOutage
from simulators.world import Span, World

SMOOTH_MIN = 45  # traffic ramps over ~45 minutes, not in steps at 07:30 sharp
TX_SHARE = {"core": 0.9, "aggregation": 0.6, "access": 0.35}  # access links mostly download; core is symmetric
CORE_UTILISATION = 0.5  # core and aggregation links are provisioned with headroom


def events(world: World, span: Span) -> EventTable:
    spec = world.scenario.network
    nodes = world.reference.nodes
    node_ids = nodes.column("node_id").to_pylist()
    role = np.array(nodes.column("role").to_pylist())
    capacity = nodes.column("capacity_bps").to_numpy()
    # Per-node traits come from one stream shared by every slice of the run, per-sample noise from
    # the slice's own stream: slicing the run changes neither.
    traits = world.rng("network")
    interval_ms = round(spec.interval_s * 1000)
    phase = traits.integers(0, interval_ms, len(node_ids))  # pollers are not synchronised
    # Some links run hotter than others, but none is planned to be saturated all day.
    scale = np.minimum(traits.lognormal(0.0, 0.3, len(node_ids)), 0.8 / max(spec.busy_utilisation, 1e-9))
    scale *= np.where(role == "access", 1.0, CORE_UTILISATION)
    base = _base_latency(world, role, traits)
    rng = world.rng(f"network/{span.index}")

    # Sample k of a node is at run start + phase + k * interval; take those that may fall in the span.
    first = (span.t0_ms - world.t0_ms) // interval_ms - 1
    k = np.arange(first, (span.t1_ms - world.t0_ms) // interval_ms + 1)
    times = world.t0_ms + phase[:, None] + k[None, :] * interval_ms
    shape = times.shape

    busy = _traffic(world, span)[np.clip((times - span.t0_ms) // MS_MIN + SMOOTH_MIN, 0, None)]
    level = spec.night_utilisation + (spec.busy_utilisation - spec.night_utilisation) * busy
    util = np.clip(level * scale[:, None] * rng.lognormal(0.0, 0.15, shape), 0.0, 0.97)

    rx = util * capacity[:, None]
    tx = np.minimum(rx * np.array([TX_SHARE[r] for r in role])[:, None] * rng.lognormal(0.0, 0.1, shape),
                    capacity[:, None])
    latency = base[:, None] * (1.0 + 0.5 * util / (1.0 - util)) * rng.gamma(8.0, 1 / 8.0, shape)
    jitter = latency * 0.1 * rng.exponential(1.0, shape)
    loss = spec.base_loss_pct * rng.exponential(1.0, shape) + 20.0 * np.maximum(util - 0.85, 0.0) ** 2
    link_up = np.ones(shape, dtype=bool)

    for incident in world.scenario.incidents_of(DegradedLink):
        hit = _incident_mask(world, incident, node_ids, times)
        n = int(hit.sum())
        extra = incident.extra_latency_ms * rng.lognormal(0.0, 0.2, n)
        latency[hit] += extra
        jitter[hit] += 0.25 * extra * rng.exponential(1.0, n)
        loss[hit] += incident.extra_loss_pct * rng.lognormal(0.0, 0.3, n)
    for incident in world.scenario.incidents_of(NodeOutage):
        hit = _incident_mask(world, incident, node_ids, times)
        link_up[hit] = False
        for metric in (rx, tx, latency, jitter):
            metric[hit] = 0.0
        loss[hit] = 100.0

    table = world.table(NETWORK, vocab={"node_id": node_ids})
    table.add(times.ravel(), node_id=np.repeat(np.arange(len(node_ids)), shape[1]),
              latency_ms=np.round(latency, 3).ravel(), jitter_ms=np.round(jitter, 3).ravel(),
              loss_pct=np.round(np.minimum(loss, 100.0), 4).ravel(), rx_bps=np.round(rx).ravel(),
              tx_bps=np.round(tx).ravel(), capacity_bps=np.repeat(capacity, shape[1]), link_up=link_up.ravel())
    return table


def _traffic(world: World, span: Span) -> np.ndarray:
    """Relative busyness per minute, 0 (night) .. 1 (office hours), smoothed; index 0 is the minute
    SMOOTH_MIN before the span (the margin keeps slices of a run seamless)."""
    margin = SMOOTH_MIN * MS_MIN
    lt = Grid.build(world.calendar, span.t0_ms - 2 * margin, span.t1_ms + 2 * margin + MS_MIN, MS_MIN).local
    daytime = (lt.minute >= 6 * 60) & (lt.minute < 21 * 60)
    level = np.where(lt.working, np.where(lt.in_office, 1.0, np.where(daytime, 0.35, 0.0)),
                     np.where(daytime, 0.15, 0.0))
    smooth = np.convolve(level, np.ones(SMOOTH_MIN) / SMOOTH_MIN, mode="same")
    return smooth[SMOOTH_MIN:]


def _base_latency(world: World, role: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Idle round-trip per node: core < department links < commune links (longer paths)."""
    spec = world.scenario.network
    commune = ~world.reference.nodes.column("commune_code").is_null().to_numpy(zero_copy_only=False)
    base = np.where(role == "core", spec.core_latency_ms,
                    np.where(commune, spec.commune_latency_ms, spec.province_latency_ms))
    return base * rng.lognormal(0.0, 0.25, len(role))


def _incident_mask(world: World, incident: NodeOutage | DegradedLink, node_ids: list[str],
                   times: np.ndarray) -> np.ndarray:
    """(nodes x samples) mask of the samples an incident hits: its node and every node below it."""
    start, end = world.incident_window(incident)
    rows = np.zeros(len(node_ids), dtype=bool)
    rows[[node_ids.index(n) for n in downstream(world.reference.nodes, incident.node)]] = True
    return rows[:, None] & (times >= start) & (times < end)
