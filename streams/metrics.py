"""What the alert rules measure: recent windows per key, and the metrics computed from them.

`WindowStore` keeps, per family, the last `slots` windows of every window key (a center, a node, an
agency x channel x level) as numeric columns in (keys x slots) arrays: slot = window index mod slots.
A window is upserted (a re-emitted window with a higher version replaces the slot's value; a copy of
the same window changes nothing), so duplicates and late updates never double a count. A key with
no window in a slot holds 0 in additive columns and NaN in `latest` ones (no events, no value).

A metric turns the store at one window end into one value per subject of a scope (node, center,
agency, commune, province), with a *volume* that rules may require a minimum of (dossiers behind a
share). Additive metrics roll up to any scope their keys map to (sums of numerators and denominators,
then the ratio); `latest` metrics exist only for the key's own entity. Everything is array work over
all keys at once; the only loop is over the window ends being evaluated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from models.reference import Reference

SCOPES = ("node", "center", "agency", "commune", "province")
ENTITY_SCOPE = {"network": "node", "service_center": "center", "filings": "agency"}
ENTITY_KEY = {"network": "node_id", "service_center": "center_id", "filings": "agency_code"}
WINDOW_KEYS = {"network": ("node_id",), "service_center": ("center_id",),
               "filings": ("agency_code", "channel", "level")}


def _col(table: pa.Table, name: str) -> np.ndarray:
    return pc.fill_null(pc.cast(table.column(name), pa.float64()), np.nan).to_numpy(zero_copy_only=False)


def _loss_when_up(w: pa.Table) -> np.ndarray:
    # A down link reports 100% loss; outages are their own rule, so loss is judged only when up all window.
    samples, up = _col(w, "samples"), _col(w, "up_samples")
    return np.where((samples > 0) & (up == samples), _col(w, "loss_sum") / np.maximum(samples, 1), np.nan)


def _online(w: pa.Table) -> np.ndarray:
    return np.where(np.asarray(pc.not_equal(w.column("channel"), "in_person")), _col(w, "submitted"), 0.0)


# Per family: the store's columns, each computed from the window table, and whether it adds up.
Column = Callable[[pa.Table], np.ndarray]
COLUMNS: dict[str, dict[str, tuple[Column, bool]]] = {
    "network": {
        "samples": (lambda w: _col(w, "samples"), True),
        "up_samples": (lambda w: _col(w, "up_samples"), True),
        "loss_when_up": (_loss_when_up, False),
        "latency_p50": (lambda w: _col(w, "latency_p50"), False),
    },
    "service_center": {
        **{c: ((lambda w, c=c: _col(w, c)), True) for c in ("issued", "called", "abandoned", "service_sum",
                                                             "service_count")},
        "wait_p90": (lambda w: _col(w, "wait_p90"), False),
    },
    "filings": {
        **{c: ((lambda w, c=c: _col(w, c)), True) for c in ("submitted", "processed", "on_time")},
        "online": (_online, True),
    },
}


@dataclass
class Subjects:
    """The subjects of one family at every scope, and which subject each window key belongs to."""

    family: str
    names: dict[str, list[str]] = field(default_factory=dict)  # scope -> subject names
    entity_scope: dict[str, np.ndarray] = field(default_factory=dict)  # scope -> subject index per entity
    counters: np.ndarray = field(default_factory=lambda: np.zeros(0))  # service centers: counters per entity
    parent: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # network: uplink entity or -1

    @classmethod
    def from_reference(cls, family: str, ref: Reference, province: str) -> Subjects:
        table = {"network": ref.nodes, "service_center": ref.centers, "filings": ref.agencies}[family]
        entities = table.column(ENTITY_KEY[family]).to_pylist()
        communes = ref.communes.column("commune_code").to_pylist()
        commune_of = table.column("commune_code").to_pylist()
        s = cls(family)
        s.names = {ENTITY_SCOPE[family]: entities, "commune": communes, "province": [province]}
        s.entity_scope = {ENTITY_SCOPE[family]: np.arange(len(entities)),
                          "commune": np.array([communes.index(c) if c in communes else -1 for c in commune_of]),
                          "province": np.zeros(len(entities), np.int64)}
        if family == "service_center":
            s.counters = table.column("counters").to_numpy().astype(np.float64)
        if family == "network":
            uplinks = table.column("uplink").to_pylist()
            s.parent = np.array([entities.index(u) if u in entities else -1 for u in uplinks], np.int64)
        return s

    @property
    def entities(self) -> list[str]:
        return self.names[ENTITY_SCOPE[self.family]]

    def add_entity(self, name: str) -> int:
        """A key the reference data does not know (its windows still count for the province)."""
        self.entities.append(name)
        for scope, index in self.entity_scope.items():
            value = len(self.entities) - 1 if scope == ENTITY_SCOPE[self.family] else (0 if scope == "province" else -1)
            self.entity_scope[scope] = np.append(index, value)
        if self.family == "service_center":
            self.counters = np.append(self.counters, np.nan)
        if self.family == "network":
            self.parent = np.append(self.parent, -1)
        return len(self.entities) - 1

    def ancestors(self, entity: int) -> list[int]:
        """Network: the entity's uplinks, nearest first."""
        out, up = [], int(self.parent[entity]) if len(self.parent) else -1
        while up >= 0 and up not in out:
            out.append(up)
            up = int(self.parent[up])
        return out


