"""Judgements on the data: KPIs against targets and the week before, who lags, who improved, hot spots.

Pure functions of `briefing.data` and the targets (configuration: the scenario's [targets]), so the
rules are testable without ClickHouse and every number they rank by is one the page shows.
"""

from __future__ import annotations

from dataclasses import dataclass

from briefing.data import AgencyDay, BriefingData, CenterDay, DayData, Incident, ratio

HEADLINE = ("online_application", "online_payment", "digitisation", "on_time", "electronic_results", "data_reuse")
OPERATIONS = ("abandonment", "mean_wait_min", "availability")
LOWER_IS_BETTER = frozenset({"abandonment", "mean_wait_min"})
GAP_KPIS = ("online_application", "on_time")  # the two targets an agency is ranked by (DESIGN.md s.2)
MIN_DOSSIERS = 5  # a share over fewer dossiers says little about an agency: left out of its gap
TOP = 4  # rows per ranked list: with the index section the page must stay one A4 sheet
MAX_INCIDENTS = 4  # rows that keep the page to one A4 sheet; the rest are counted in a note
MAX_INCIDENT_ROWS = 4
NEAR_TARGET = {"share": 0.05, "minutes": 3.0}  # within this of target: amber, not red


@dataclass(frozen=True)
class KpiCard:
    key: str
    value: float | None
    previous: float | None  # same weekday a week earlier
    target: float | None
    unit: str  # share (0..1) or minutes

    @property
    def higher_is_better(self) -> bool:
        return self.key not in LOWER_IS_BETTER

    def _better(self, delta: float) -> float:
        return delta if self.higher_is_better else -delta

    @property
    def vs_target(self) -> float | None:
        return None if self.value is None or self.target is None else self.value - self.target

    @property
    def vs_week(self) -> float | None:
        return None if self.value is None or self.previous is None else self.value - self.previous

    @property
    def status(self) -> str:
        """ok (target met), near (a little short), bad, or none (no value or no target)."""
        if self.vs_target is None:
            return "none"
        shortfall = -self._better(self.vs_target)
        if shortfall <= 0:
            return "ok"
        return "near" if shortfall <= NEAR_TARGET[self.unit] else "bad"

    @property
    def trend(self) -> str:
        """up/down/flat for the arrow; good/bad/same for its colour."""
        if self.vs_week is None:
            return "none"
        return "up" if self.vs_week > 0 else ("down" if self.vs_week < 0 else "flat")

    @property
    def trend_is_good(self) -> bool | None:
        if self.vs_week is None or self.vs_week == 0:
            return None
        return self._better(self.vs_week) > 0


def _day_values(day: DayData) -> dict[str, float | None]:
    return day.filings.rates() | {
        "abandonment": day.service.abandonment,
        "mean_wait_min": day.service.mean_wait_min,
        "availability": day.network.availability,
    }


def kpi_cards(data: BriefingData, targets: dict[str, float], keys: tuple[str, ...]) -> list[KpiCard]:
    now, before = _day_values(data.day), _day_values(data.week_before)
    return [KpiCard(k, now[k], before[k], targets.get(k), "minutes" if k == "mean_wait_min" else "share")
            for k in keys]


# ---------------------------------------------------------------- agencies


@dataclass(frozen=True)
class AgencyScore:
    """An agency's day: its two ranked shares (None under MIN_DOSSIERS) and the points it misses by."""

    day: AgencyDay
    online: float | None
    on_time: float | None
    gap: float | None  # sum over GAP_KPIS of max(0, target - share); None when neither share counts


def score(day: AgencyDay, targets: dict[str, float]) -> AgencyScore:
    online = ratio(day.submitted_online, day.submitted) if day.submitted >= MIN_DOSSIERS else None
    on_time = ratio(day.on_time, day.processed) if day.processed >= MIN_DOSSIERS else None
    shares = {"online_application": online, "on_time": on_time}
    judged = [(k, v) for k, v in shares.items() if v is not None and k in targets]
    gap = sum(max(0.0, targets[k] - v) for k, v in judged) if judged else None
    return AgencyScore(day, online, on_time, gap)


def _scores(day: DayData, data: BriefingData, level: str, targets: dict[str, float]) -> dict[str, AgencyScore]:
    agencies = data.dims.agencies
    return {a.code: score(a, targets) for a in day.agencies
            if a.code in agencies and agencies[a.code].level == level}


def lagging(data: BriefingData, level: str, targets: dict[str, float]) -> list[AgencyScore]:
    """The TOP agencies of a level (commune / province) furthest below target, most late first on ties."""
    scores = [s for s in _scores(data.day, data, level, targets).values() if s.gap]
    return sorted(scores, key=lambda s: (-(s.gap or 0.0), -s.day.late, s.day.code))[:TOP]


@dataclass(frozen=True)
class Improvement:
    code: str
    gap_before: float
    gap_now: float

    @property
    def better_by(self) -> float:
        return self.gap_before - self.gap_now


def improved(data: BriefingData, level: str, targets: dict[str, float]) -> list[Improvement]:
    """The TOP agencies whose gap shrank most since the same weekday a week earlier."""
    now = _scores(data.day, data, level, targets)
    before = _scores(data.week_before, data, level, targets)
    moves = [Improvement(code, b.gap, now[code].gap) for code, b in before.items()  # type: ignore[arg-type]
             if b.gap is not None and code in now and now[code].gap is not None and now[code].gap < b.gap]
    return sorted(moves, key=lambda m: (-m.better_by, m.code))[:TOP]


# ---------------------------------------------------------------- dossiers, centers


@dataclass(frozen=True)
class LateRow:
    code: str
    processed_late: int
    overdue: int
    due_soon: int


def late_rows(data: BriefingData) -> list[LateRow]:
    """Per agency: processed late during the day, fell due and still open, due within 24 h."""
    late = {a.code: a.late for a in data.day.agencies if a.late}
    open_ = {o.code: o for o in data.open_dossiers}
    rows = [LateRow(code, late.get(code, 0), open_[code].overdue if code in open_ else 0,
                    open_[code].due_soon if code in open_ else 0) for code in sorted(set(late) | set(open_))]
    return rows


def late_totals(rows: list[LateRow]) -> tuple[int, int, int]:
    return (sum(r.processed_late for r in rows), sum(r.overdue for r in rows), sum(r.due_soon for r in rows))


def top_late(rows: list[LateRow]) -> list[LateRow]:
    return sorted(rows, key=lambda r: (-(r.processed_late + r.overdue), -r.due_soon, r.code))[:TOP]


def hotspots(data: BriefingData) -> list[CenterDay]:
    """The TOP centers by wait p90, then abandonment."""
    return sorted((c for c in data.centers if c.wait_p90_s is not None),
                  key=lambda c: (-(c.wait_p90_s or 0.0), -(c.abandonment or 0.0), c.center_id))[:TOP]


def top_incidents(incidents: tuple[Incident, ...]) -> list[Incident]:
    """Outages before degradations, longest first, at most MAX_INCIDENTS; shown in time order."""
    ranked = sorted(incidents, key=lambda i: (i.kind != "outage", -i.duration_min, i.start, i.node_id))
    return sorted(ranked[:MAX_INCIDENTS], key=lambda i: (i.start, i.node_id))
