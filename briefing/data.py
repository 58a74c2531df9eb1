"""The briefing's data layer: one local day (and the same weekday a week earlier) read from ClickHouse.

`load_day(client, day)` runs the parameterised queries of `briefing.queries` and returns plain
dataclasses holding counts and sums as ClickHouse returned them. Shares are derived from those counts
in properties (never stored rounded), so the tests can compare every figure with their own SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from clickhouse_connect.driver.client import Client

from briefing import queries as q

TZ = ZoneInfo(q.LOCAL_TZ)
HOURS = 24


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


@dataclass(frozen=True)
class DayWindow:
    """A local day and its bounds in UTC (Vietnam has no DST: always 24 h)."""

    day: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.day, time(0), TZ).astimezone(UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.day + timedelta(days=1), time(0), TZ).astimezone(UTC)

    def params(self) -> dict[str, Any]:
        # Strings, not datetimes: typed as DateTime64(3, 'UTC') in the SQL, so nothing depends on how
        # the client would render a timezone-aware value.
        return {"day": self.day.isoformat(), "start": _utc_text(self.start), "end": _utc_text(self.end)}


def _utc_text(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def as_utc(t: datetime) -> datetime:
    """clickhouse-connect returns DateTime64(3, 'UTC') as naive datetimes in UTC."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


@dataclass(frozen=True)
class FilingTotals:
    submitted: int = 0
    submitted_online: int = 0
    paid_online: int = 0
    digitised: int = 0
    reused_data: int = 0
    processed: int = 0
    on_time: int = 0
    late: int = 0
    result_issued: int = 0
    electronic: int = 0
    rejected: int = 0

    @property
    def events(self) -> int:
        return self.submitted + self.processed + self.result_issued + self.rejected

    def rates(self) -> dict[str, float | None]:
        """The six headline KPIs, defined as in simulators/kpi.py."""
        return {
            "online_application": ratio(self.submitted_online, self.submitted),
            "online_payment": ratio(self.paid_online, self.submitted),
            "digitisation": ratio(self.digitised, self.submitted),
            "on_time": ratio(self.on_time, self.processed),
            "electronic_results": ratio(self.electronic, self.result_issued),
            "data_reuse": ratio(self.reused_data, self.submitted),
        }


@dataclass(frozen=True)
class ServiceTotals:
    centers: int = 0
    issued: int = 0
    called: int = 0
    abandoned: int = 0
    wait_count: int = 0
    wait_sum_s: float = 0.0
    wait_p90_s: float | None = None

    @property
    def abandonment(self) -> float | None:
        return ratio(self.abandoned, self.abandoned + self.called)

    @property
    def mean_wait_min(self) -> float | None:
        mean = ratio(self.wait_sum_s, self.wait_count)
        return None if mean is None else mean / 60


@dataclass(frozen=True)
class NodeDay:
    node_id: str
    samples: int
    up_samples: int
    availability: float | None
    outages: int
    outage_minutes: float


@dataclass(frozen=True)
class NetworkTotals:
    nodes: tuple[NodeDay, ...] = ()

    @property
    def samples(self) -> int:
        return sum(n.samples for n in self.nodes)

    @property
    def up_samples(self) -> int:
        return sum(n.up_samples for n in self.nodes)

    @property
    def availability(self) -> float | None:
        return ratio(self.up_samples, self.samples)

    @property
    def outages(self) -> int:
        return sum(n.outages for n in self.nodes)

    @property
    def outage_minutes(self) -> float:
        return sum(n.outage_minutes for n in self.nodes)

    def meeting(self, target: float) -> list[NodeDay]:
        return [n for n in self.nodes if n.availability is not None and n.availability >= target]

    def below(self, target: float) -> list[NodeDay]:
        """Nodes under the SLA, worst first."""
        under = [n for n in self.nodes if n.availability is not None and n.availability < target]
        return sorted(under, key=lambda n: (n.availability, n.node_id))


@dataclass(frozen=True)
class Agency:
    code: str
    name: str
    name_en: str
    level: str  # province (a department) or commune (a people's committee)
    commune_code: str | None


@dataclass(frozen=True)
class AgencyDay:
    code: str
    submitted: int
    submitted_online: int
    processed: int
    on_time: int
    late: int


@dataclass(frozen=True)
class OpenDossiers:
    """Per agency, dossiers open at the end of the day: fell due during it, or due within 24 h after."""

    code: str
    overdue: int
    due_soon: int


@dataclass(frozen=True)
class CenterDay:
    center_id: str
    issued: int
    called: int
    abandoned: int
    wait_count: int
    wait_sum_s: float
    wait_p90_s: float | None

    @property
    def abandonment(self) -> float | None:
        return ratio(self.abandoned, self.abandoned + self.called)


@dataclass(frozen=True)
class Center:
    center_id: str
    name: str
    level: str
    commune_code: str | None