DAILY = {"service_center": ("issued", "called", "abandoned")}  # kept as totals of the local day too


@dataclass
class WindowStore:
    family: str
    window_ms: int
    slots: int
    subjects: Subjects
    utc_offset_ms: int = 7 * 3_600_000  # of the local day (Asia/Ho_Chi_Minh has no DST)
    keys: list[str] = field(default_factory=list)  # window key ("a|b|c") per row
    entity: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # entity index per row
    columns: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (rows x slots)
    slot_window: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # window index per slot
    version: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    day: int = -1  # local day of the newest window upserted
    day_totals: dict[str, np.ndarray] = field(default_factory=dict)  # DAILY column -> per row, that day

    def __post_init__(self) -> None:
        if not len(self.slot_window):
            self.slot_window = np.full(self.slots, -1, np.int64)
            self.version = np.zeros((0, self.slots), np.int64)
            self.columns = {c: np.zeros((0, self.slots)) for c in COLUMNS[self.family]}
            self.day_totals = {c: np.zeros(0) for c in DAILY.get(self.family, ())}

    def _rows(self, windows: pa.Table) -> np.ndarray:
        """Row index per window, adding rows for keys never seen (Python work only for those)."""
        parts = [pc.cast(windows.column(k), pa.string()) for k in WINDOW_KEYS[self.family]]
        key = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, "|")
        codes = pc.index_in(key, value_set=pa.array(self.keys, pa.string()))
        if codes.null_count:
            new = pc.unique(key.filter(pc.is_null(codes))).to_pylist()
            entities = []
            for k in new:
                name = k.split("|", 1)[0]
                known = self.subjects.entities
                entities.append(known.index(name) if name in known else self.subjects.add_entity(name))
            self.keys.extend(new)
            self.entity = np.append(self.entity, np.array(entities, np.int64))
            grow = len(new)
            for name, (_, additive) in COLUMNS[self.family].items():
                fill = 0.0 if additive else np.nan
                self.columns[name] = np.vstack([self.columns[name], np.full((grow, self.slots), fill)])
            self.version = np.vstack([self.version, np.zeros((grow, self.slots), np.int64)])
            for name in self.day_totals:
                self.day_totals[name] = np.append(self.day_totals[name], np.zeros(grow))
            codes = pc.index_in(key, value_set=pa.array(self.keys, pa.string()))
        return codes.to_numpy(zero_copy_only=False).astype(np.int64)

    def upsert(self, windows: pa.Table) -> None:
        """Windows into their slots; the caller upserts in window order (`streams.incidents` does)."""
        if not windows.num_rows:
            return
        rows = self._rows(windows)
        start = pc.cast(windows.column("window_start"), pa.int64()).to_numpy(zero_copy_only=False)
        index = start // self.window_ms
        version = pc.cast(windows.column("version"), pa.int64()).to_numpy(zero_copy_only=False)
        slot = index % self.slots
        # A slot moving on to a newer window forgets the old one, for every key.
        newest = np.full(self.slots, -1, np.int64)
        np.maximum.at(newest, slot, index)
        moved = newest > self.slot_window
        if moved.any():
            for name, (_, additive) in COLUMNS[self.family].items():
                self.columns[name][:, moved] = 0.0 if additive else np.nan
            self.version[:, moved] = 0
            self.slot_window[moved] = newest[moved]
        keep = (index == self.slot_window[slot]) & (version >= self.version[rows, slot])
        if not keep.any():
            return
        # One write per (row, slot): its highest version (copies of a window are the same window).
        by_version = np.flatnonzero(keep)[np.argsort(version[keep], kind="stable")]
        cell = rows[by_version] * self.slots + slot[by_version]
        _, last = np.unique(cell[::-1], return_index=True)
        order = by_version[::-1][last]
        r, s = rows[order], slot[order]
        picked = windows.take(pa.array(order))
        day = (start[order] + self.utc_offset_ms) // 86_400_000
        if self.day_totals and day.max() > self.day:
            self.day = int(day.max())
            for name in self.day_totals:
                self.day_totals[name][:] = 0.0
        today = day == self.day
        for name, (compute, _) in COLUMNS[self.family].items():
            values = compute(picked)
            if name in self.day_totals:  # what the slot held is counted already: add the difference
                np.add.at(self.day_totals[name], r[today], (values - self.columns[name][r, s])[today])
            self.columns[name][r, s] = values
        self.version[r, s] = version[order]

    # ------------------------------------------------------------ reading at one window end

    def valid_slots(self, last: int, span: int) -> np.ndarray:
        """Slots holding windows last-span+1 .. last (window indices)."""
        wanted = np.arange(last - span + 1, last + 1)
        slots = wanted % self.slots
        return slots[self.slot_window[slots] == wanted]

    def rolling(self, name: str, last: int, span: int) -> np.ndarray:
        """Per row: the column summed over the `span` windows ending with window `last`."""
        slots = self.valid_slots(last, span)
        return self.columns[name][:, slots].sum(axis=1) if len(slots) else np.zeros(len(self.keys))

    def latest(self, name: str, last: int) -> np.ndarray:
        slot = last % self.slots
        if self.slot_window[slot] != last:
            return np.full(len(self.keys), np.nan)
        return self.columns[name][:, slot]

    def by_scope(self, per_row: np.ndarray, scope: str) -> np.ndarray:
        """Per subject of `scope`: the sum over its rows (rows of other subjects or none are left out)."""
        subject = self.subjects.entity_scope[scope][self.entity] if len(self.entity) else np.zeros(0, np.int64)
        n = len(self.subjects.names[scope])
        ok = subject >= 0
        return np.bincount(subject[ok], weights=per_row[ok], minlength=n)[:n]

    def by_entity(self, per_row: np.ndarray) -> np.ndarray:
        """Per entity, for `latest` columns: the value of its only row (NaN without one)."""
        out = np.full(len(self.subjects.entities), np.nan)
        out[self.entity] = per_row
        return out


