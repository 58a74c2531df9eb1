"""Alerts raised from emitted windows: threshold rules, an EWMA anomaly detector, outages, deadlines.

Everything here runs on *windows* (a few hundred rows per minute), not on events. Alert ids are
deterministic (rule, subject, window), so an alert raised again after a restart or a re-emitted
window collapses in ClickHouse (`alerts` is a ReplacingMergeTree on alert_id).

Targets come from DESIGN.md and the default scenario: online share 70%, network availability
99.9%, loss 1%; a wait p90 above 30 minutes is what operators call a queue problem, and the Da
Nang IOC warns about dossiers more than 24 h before they fall due.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from models.events import ALERT
from streams.arrays import unique_sorted

ONLINE_SHARE_TARGET = 0.70
ONLINE_SHARE_SLACK = 0.20  # "far below target": 20 points under it
MIN_SUBMITTED_FOR_SHARE = 5
WAIT_P90_LIMIT_S = 1800.0
LOSS_LIMIT_PCT = 1.0
AVAILABILITY_TARGET = 0.999
DEADLINE_WARNING_MS = 24 * 3_600_000
EWMA_ALPHA = 0.1
EWMA_Z = 4.0
EWMA_MIN_HISTORY = 20


def _col(table: pa.Table, name: str) -> np.ndarray:
    return pc.fill_null(pc.cast(table.column(name), pa.float64()), np.nan).to_numpy(zero_copy_only=False)


@dataclass(frozen=True)
class ThresholdRule:
    rule: str
    family: str
    value: Callable[[pa.Table], np.ndarray]  # per window row; NaN = no judgement
    above: bool  # alert when value > threshold (else when value < threshold)
    threshold: float
    severity: str
    message: str  # format fields: subject, value, threshold


def _loss_when_up(w: pa.Table) -> np.ndarray:
    # A down link reports 100% loss; outages have their own alert, so judge loss only when up all window.
    samples, up = _col(w, "samples"), _col(w, "up_samples")
    return np.where((samples > 0) & (up == samples), _col(w, "loss_sum") / np.maximum(samples, 1), np.nan)


RULES: tuple[ThresholdRule, ...] = (
    ThresholdRule("wait_p90_high", "service_center", lambda w: _col(w, "wait_p90"), True, WAIT_P90_LIMIT_S,
                  "warning", "{subject}: wait p90 {value:.0f} s above {threshold:.0f} s"),
    ThresholdRule("loss_high", "network", _loss_when_up, True, LOSS_LIMIT_PCT, "warning",
                  "{subject}: packet loss {value:.2f}% above {threshold:.0f}%"),
    ThresholdRule("availability_low", "network", lambda w: _col(w, "availability"), False, AVAILABILITY_TARGET,
                  "critical", "{subject}: availability {value:.1%} under {threshold:.1%}"),
)

# Per family: the per-key series the anomaly detector follows.
ANOMALY_SERIES = {"service_center": "issued", "network": "latency_p50"}


@dataclass
class Ewma:
    """EWMA mean and variance per key, as arrays indexed by key code (keys grow, never shrink)."""

    keys: list[str] = field(default_factory=list)
    mean: np.ndarray = field(default_factory=lambda: np.zeros(0))
    var: np.ndarray = field(default_factory=lambda: np.zeros(0))
    n: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    last_start: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def codes(self, subjects: pa.Array) -> np.ndarray:
        """Key codes of `subjects`; Python work only for keys never seen before."""
        known = pa.array(self.keys, pa.string())
        codes = pc.index_in(subjects, value_set=known)
        if codes.null_count:
            new = pc.unique(subjects.filter(pc.is_null(codes))).to_pylist()
            self.keys.extend(new)
            grow = len(new)
            self.mean = np.concatenate((self.mean, np.zeros(grow)))
            self.var = np.concatenate((self.var, np.zeros(grow)))
            self.n = np.concatenate((self.n, np.zeros(grow, np.int64)))
            self.last_start = np.concatenate((self.last_start, np.full(grow, -(2**62), np.int64)))
            codes = pc.index_in(subjects, value_set=pa.array(self.keys, pa.string()))
        return codes.to_numpy(zero_copy_only=False).astype(np.int64)


@dataclass
class AlertState:
    """Per-partition detector state: EWMA per key, and dossiers open with a due time."""

    ewma: Ewma = field(default_factory=Ewma)
    open_dossiers: pa.Table | None = None  # dossier_id, agency_code, due_time, warned


def _alerts(family: str, rule: str, severity: str, subjects: list[str], times_ms: np.ndarray,
            values: np.ndarray, threshold: float, messages: list[str], ids: list[str]) -> pa.Table:
    return pa.table({
        "alert_id": ids,
        "event_time": pa.array(times_ms.astype(np.int64), pa.timestamp("ms", tz="UTC")),
        "family": [family] * len(ids),
        "subject": subjects,
        "rule": [rule] * len(ids),
        "severity": [severity] * len(ids),
        "value": pa.array(values, pa.float64(), from_pandas=True),
        "threshold": pa.array([threshold] * len(ids), pa.float64()),
        "message": messages,
    }, schema=ALERT.schema)


def _ms(table: pa.Table, name: str) -> np.ndarray:
    return pc.cast(table.column(name), pa.int64()).to_numpy(zero_copy_only=False)


def _subject(windows: pa.Table, family: str) -> list[str]:
    key = {"service_center": "center_id", "filings": "agency_code", "network": "node_id"}[family]
    return windows.column(key).to_pylist()


def threshold_alerts(family: str, windows: pa.Table) -> list[pa.Table]:
    out = []
    if not windows.num_rows:
        return out
    ends = _ms(windows, "window_end")
    subjects = _subject(windows, family)
    for r in (r for r in RULES if r.family == family):
        values = r.value(windows)
        hit = np.flatnonzero(values > r.threshold if r.above else values < r.threshold)  # NaN never hits
        if not len(hit):
            continue
        subs = [subjects[i] for i in hit]
        out.append(_alerts(family, r.rule, r.severity, subs, ends[hit], values[hit], r.threshold,
                           [r.message.format(subject=s, value=v, threshold=r.threshold)
                            for s, v in zip(subs, values[hit].tolist(), strict=True)],
                           [f"{r.rule}:{s}:{e}" for s, e in zip(subs, ends[hit].tolist(), strict=True)]))
    return out


def online_share_alerts(windows: pa.Table) -> list[pa.Table]:
    """An agency whose online share in a window is far below target (channels are rows: sum them)."""
    if not windows.num_rows:
        return []
    online = pc.not_equal(windows.column("channel"), "in_person")
    t = pa.table({"window_end": windows.column("window_end"), "agency_code": windows.column("agency_code"),
                  "submitted": pc.cast(windows.column("submitted"), pa.int64()),
                  "online": pc.if_else(online, pc.cast(windows.column("submitted"), pa.int64()), 0)})
    g = t.group_by(["window_end", "agency_code"]).aggregate([("submitted", "sum"), ("online", "sum")])
    total, on = _col(g, "submitted_sum"), _col(g, "online_sum")
    share = np.where(total > 0, on / np.maximum(total, 1), np.nan)
    limit = ONLINE_SHARE_TARGET - ONLINE_SHARE_SLACK
    hit = np.flatnonzero((total >= MIN_SUBMITTED_FOR_SHARE) & (share < limit))
    if not len(hit):
        return []
    subs = [g.column("agency_code")[int(i)].as_py() for i in hit]
    ends = _ms(g, "window_end")[hit]
    return [_alerts("filings", "online_share_low", "warning", subs, ends, share[hit], limit,
                    [f"{s}: online share {v:.0%} far below the {ONLINE_SHARE_TARGET:.0%} target"
                     for s, v in zip(subs, share[hit].tolist(), strict=True)],
                    [f"online_share_low:{s}:{e}" for s, e in zip(subs, ends.tolist(), strict=True)])]


def anomaly_alerts(family: str, state: AlertState, windows: pa.Table) -> list[pa.Table]:
    """EWMA mean/variance per key; a window more than EWMA_Z deviations off its key's history alerts.

    Each (key, window) updates the detector once, in window order: re-emitted windows are skipped.
    Vectorized over keys; the loop is over the distinct window starts of the batch (a handful).
    """
    metric = ANOMALY_SERIES.get(family)
    if metric is None or not windows.num_rows:
        return []
    key = {"service_center": "center_id", "network": "node_id"}[family]
    e = state.ewma
    codes = e.codes(windows.column(key).combine_chunks())
    starts, ends, values = _ms(windows, "window_start"), _ms(windows, "window_end"), _col(windows, metric)
    hit_rows: list[np.ndarray] = []
    hit_z: list[np.ndarray] = []
    for start in unique_sorted(starts):
        rows = np.flatnonzero((starts == start) & ~np.isnan(values))
        rows = rows[start > e.last_start[codes[rows]]]  # a re-emitted window was already counted
        if not len(rows):
            continue
        k, x = codes[rows], values[rows]
        mean, var, n = e.mean[k], e.var[k], e.n[k]
        judged = (n >= EWMA_MIN_HISTORY) & (var > 0)
        z = np.where(judged, (x - mean) / np.sqrt(np.where(var > 0, var, 1.0)), 0.0)
        far = judged & (np.abs(z) > EWMA_Z)
        hit_rows.append(rows[far])
        hit_z.append(z[far])
        delta = x - mean
        first = n == 0
        e.mean[k] = np.where(first, x, mean + EWMA_ALPHA * delta)
        e.var[k] = np.where(first, 0.0, (1 - EWMA_ALPHA) * (var + EWMA_ALPHA * delta * delta))
        e.n[k] = n + 1
        e.last_start[k] = start
    rows = np.concatenate(hit_rows) if hit_rows else np.zeros(0, np.int64)
    if not len(rows):
        return []
    zs = np.concatenate(hit_z)
    subjects = windows.column(key).take(pa.array(rows)).to_pylist()
    rule = f"{metric}_anomaly"
    return [_alerts(family, rule, "warning", subjects, ends[rows], values[rows], EWMA_Z,
                    [f"{k}: {metric} {x:.1f} is {z:+.1f} deviations from its usual level"
                     for k, x, z in zip(subjects, values[rows].tolist(), zs.tolist(), strict=True)],
                    [f"{rule}:{k}:{t}" for k, t in zip(subjects, ends[rows].tolist(), strict=True)])]


def outage_alerts(sessions: pa.Table | None) -> list[pa.Table]:
    if sessions is None or not sessions.num_rows:
        return []
    nodes = sessions.column("node_id").to_pylist()
    starts = _ms(sessions, "start")
    durations = _col(sessions, "duration_s")
    return [_alerts("network", "node_outage", "critical", nodes, starts, durations, 0.0,
                    [f"{n}: link down for {d / 60:.1f} min" for n, d in zip(nodes, durations.tolist(), strict=True)],
                    [f"node_outage:{n}:{s}" for n, s in zip(nodes, starts.tolist(), strict=True)])]


_OPEN_SCHEMA = pa.schema([("dossier_id", pa.string()), ("agency_code", pa.string()),
                          ("due_time", pa.timestamp("ms", tz="UTC")), ("warned", pa.bool_())])


def deadline_alerts(state: AlertState, events: pa.Table, watermark_ms: int | None) -> list[pa.Table]:
    """Dossiers due within 24 h with no `processed` event yet (warning), and those that went past due."""
    kinds = events.column("kind")
    submitted = events.filter(pc.and_(pc.equal(kinds, "submitted"), pc.is_valid(events.column("due_time"))))
    opened = pa.table({"dossier_id": submitted.column("dossier_id"), "agency_code": submitted.column("agency_code"),
                       "due_time": submitted.column("due_time"),
                       "warned": pa.array(np.zeros(submitted.num_rows, bool))}, schema=_OPEN_SCHEMA)
    current = state.open_dossiers if state.open_dossiers is not None else _OPEN_SCHEMA.empty_table()
    current = pa.concat_tables([current, opened])
    closed = events.filter(pc.is_in(kinds, pa.array(["processed", "rejected"]))).column("dossier_id")
    if len(closed):
        current = current.filter(pc.invert(pc.is_in(current.column("dossier_id"), value_set=closed.combine_chunks())))
    out: list[pa.Table] = []
    if watermark_ms is not None and current.num_rows:
        due = _ms(current, "due_time")
        warned = current.column("warned").to_numpy(zero_copy_only=False)
        missed = due < watermark_ms
        warn = ~missed & ~warned & (due - watermark_ms <= DEADLINE_WARNING_MS)
        for mask, rule, severity, text in ((warn, "deadline_warning", "warning", "due within 24 h"),
                                           (missed, "deadline_missed", "critical", "past due, not processed")):
            idx = np.flatnonzero(mask)
            if not len(idx):
                continue
            ids = current.column("dossier_id").take(pa.array(idx)).to_pylist()
            agencies = current.column("agency_code").take(pa.array(idx)).to_pylist()
            hours = (due[idx] - watermark_ms) / 3_600_000
            out.append(_alerts("filings", rule, severity, agencies, np.full(len(idx), watermark_ms), hours, 24.0,
                               [f"{a}: dossier {d} {text}" for a, d in zip(agencies, ids, strict=True)],
                               [f"{rule}:{d}" for d in ids]))
        current = current.filter(pa.array(~missed)).set_column(
            3, "warned", pa.array((warned | warn)[~missed]))
    state.open_dossiers = current
    return out


def raise_alerts(family: str, state: AlertState, emitted: object, events: pa.Table,
                 watermark_ms: int | None) -> pa.Table:
    """All alerts of one processed batch, as one table of the ALERT schema."""
    windows: pa.Table = emitted.windows  # type: ignore[attr-defined]
    parts = threshold_alerts(family, windows) + anomaly_alerts(family, state, windows)
    if family == "filings":
        parts += online_share_alerts(windows) + deadline_alerts(state, events, watermark_ms)
    if family == "network":
        parts += outage_alerts(emitted.sessions)  # type: ignore[attr-defined]
    return pa.concat_tables(parts) if parts else ALERT.schema.empty_table()