@dataclass(frozen=True)
class Node:
    node_id: str
    role: str
    agency_code: str | None
    commune_code: str | None


@dataclass(frozen=True)
class Incident:
    node_id: str
    kind: str  # outage (network_outages) or degraded (consecutive loss_high windows)
    start: datetime  # UTC
    duration_min: float


@dataclass(frozen=True)
class DayIncident:
    """An incident (streams/incidents.py) open at some point of the day: what the operators handled."""

    incident_id: str
    severity: str
    family: str
    subject: str
    title: str
    start: datetime  # UTC
    end: datetime | None  # None: still open
    subjects: int
    communes: int  # the impact: communes cut off or slowed
    detection_s: int

    def duration_min(self, until: datetime) -> float:
        return ((self.end or until) - self.start).total_seconds() / 60


@dataclass(frozen=True)
class ServiceIndex:
    """The Decision 766 index of the province (out of 100) and of its communes, as stored."""

    day: float | None = None
    mtd: float | None = None
    week_before: float | None = None  # the same weekday a week earlier
    previous_mtd: float | None = None  # the previous month, to the same day of the month
    trend: tuple[tuple[date, float], ...] = ()  # the last 4 weeks, day by day
    lowest: tuple[tuple[str, float], ...] = ()  # communes, month to date
    improved: tuple[tuple[str, float], ...] = ()  # communes: day minus the same weekday a week before

    @property
    def has_data(self) -> bool:
        return self.day is not None or self.mtd is not None


def _month_before(day: date) -> date:
    first = day.replace(day=1) - timedelta(days=1)
    return first.replace(day=min(day.day, first.day))


def load_service_index(client: Client, day: date, top: int = 5) -> ServiceIndex:
    week, month = day - timedelta(days=7), _month_before(day)
    found = {(p, d): t for p, d, t in _rows(client, q.INDEX_PROVINCE, {"days": [day, week, month]})}
    communes = _rows(client, q.INDEX_COMMUNES, {"day": day})
    lowest = sorted(((c, float(m)) for c, m, _, _ in communes if m is not None), key=lambda x: (x[1], x[0]))
    gains = sorted(((c, float(d) - float(w)) for c, _, d, w in communes if d is not None and w is not None),
                   key=lambda x: (-x[1], x[0]))
    return ServiceIndex(
        day=found.get(("day", day)), mtd=found.get(("mtd", day)), week_before=found.get(("day", week)),
        previous_mtd=found.get(("mtd", month)),
        trend=tuple((d, float(t)) for d, t in _rows(client, q.INDEX_TREND, {"day": day}) if t is not None),
        lowest=tuple(lowest[:top]), improved=tuple(g for g in gains[:top] if g[1] > 0))


