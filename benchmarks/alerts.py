"""`ioc bench alerts`: detection quality of the incident rules against the simulator's ground truth.

The default scenario over 5 simulated days (a working week, seed 7) goes through the same pipelines a
worker runs (`streams.pipeline.process_tables`: windows, then the incident stage fed as a live worker
feeds it, `streams.signals.replay_signals`), without Kafka: what is measured is the rules and the
engine, not the transport (tests run the same stage on a real broker). The incidents are scored against
the injected ones (`simulators.truth`):

- recall: injected incidents that an incident of their family touched (one of its affected subjects)
  while they lasted, or within `MATCH_SLACK_MS` after;
- time to detect: first `detected_at` of a matching incident minus the injected start, in event time
  (negative when an incident on that subject was already open, e.g. a rush the surge came on top of);
- false alarms: incidents that match no injected incident, per local day.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from models.settings import Settings
from simulators.generate import generate
from simulators.scenario import load_scenario
from simulators.truth import MATCH_SLACK_MS, InjectedIncident, injected
from simulators.world import World
from streams.pipeline import process_tables
from streams.rules import load_rules
from streams.signals import latest_incidents, replay_signals

TARGET_TTD_MIN = {"network": 5.0, "service_center": 15.0, "filings": 15.0}
TARGET_FALSE_PER_DAY = 10
LOCAL = ZoneInfo("Asia/Ho_Chi_Minh")


@dataclass(frozen=True)
class AlertsParams:
    scenario: str = "default"
    start: date = date(2025, 7, 14)  # a Monday
    days: int = 5
    seed: int = 7
    rules_file: str = ""  # default: the worker's own (IOC_RULES_FILE, else the bundled defaults)


def _ms(value: object) -> int | None:
    if value is None:
        return None
    assert isinstance(value, datetime)
    return int(value.timestamp() * 1000)


def _matches(incident: dict[str, Any], truth: InjectedIncident) -> bool:
    if incident["family"] != truth.family or not set(incident["subjects"]) & set(truth.affected):
        return False
    start, end = _ms(incident["start"]), _ms(incident["end"])
    assert start is not None
    return start <= truth.end_ms + MATCH_SLACK_MS and (end is None or end >= truth.start_ms)


def score(incidents: pa.Table, truth: list[InjectedIncident]) -> dict[str, Any]:
    """Recall, time to detect per injected incident and unmatched incidents per local day."""
    rows = incidents.to_pylist()
    matched: set[str] = set()
    per_truth = []
    for t in truth:
        hits = [r for r in rows if _matches(r, t)]
        matched.update(r["incident_id"] for r in hits)
        first = min(hits, key=lambda r: _ms(r["detected_at"]) or 0) if hits else None
        ttd = None if first is None else ((_ms(first["detected_at"]) or 0) - t.start_ms) / 60_000
        target = TARGET_TTD_MIN[t.family]
        per_truth.append({"kind": t.kind, "family": t.family, "subject": t.subject, "affected": len(t.affected),
                          "start": datetime.fromtimestamp(t.start_ms / 1000, UTC).astimezone(LOCAL).isoformat(),
                          "detected": first is not None,
                          "time_to_detect_min": None if ttd is None else round(ttd, 1),
                          "target_min": target, "within_target": ttd is not None and ttd <= target,
                          "incident": None if first is None else {
                              "subject": first["subject"], "rules": first["rules"], "subjects": len(first["subjects"]),
                              "communes": len(first["communes"])}})
    unmatched = [r for r in rows if r["incident_id"] not in matched]
    by_day = Counter(r["start"].astimezone(LOCAL).date().isoformat() for r in unmatched)
    detected = sum(p["detected"] for p in per_truth)
    return {"injected": len(truth), "detected": detected, "recall": detected / len(truth) if truth else None,
            "within_target": sum(p["within_target"] for p in per_truth), "incidents": len(rows),
            "unmatched": len(unmatched), "unmatched_by_day": dict(sorted(by_day.items())),
            "unmatched_max_per_day": max(by_day.values(), default=0),
            "unmatched_incidents": [{"family": r["family"], "subject": r["subject"], "rules": r["rules"],
                                     "start": r["start"].astimezone(LOCAL).isoformat()} for r in unmatched],
            "per_injected": per_truth}


def run_alerts_bench(params: AlertsParams | None = None, settings: Settings | None = None) -> dict[str, Any]:
    params = params or AlertsParams()
    settings = settings or Settings.from_env()
    rules = load_rules(params.rules_file or settings.rules_file or None)
    hours = 24 * params.days
    started = time.monotonic()
    tables = generate(params.scenario, params.start, hours, seed=params.seed)
    truth = injected(World.create(load_scenario(params.scenario), params.start, float(hours), params.seed))
    events = sum(t.num_rows for t in tables.values())
    windows_s = time.monotonic()
    outputs = process_tables(tables, settings)
    del tables
    incidents_s = time.monotonic()
    incidents = latest_incidents(replay_signals(outputs, rules, settings.province))  # = process_offline, timed apart
    done = time.monotonic()
    scored = score(incidents, truth)
    r = scored["recall"]
    return {
        "benchmark": "alerts",
        "params": {"scenario": params.scenario, "start": params.start.isoformat(), "days": params.days,
                   "seed": params.seed, "rules": str(rules.source)},
        "events": events,
        "seconds": {"simulate": round(windows_s - started, 1), "windows": round(incidents_s - windows_s, 1),
                    "incidents": round(done - incidents_s, 1)},
        **scored,
        "unmatched_per_day": round(scored["unmatched"] / params.days, 2),
        "targets": {"recall": 1.0, "time_to_detect_min": TARGET_TTD_MIN,
                    "unmatched_per_day_at_most": TARGET_FALSE_PER_DAY,
                    "met": {"recall": r == 1.0, "time_to_detect": scored["within_target"] == scored["injected"],
                            "unmatched_per_day": scored["unmatched_max_per_day"] <= TARGET_FALSE_PER_DAY}},
    }
