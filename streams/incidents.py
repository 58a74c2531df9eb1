"""Incidents, not alert floods: the alert rules (`streams.rules`) judged on the emitted windows, one
incident per problem with a lifecycle open -> resolved (acknowledged by operators in ClickHouse).

The engine sees every family's windows of one province (`ioc.signals`, streams.signals) and keeps
its own event-time clock per family: the slowest source partition's watermark. A partition that sent
nothing for `idle_partition_s` of wall-clock time stops holding the others back (checked on every
signal and on the worker's idle flush, so the end of a replay is judged too): waiting is judged in
processing time, never by how far a partition's event time trails, because a replay or a
catch-up reads partitions in uneven bursts and a partition minutes behind is usually just next.
At every window end it reaches it upserts the windows that ended by then (`streams.metrics.WindowStore`)
and evaluates the family's rules for all subjects at once (numpy over subjects; Python loops only over
window ends and rules).

Lifecycle of one rule on one subject: a *breach* starts when the metric crosses the threshold; it
*qualifies* once it held `for_min` minutes; it *clears* when the metric is back past the clear level
for `clear_for_min` minutes. A qualifying breach joins the open incident of its subject (a second
rule on a failing node is the same problem), or, on the network with `group_by_topology`, the open
incident of a node above it (an aggregation node down takes its communes' links with it: one
incident, its impact the communes below). A node whose uplink is itself breaching but not yet
qualified waits one window for it, so the parent opens the incident and the children join. An
incident resolves when its last member clears, and a new breach after that is a new incident.

Outputs per ingest: the incidents that changed, as rows of `INCIDENT_SCHEMA` with a version that
grows with every change (the `incidents` table is a ReplacingMergeTree on incident_id: a replay
after a crash rewrites the same versions), and the transitions (opened, resolved) for `ioc.alerts`.
Everything here is a function of the windows and their order per partition (and of which partitions
went quiet, when one does), so a restored state fed the same windows gives the same incidents, ids and
versions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from models.reference import Reference
from streams.metrics import ENTITY_SCOPE, METRICS, Reading, Subjects, WindowStore
from streams.rules import SEVERITIES, Rule, RuleSet
from streams.specs import SPECS

TS = pa.timestamp("ms", tz="UTC")
INCIDENT_SCHEMA = pa.schema([
    ("incident_id", pa.string()), ("version", pa.uint32()), ("status", pa.string()), ("family", pa.string()),
    ("scope", pa.string()), ("subject", pa.string()), ("title", pa.string()), ("severity", pa.string()),
    ("rules", pa.list_(pa.string())), ("subjects", pa.list_(pa.string())), ("communes", pa.list_(pa.string())),
    ("start", TS), ("detected_at", TS), ("end", TS), ("peak_rule", pa.string()), ("peak_value", pa.float64()),
    ("threshold", pa.float64()), ("updated_at", TS),
])
OPENED, RESOLVED = "opened", "resolved"
NONE = -1


def _window_ms(family: str) -> int:
    return SPECS[family].windowing.step_ms


@dataclass
class RuleState:
    """One rule's condition on every subject of its scope (arrays indexed by subject)."""

    rule: Rule
    pending_since: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # breach start, or NONE
    active: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # a member of an open incident
    clear_since: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))  # anomaly rules: EWMA per subject
    var: np.ndarray = field(default_factory=lambda: np.zeros(0))
    seen: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    judged_at: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # last window end judged

    def __post_init__(self) -> None:
        # Anomaly rules with daily slots learn one usual level per subject and time of day: (subjects, slots),
        # in float32 and int16 (days seen), since they go into every checkpoint of the incident stage
        # (97 centers x 1,440 minutes: 1.4 MB).
        if slots := self.rule.daily_slots:
            self.mean, self.var = np.zeros((0, slots), np.float32), np.zeros((0, slots), np.float32)
            self.seen = np.zeros((0, slots), np.int16)

    def fit(self, n: int) -> None:
        """Grow to `n` subjects (keys the reference data did not know)."""
        grow = n - len(self.active)
        if grow <= 0:
            return
        self.pending_since = np.append(self.pending_since, np.full(grow, NONE, np.int64))
        self.active = np.append(self.active, np.zeros(grow, bool))
        self.clear_since = np.append(self.clear_since, np.full(grow, NONE, np.int64))
        self.judged_at = np.append(self.judged_at, np.zeros(grow, np.int64))
        rows = (grow, *self.mean.shape[1:])  # (grow,) or (grow, slots), in the arrays' own dtypes
        self.mean = np.concatenate((self.mean, np.zeros(rows, self.mean.dtype)))
        self.var = np.concatenate((self.var, np.zeros(rows, self.var.dtype)))
        self.seen = np.concatenate((self.seen, np.zeros(rows, self.seen.dtype)))

    def judge(self, value: np.ndarray, volume: np.ndarray, slot: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(judged, breaching, clear) per subject; anomaly rules turn the value into a z-score first, against
        the usual level of the time of day's `slot` when the rule has daily slots."""
        r = self.rule
        known = ~np.isnan(value)
        judged = known & (volume >= r.min_volume)
        if r.kind == "anomaly":
            daily = r.daily_slots > 0
            mean, var_, seen = ((self.mean[:, slot], self.var[:, slot], self.seen[:, slot]) if daily
                                else (self.mean, self.var, self.seen))
            var = np.maximum(var_, mean) if r.counts else var_
            history = (seen >= r.min_history) & (var > 0)
            z = np.where(history, (np.where(known, value, 0.0) - mean) / np.sqrt(np.where(var > 0, var, 1.0)),
                         np.nan)
            # Learn the usual level from what does not breach, never from a member of an open incident, and
            # a high value only up to two deviations: a surge does not teach the detector that surges are usual.
            learn = known & ~self.active & ~(judged & history & (z > r.z))
            ceiling = np.where(history, mean + 2 * np.sqrt(np.where(var > 0, var, 0.0)), np.inf)
            x = np.where(learn, np.minimum(value, ceiling), 0.0)
            delta = x - mean
            first = learn & (seen == 0)
            mean = np.where(first, x, np.where(learn, mean + r.alpha * delta, mean))
            var_ = np.where(learn & ~first, (1 - r.alpha) * (var_ + r.alpha * delta * delta), var_)
            seen = seen + learn
            if daily:
                self.mean[:, slot], self.var[:, slot], self.seen[:, slot] = mean, var_, seen
            else:
                self.mean, self.var, self.seen = mean, var_, seen
            judged, value = judged & history, z
        if r.breaches_above:
            return judged, judged & (value > r.threshold), judged & (value <= r.clear_level)
        return judged, judged & (value < r.threshold), judged & (value >= r.clear_level)


@dataclass
class Incident:
    incident_id: str
    family: str
    scope: str
    subject: str
    start_ms: int
    detected_ms: int
    title: str
    peak_rule: str
    peak_value: float
    threshold: float
    above: bool
    members: set[tuple[str, str, int]] = field(default_factory=set)  # (rule, scope, subject) breaching
    rules: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    communes: list[str] = field(default_factory=list)
    severity: str = "info"
    end_ms: int | None = None
    last_breach_ms: int = 0
    status: str = "open"
    version: int = 0
    updated_ms: int = 0

    def row(self) -> dict[str, object]:
        return {"incident_id": self.incident_id, "version": self.version, "status": self.status,
                "family": self.family, "scope": self.scope, "subject": self.subject, "title": self.title,
                "severity": self.severity, "rules": list(self.rules), "subjects": list(self.subjects),
                "communes": list(self.communes), "start": self.start_ms, "detected_at": self.detected_ms,
                "end": self.end_ms, "peak_rule": self.peak_rule, "peak_value": self.peak_value,
                "threshold": self.threshold, "updated_at": self.updated_ms}


@dataclass
class Transition:
    """An incident opened or resolved: what `ioc.alerts` carries (only these, not every update)."""

    kind: str  # opened / resolved
    incident: dict[str, object]  # the incident's row at that moment


@dataclass
class Changes:
    rows: dict[str, Incident] = field(default_factory=dict)  # incident id -> the incident (its last state)
    transitions: list[Transition] = field(default_factory=list)

    def table(self) -> pa.Table:
        return pa.Table.from_pylist([i.row() for i in self.rows.values()], schema=INCIDENT_SCHEMA)


def _fmt_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds")


@dataclass
class FamilyIncidents:
    """One family's window store, rule states, clock and open incidents."""

    family: str
    store: WindowStore
    states: list[RuleState]
    group_by_topology: bool
    idle_ms: int  # wall clock
    watermarks: dict[int, int] = field(default_factory=dict)  # source partition -> watermark
    heard_ms: dict[int, int] = field(default_factory=dict)  # source partition -> wall clock of its last signal
    started_ms: int | None = None  # wall clock of the first signal: partitions never heard count from there
    partitions: int = 1  # of the source topic, as the signals say
    ticked_ms: int | None = None  # the last window end evaluated
    pending: list[pa.Table] = field(default_factory=list)  # windows that end after ticked_ms
    open: dict[str, Incident] = field(default_factory=dict)
    open_by_subject: dict[tuple[str, int], str] = field(default_factory=dict)  # (scope, index) -> incident id

    @property
    def window_ms(self) -> int:
        return self.store.window_ms

    def clock_ms(self, now_ms: int | None = None) -> int | None:
        """Event time every source partition still sending has reached. A partition not heard of yet
        holds the clock back like any other (its first windows may end before what the others sent
        first); one silent for `idle_ms` (wall clock, `now_ms`; never heard: since the first signal)
        no longer does, and when all are, the clock stands at the newest watermark. Without `now_ms`
        (an offline replay) nobody is quiet: the clock waits for every partition, which only delays,
        never changes, what is found."""
        if not self.watermarks:
            return None
        parts = set(range(self.partitions)) | set(self.watermarks)
        if now_ms is not None:
            since = self.started_ms if self.started_ms is not None else now_ms
            parts = {p for p in parts if now_ms - self.heard_ms.get(p, since) < self.idle_ms}
            if not parts:
                return max(self.watermarks.values())
        if not parts <= self.watermarks.keys():
            return None
        return min(self.watermarks[p] for p in parts)

    def ingest(self, partition: int, watermark_ms: int | None, windows: pa.Table | None, changes: Changes,
               partitions: int = 1, now_ms: int | None = None) -> None:
        self.partitions = max(self.partitions, partitions)
        if now_ms is not None:
            self.heard_ms[partition] = now_ms
            self.started_ms = now_ms if self.started_ms is None else self.started_ms
        if windows is not None and windows.num_rows:
            ends = pc.cast(windows.column("window_end"), pa.int64())
            if self.ticked_ms is None:
                start = int(pc.min(pc.cast(windows.column("window_start"), pa.int64())).as_py())
                self.ticked_ms = start - start % self.window_ms
            done = pc.less_equal(ends, self.ticked_ms)
            self.store.upsert(windows.filter(done))  # late updates of windows already judged
            self.pending.append(windows.filter(pc.invert(done)))
        if watermark_ms is not None:
            self.watermarks[partition] = max(self.watermarks.get(partition, watermark_ms), watermark_ms)
        self.catch_up(changes, now_ms)

    def catch_up(self, changes: Changes, now_ms: int | None = None) -> None:
        clock = self.clock_ms(now_ms)
        if clock is not None and self.ticked_ms is not None:
            self.advance(clock - clock % self.window_ms, changes)

    def advance(self, until_ms: int, changes: Changes) -> None:
        """Evaluate every window end after the last one evaluated, up to `until_ms`: before each, the
        windows that ended by then go into the store (in window order, as the metrics expect)."""
        if self.ticked_ms is None or until_ms <= self.ticked_ms:
            return
        waiting = pa.concat_tables(self.pending).sort_by("window_end") if self.pending else None
        ends = pc.cast(waiting.column("window_end"), pa.int64()).to_numpy(zero_copy_only=False) \
            if waiting is not None else np.zeros(0, np.int64)
        taken, tick, w = 0, self.ticked_ms + self.window_ms, self.window_ms
        while tick <= until_ms:
            upto = int(np.searchsorted(ends, tick, side="right"))
            if upto > taken and waiting is not None:
                self.store.upsert(waiting.slice(taken, upto - taken))
                taken = upto
            self.evaluate(tick, changes)
            tick += w
            # Once every slot of the store is stale and no window is due, nothing can change until the
            # next one: skip there (a night without filings, a replay that jumps ahead by days).
            if tick > (int(self.store.slot_window.max()) + 1 + self.store.slots) * w:
                due = int(ends[taken]) if taken < len(ends) else until_ms + w
                tick = max(tick, due)
        self.ticked_ms = until_ms
        self.pending = [waiting.slice(taken)] if waiting is not None and taken < len(ends) else []

    # ------------------------------------------------------------ one window end

    def evaluate(self, tick: int, changes: Changes) -> None:
        last = tick // self.window_ms - 1
        window_start = tick - self.window_ms
        qualified: list[tuple[RuleState, int, float]] = []
        resolved: list[tuple[RuleState, int]] = []
        for st in self.states:
            r = st.rule
            span = max(1, math.ceil(r.over_min * 60_000 / self.window_ms))
            value, volume = METRICS[(self.family, r.metric)].compute(
                Reading(self.store, last, span, r.scope, r.service_min))
            st.fit(len(value))
            judged, breach, clear = st.judge(value, volume, self._daily_slot(window_start, r.daily_slots))
            fresh = breach & ~st.active & (st.pending_since == NONE)
            st.pending_since[fresh] = window_start
            st.pending_since[judged & ~breach & ~st.active] = NONE  # a breach must hold without a break
            ready = breach & ~st.active & (tick - st.pending_since >= r.for_min * 60_000)
            qualified += [(st, int(i), float(value[i])) for i in np.flatnonzero(ready)]
            still = st.active & breach
            st.clear_since[st.active & judged & ~clear] = NONE  # clear means clear without a break too
            for i in np.flatnonzero(still):  # a few: the subjects of open incidents
                self._breaching(st, int(i), float(value[i]), tick, changes)
            starting = st.active & clear & (st.clear_since == NONE)
            st.clear_since[starting] = window_start
            st.judged_at[judged] = tick
            st.pending_since[~st.active & (tick - st.judged_at >= r.stale_min * 60_000)] = NONE
            done = st.active & ((clear & (tick - st.clear_since >= r.clear_for_min * 60_000))
                                | (tick - st.judged_at >= r.stale_min * 60_000))
            resolved += [(st, int(i)) for i in np.flatnonzero(done)]
        for st, i, v in self._grouping_order(qualified):
            self._join(st, i, v, tick, changes)
        for st, i in resolved:
            self._leave(st, i, tick, changes)

    def _daily_slot(self, window_start_ms: int, slots: int) -> int:
        """The local time of day's slot (of `slots` a day) a window starts in."""
        if not slots:
            return 0
        return int((window_start_ms + self.store.utc_offset_ms) % 86_400_000 // (86_400_000 // slots))

    def _grouping_order(self, qualified: list[tuple[RuleState, int, float]]) -> list[tuple[RuleState, int, float]]:
        """Uplinks first; a node waits while one of its uplinks is breaching but not yet in an incident."""
        if not (self.group_by_topology and self.family == "network"):
            return qualified
        subjects = self.store.subjects
        joining = {i for st, i, _ in qualified if st.rule.scope == "node"}
        out = []
        for st, i, v in qualified:
            if st.rule.scope == "node":
                up = subjects.ancestors(i)
                if any(a not in joining and self._pending(a) for a in up):
                    continue  # the uplink decides first; this breach qualifies again next window
            out.append((st, i, v))
        return sorted(out, key=lambda x: len(subjects.ancestors(x[1])) if x[0].rule.scope == "node" else 0)

    def _pending(self, node: int) -> bool:
        return any(st.rule.scope == "node" and node < len(st.active) and not st.active[node]
                   and st.pending_since[node] != NONE for st in self.states)

    def _subject_name(self, scope: str, i: int) -> str:
        return self.store.subjects.names[scope][i]

    def _communes_of(self, scope: str, i: int) -> list[str]:
        s = self.store.subjects
        if scope == "commune":
            return [s.names["commune"][i]]
        if scope == ENTITY_SCOPE[self.family]:
            c = int(s.entity_scope["commune"][i])
            return [s.names["commune"][c]] if c >= 0 else []
        return []

    def _open_incident(self, scope: str, i: int) -> Incident | None:
        return self.open.get(self.open_by_subject.get((scope, i), ""))

    def _join(self, st: RuleState, i: int, value: float, tick: int, changes: Changes) -> None:
        r = st.rule
        target = self._open_incident(r.scope, i)
        if target is None and self.group_by_topology and self.family == "network" and r.scope == "node":
            target = next((t for a in self.store.subjects.ancestors(i)
                           if (t := self._open_incident("node", a)) is not None), None)
        subject = self._subject_name(r.scope, i)
        new = target is None
        if target is None:
            start = int(st.pending_since[i])
            target = Incident(
                incident_id=f"{self.family}:{subject}:{start}", family=self.family, scope=r.scope, subject=subject,
                start_ms=start, detected_ms=tick,
                title=r.title.format(subject=subject, value=value, threshold=r.threshold),
                peak_rule=r.name, peak_value=value, threshold=r.threshold, above=r.breaches_above)
            self.open[target.incident_id] = target
        target.members.add((r.name, r.scope, i))
        if r.name not in target.rules:
            target.rules.append(r.name)
        if subject not in target.subjects:
            target.subjects.append(subject)
        target.communes = sorted(set(target.communes) | set(self._communes_of(r.scope, i)))
        target.severity = max(target.severity, r.severity, key=SEVERITIES.index)
        target.start_ms = min(target.start_ms, int(st.pending_since[i]))
        target.last_breach_ms = tick
        self.open_by_subject[(r.scope, i)] = target.incident_id
        st.active[i] = True
        st.clear_since[i] = NONE
        self._changed(target, tick, changes)
        if new:
            changes.transitions.append(Transition(OPENED, target.row()))

    def _breaching(self, st: RuleState, i: int, value: float, tick: int, changes: Changes) -> None:
        """A member still breaching: the incident lasts; its peak is the opening rule's on its subject."""
        incident = self._open_incident(st.rule.scope, i)
        if incident is None:
            return
        incident.last_breach_ms = tick
        own = st.rule.name == incident.peak_rule and incident.subject == self._subject_name(st.rule.scope, i)
        if own and (value > incident.peak_value if incident.above else value < incident.peak_value):
            incident.peak_value = value
            self._changed(incident, tick, changes)

    @staticmethod
    def _changed(incident: Incident, tick: int, changes: Changes) -> None:
        """At most one new version per window end, whatever changed in it."""
        if incident.updated_ms != tick or not incident.version:
            incident.version += 1
            incident.updated_ms = tick
        changes.rows[incident.incident_id] = incident

    def _leave(self, st: RuleState, i: int, tick: int, changes: Changes) -> None:
        scope = st.rule.scope
        st.active[i] = False
        st.pending_since[i] = NONE
        st.clear_since[i] = NONE
        incident = self._open_incident(scope, i)
        if incident is None:
            return
        incident.members.discard((st.rule.name, scope, i))
        if any(m[1:] == (scope, i) for m in incident.members):
            return  # another rule still breaches on this subject
        self.open_by_subject.pop((scope, i), None)
        if incident.members:
            self._changed(incident, tick, changes)
            return
        incident.status = "resolved"
        incident.end_ms = incident.last_breach_ms
        del self.open[incident.incident_id]
        self._changed(incident, tick, changes)
        changes.transitions.append(Transition(RESOLVED, incident.row()))


def _store_slots(family: str, rules: tuple[Rule, ...]) -> int:
    minutes = max([r.over_min for r in rules] + [60.0 if any(r.metric == "arrival_excess" for r in rules) else 0.0])
    return max(4, math.ceil(minutes * 60_000 / _window_ms(family)) + 2)


@dataclass
class IncidentEngine:
    """All families of one province."""

    province: str
    families: dict[str, FamilyIncidents]

    @classmethod
    def create(cls, rules: RuleSet, reference: Reference, province: str) -> IncidentEngine:
        offset = ZoneInfo(rules.settings.timezone).utcoffset(datetime(2025, 1, 1))
        offset_ms = int(offset.total_seconds() * 1000) if offset is not None else 0
        families = {}
        for family in SPECS:
            own = rules.of_family(family)
            store = WindowStore(family, _window_ms(family), _store_slots(family, own),
                                Subjects.from_reference(family, reference, province), offset_ms)
            families[family] = FamilyIncidents(family, store, [RuleState(r) for r in own],
                                               rules.settings.group_by_topology,
                                               int(rules.settings.idle_partition_s * 1000))
        return cls(province, families)

    def reconfigure(self, rules: RuleSet) -> None:
        """After a restart with another rules file: unchanged rules keep their state, others start afresh;
        members of rules that are gone leave their incidents at the next window end."""
        for family, f in self.families.items():
            kept = {st.rule: st for st in f.states}
            f.states = [kept.get(r) or RuleState(r) for r in rules.of_family(family)]
            names = {st.rule.name for st in f.states}
            for incident in f.open.values():
                incident.members = {m for m in incident.members if m[0] in names}
            f.group_by_topology = rules.settings.group_by_topology
            f.idle_ms = int(rules.settings.idle_partition_s * 1000)

    def ingest(self, family: str, partition: int, watermark_ms: int | None, windows: pa.Table | None,
               partitions: int = 1, now_ms: int | None = None) -> Changes:
        changes = Changes()
        self.families[family].ingest(partition, watermark_ms, windows, changes, partitions, now_ms)
        return changes

    def signals_paused(self, now_ms: int) -> Changes:
        """No signal for a while (the worker's idle flush): source partitions silent for `idle_ms` stop
        holding the clock back. Not sooner: a pause of a few seconds is as often a busy worker or broker
        as the end of the data, and judging then would miss the windows still on their way."""
        changes = Changes()
        for f in self.families.values():
            f.catch_up(changes, now_ms)
        return changes

    def finish(self) -> Changes:
        """End of a replay: evaluate every window received (open incidents stay open)."""
        changes = Changes()
        for f in self.families.values():
            ends = [pc.max(pc.cast(t.column("window_end"), pa.int64())).as_py() for t in f.pending if t.num_rows]
            if ends:
                f.advance(int(max(ends)), changes)
        return changes

    def open_incidents(self) -> list[Incident]:
        return [i for f in self.families.values() for i in f.open.values()]


def incident_message(transition: Transition) -> dict[str, object]:
    """The JSON body of an `ioc.alerts` message (times as ISO strings)."""
    row = dict(transition.incident)
    for key in ("start", "detected_at", "end", "updated_at"):
        value = row.get(key)
        row[key] = None if value is None else _fmt_time(int(value))  # type: ignore[arg-type]
    return {"event": transition.kind, **row}