@dataclass(frozen=True)
class Hourly:
    """Per local hour 0..23; None where no window fell in the hour."""

    filings_online: tuple[int, ...] = (0,) * HOURS
    filings_in_person: tuple[int, ...] = (0,) * HOURS
    wait_p90_s: tuple[float | None, ...] = (None,) * HOURS
    availability: tuple[float | None, ...] = (None,) * HOURS
    incidents_critical: tuple[int, ...] = (0,) * HOURS  # incidents open during the hour
    incidents_other: tuple[int, ...] = (0,) * HOURS
    node_availability: dict[str, tuple[float | None, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Dimensions:
    province_code: str = ""
    province_name: str = ""
    province_name_en: str = ""
    agencies: dict[str, Agency] = field(default_factory=dict)
    communes: dict[str, str] = field(default_factory=dict)  # commune_code -> name
    centers: dict[str, Center] = field(default_factory=dict)
    nodes: dict[str, Node] = field(default_factory=dict)


@dataclass(frozen=True)
class DayData:
    """What ClickHouse holds about one local day."""

    window: DayWindow
    filings: FilingTotals
    service: ServiceTotals
    network: NetworkTotals
    agencies: tuple[AgencyDay, ...]

    @property
    def has_data(self) -> bool:
        return bool(self.filings.events or self.service.issued or self.service.called or self.network.samples)


@dataclass(frozen=True)
class BriefingData:
    day: DayData
    week_before: DayData
    dims: Dimensions
    open_dossiers: tuple[OpenDossiers, ...]
    centers: tuple[CenterDay, ...]
    incidents: tuple[Incident, ...]  # network: outages and degraded links, with their nodes' availability
    day_incidents: tuple[DayIncident, ...]
    hourly: Hourly
    index: ServiceIndex = ServiceIndex()

    @property
    def has_data(self) -> bool:
        return self.day.has_data


def _rows(client: Client, sql: str, params: dict[str, Any] | None = None) -> Sequence[Sequence[Any]]:
    return client.query(sql, parameters=params or {}).result_rows


def _int(value: Any) -> int:
    return int(value or 0)


def load_dimensions(client: Client, province: str) -> Dimensions:
    provinces = {code: (name, name_en) for code, name, name_en in _rows(client, q.PROVINCES)}
    name, name_en = provinces.get(province) or next(iter(provinces.values()), (province, province))
    return Dimensions(
        province_code=province,
        province_name=name,
        province_name_en=name_en,
        agencies={r[0]: Agency(*r) for r in _rows(client, q.AGENCIES)},
        communes={code: name for code, name in _rows(client, q.COMMUNES)},
        centers={r[0]: Center(*r) for r in _rows(client, q.CENTERS)},
        nodes={r[0]: Node(*r) for r in _rows(client, q.NODES)},
    )


def load_totals(client: Client, day: date) -> DayData:
    window = DayWindow(day)
    params = window.params()
    filings = FilingTotals(*(_int(v) for v in _rows(client, q.FILING_TOTALS, params)[0]))
    centers, issued, called, abandoned, wait_count, wait_sum, wait_p90 = _rows(client, q.SERVICE_TOTALS, params)[0]
    service = ServiceTotals(_int(centers), _int(issued), _int(called), _int(abandoned), _int(wait_count),
                            float(wait_sum or 0.0), wait_p90)
    nodes = tuple(NodeDay(node, _int(samples), _int(up), availability, _int(outages), float(minutes or 0.0))
                  for node, samples, up, availability, outages, minutes in _rows(client, q.NETWORK_NODES, params))
    agencies = tuple(AgencyDay(code, *(_int(v) for v in rest))
                     for code, *rest in _rows(client, q.AGENCY_FILINGS, params))
    return DayData(window, filings, service, NetworkTotals(nodes), agencies)


def _hourly(rows: Sequence[Sequence[Any]], default: Any) -> tuple[Any, ...]:
    values = [default] * HOURS
    for h, value in rows:
        values[int(h)] = value
    return tuple(values)


def load_hourly(client: Client, window: DayWindow, nodes: Sequence[str]) -> Hourly:
    params = window.params()
    filings = _rows(client, q.HOURLY_FILINGS, params)
    incidents = _rows(client, q.HOURLY_INCIDENTS, params)
    per_node: dict[str, list[float | None]] = {n: [None] * HOURS for n in nodes}
    if nodes:
        for node, h, availability in _rows(client, q.HOURLY_NODES, params | {"nodes": list(nodes)}):
            per_node[node][int(h)] = availability
    return Hourly(
        filings_online=_hourly([(h, _int(o)) for h, o, _ in filings], 0),
        filings_in_person=_hourly([(h, _int(p)) for h, _, p in filings], 0),
        wait_p90_s=_hourly(_rows(client, q.HOURLY_WAIT, params), None),
        availability=_hourly(_rows(client, q.HOURLY_NETWORK, params), None),
        incidents_critical=_hourly([(h, _int(c)) for h, c, _ in incidents], 0),
        incidents_other=_hourly([(h, _int(o)) for h, _, o in incidents], 0),
        node_availability={n: tuple(v) for n, v in per_node.items()},
    )


def load_briefing_data(client: Client, day: date, province: str = "QNG") -> BriefingData:
    """Everything the page shows about `day` (a local date: the day before the briefing's date)."""
    current = load_totals(client, day)
    week_before = load_totals(client, day - timedelta(days=7))
    params = current.window.params()
    open_dossiers = tuple(OpenDossiers(code, _int(o), _int(d)) for code, o, d in
                          _rows(client, q.OPEN_DOSSIERS, params))
    centers = tuple(CenterDay(c, _int(i), _int(ca), _int(a), _int(wc), float(ws or 0.0), p90)
                    for c, i, ca, a, wc, ws, p90 in _rows(client, q.CENTER_DAYS, params))
    outages = [Incident(node, "outage", as_utc(start), float(duration) / 60)
               for node, start, _end, duration in _rows(client, q.OUTAGES, params)]
    rows = _rows(client, q.DAY_INCIDENTS, params)
    day_incidents = [DayIncident(i, sev, fam, subj, title, as_utc(start), None if end is None else as_utc(end),
                                 _int(n), _int(c), _int(det))
                     for i, sev, fam, subj, title, start, end, n, c, det, _ in rows]
    until = current.window.end
    degraded = [Incident(d.subject, "degraded", d.start, d.duration_min(until))
                for d, row in zip(day_incidents, rows, strict=True) if d.family == "network" and row[10]]
    incidents = sorted(outages + degraded, key=lambda i: (i.start, i.node_id))
    nodes = list(dict.fromkeys(i.node_id for i in incidents))
    return BriefingData(
        day=current,
        week_before=week_before,
        dims=load_dimensions(client, province),
        open_dossiers=open_dossiers,
        centers=centers,
        incidents=tuple(incidents),
        day_incidents=tuple(day_incidents),
        hourly=load_hourly(client, current.window, nodes),
        index=load_service_index(client, day),
    )