@dataclass(frozen=True)
class Reading:
    """What a metric needs: the store, the last window index, its span in windows, the scope."""

    store: WindowStore
    last: int
    span: int
    scope: str
    service_min: float


Compute = Callable[[Reading], tuple[np.ndarray, np.ndarray]]


def ratio(numerator: str, denominator: str) -> Compute:
    def compute(r: Reading) -> tuple[np.ndarray, np.ndarray]:
        num = r.store.by_scope(r.store.rolling(numerator, r.last, r.span), r.scope)
        den = r.store.by_scope(r.store.rolling(denominator, r.last, r.span), r.scope)
        return np.divide(num, den, out=np.full(len(den), np.nan), where=den > 0), den
    return compute


def latest(column: str) -> Compute:
    def compute(r: Reading) -> tuple[np.ndarray, np.ndarray]:
        value = r.store.by_entity(r.store.latest(column, r.last))
        return value, np.where(np.isnan(value), 0.0, 1.0)
    return compute


def arrival_excess(r: Reading) -> tuple[np.ndarray, np.ndarray]:
    """Tickets issued over the span beyond what the counters can serve in it, in standard deviations
    of a Poisson count at that capacity: (arrivals - capacity) / sqrt(capacity). Capacity = counters x
    span / mean service time, the center's own over the last hour once it served 5 people in it."""
    s = r.store
    issued = s.by_scope(s.rolling("issued", r.last, r.span), "center")
    hour = max(1, 3_600_000 // s.window_ms)
    served = s.by_scope(s.rolling("service_count", r.last, hour), "center")
    service_s = s.by_scope(s.rolling("service_sum", r.last, hour), "center")
    mean_min = np.where(served >= 5, service_s / np.maximum(served, 1) / 60, r.service_min)
    capacity = s.subjects.counters * (r.span * s.window_ms / 60_000) / np.maximum(mean_min, 0.1)
    return (issued - capacity) / np.sqrt(np.maximum(capacity, 1.0)), issued


ACTIVE_MIN = 30  # a center with no ticket event for this long is closed: its figures mean nothing


def _open_centers(r: Reading) -> np.ndarray:
    s = r.store
    span = max(1, ACTIVE_MIN * 60_000 // s.window_ms)
    moves = s.rolling("issued", r.last, span) + s.rolling("called", r.last, span) + s.rolling("abandoned", r.last, span)
    return s.by_scope(moves, "center") > 0


def waiting_per_counter(r: Reading) -> tuple[np.ndarray, np.ndarray]:
    """People in line now (issued today, neither called nor gone) per counter of an open center."""
    s = r.store
    totals = s.day_totals
    waiting = s.by_scope(totals["issued"] - totals["called"] - totals["abandoned"], "center")
    return np.where(_open_centers(r), waiting / s.subjects.counters, np.nan), waiting


def arrivals(r: Reading) -> tuple[np.ndarray, np.ndarray]:
    """Tickets issued over the span, at an open center (zeros included: a quiet spell is usual too)."""
    issued = r.store.by_scope(r.store.rolling("issued", r.last, r.span), "center")
    return np.where(_open_centers(r), issued, np.nan), issued


@dataclass(frozen=True)
class MetricSpec:
    family: str
    compute: Compute
    scopes: tuple[str, ...]
    max_over_min: float = 120  # the store keeps two hours of windows (an hour for arrival_excess)


_ROLLED = ("commune", "province")
METRICS: dict[tuple[str, str], MetricSpec] = {
    ("network", "availability"): MetricSpec("network", ratio("up_samples", "samples"), ("node", *_ROLLED)),
    ("network", "loss_when_up"): MetricSpec("network", latest("loss_when_up"), ("node",), 0),
    ("network", "latency_p50"): MetricSpec("network", latest("latency_p50"), ("node",), 0),
    ("service_center", "wait_p90"): MetricSpec("service_center", latest("wait_p90"), ("center",), 0),
    ("service_center", "arrival_excess"): MetricSpec("service_center", arrival_excess, ("center",), 60),
    ("service_center", "arrivals"): MetricSpec("service_center", arrivals, ("center",), 60),
    ("service_center", "waiting_per_counter"): MetricSpec("service_center", waiting_per_counter, ("center",), 0),
    ("service_center", "abandonment"): MetricSpec("service_center", ratio("abandoned", "issued"),
                                                  ("center", *_ROLLED)),
    ("filings", "online_share"): MetricSpec("filings", ratio("online", "submitted"), ("agency", *_ROLLED)),
    ("filings", "on_time_share"): MetricSpec("filings", ratio("on_time", "processed"), ("agency", *_ROLLED)),
}
