"""Scenarios: what a simulated province looks like (volumes, rates, office hours, incidents).

A scenario is a TOML file (`simulators/scenarios/NAME.toml`, or any path) parsed into frozen
dataclasses. Parsing is strict: an unknown key, a wrong type or a rate outside [0, 1] is an error
naming the offending key, because a silently ignored typo would quietly change the calibration.
A scenario may start with `extends = "NAME"` to override a few keys of another one.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

SCENARIO_DIR = Path(__file__).parent / "scenarios"


class ScenarioError(ValueError):
    """A scenario that cannot be found or does not make sense."""


def parse_hhmm(text: str) -> int:
    """'07:30' -> minutes after local midnight."""
    try:
        hours, minutes = (int(part) for part in text.split(":"))
    except ValueError:
        raise ScenarioError(f"expected a local time HH:MM, got {text!r}") from None
    if not (0 <= hours <= 24 and 0 <= minutes < 60 and hours * 60 + minutes <= 1440):
        raise ScenarioError(f"not a time of day: {text!r}")
    return hours * 60 + minutes


def _check_rate(where: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ScenarioError(f"{where} must be a rate in [0, 1], got {value}")


def _check_positive(where: str, value: float, allow_zero: bool = True) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        raise ScenarioError(f"{where} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


@dataclass(frozen=True)
class OfficeHours:
    sessions: tuple[tuple[int, int], ...] = ((450, 690), (810, 1020))  # local minutes [start, end)
    weekmask: str = "1111100"
    holidays: tuple[date, ...] = ()
    monday_morning_peak: float = 1.6

    @property
    def minutes_per_day(self) -> int:
        return sum(end - start for start, end in self.sessions)

    def check(self) -> None:
        if not self.sessions:
            raise ScenarioError("office_hours.sessions must list at least one [start, end] session")
        previous_end = 0
        for start, end in self.sessions:
            if not previous_end <= start < end:
                raise ScenarioError("office_hours.sessions must be ordered, non-overlapping [start, end] pairs")
            previous_end = end
        if len(self.weekmask) != 7 or set(self.weekmask) - {"0", "1"} or "1" not in self.weekmask:
            raise ScenarioError(f"office_hours.weekmask must be 7 digits 0/1 (Monday first), got {self.weekmask!r}")
        _check_positive("office_hours.monday_morning_peak", self.monday_morning_peak, allow_zero=False)


@dataclass(frozen=True)
class FilingsSpec:
    province_per_working_day: float = 540.0
    commune_per_working_day: float = 500.0
    online_application: float = 0.70
    online_after_hours: float = 0.15
    online_weekend: float = 0.08
    online_payment: float = 0.4476
    digitisation: float = 0.8088
    data_reuse: float = 0.5845
    electronic_results: float = 0.8119
    on_time: float = 0.95
    rejection: float = 0.03
    mean_lateness_days: float = 3.0
    max_lateness_days: int = 10

    RATES: ClassVar[tuple[str, ...]] = (
        "online_application", "online_payment", "digitisation", "data_reuse", "electronic_results", "on_time",
        "rejection",
    )

    def check(self) -> None:
        for name in self.RATES:
            _check_rate(f"filings.{name}", getattr(self, name))
        for name in ("province_per_working_day", "commune_per_working_day", "online_after_hours", "online_weekend"):
            _check_positive(f"filings.{name}", getattr(self, name))
        _check_positive("filings.mean_lateness_days", self.mean_lateness_days, allow_zero=False)
        if not 1 <= self.max_lateness_days <= 60:
            raise ScenarioError(f"filings.max_lateness_days must be in 1..60, got {self.max_lateness_days}")


@dataclass(frozen=True)
class ServiceCenterSpec:
    province_tickets_per_day: float = 600.0
    commune_tickets_per_day: float = 30.0
    province_service_min: float = 15.0
    commune_service_min: float = 10.0
    patience_min: float = 45.0
    overtime_min: float = 30.0

    def check(self) -> None:
        for f in dataclasses.fields(self):
            allow_zero = f.name.endswith(("per_day", "overtime_min"))
            _check_positive(f"service_center.{f.name}", getattr(self, f.name), allow_zero=allow_zero)
        if not 5 <= self.patience_min <= 600:
            # The queue model scales by exp(minutes / patience) over a day; keep that finite.
            raise ScenarioError(f"service_center.patience_min must be in [5, 600], got {self.patience_min}")


@dataclass(frozen=True)
class NetworkSpec:
    interval_s: float = 10.0
    busy_utilisation: float = 0.45
    night_utilisation: float = 0.04
    core_latency_ms: float = 1.5
    province_latency_ms: float = 6.0
    commune_latency_ms: float = 18.0
    base_loss_pct: float = 0.02

    def check(self) -> None:
        if not 1.0 <= self.interval_s <= 3600:
            raise ScenarioError(f"network.interval_s must be in [1, 3600] seconds, got {self.interval_s}")
        _check_rate("network.busy_utilisation", self.busy_utilisation)
        _check_rate("network.night_utilisation", self.night_utilisation)
        for name in ("core_latency_ms", "province_latency_ms", "commune_latency_ms", "base_loss_pct"):
            _check_positive(f"network.{name}", getattr(self, name))


# ---------------------------------------------------------------- incidents


@dataclass(frozen=True, kw_only=True)
class Incident:
    """Something going wrong for `duration_min` from local time `start` on simulated day `day`."""

    kind: ClassVar[str] = ""
    day: int = 0  # days after the first simulated day: incidents show up whatever date is simulated
    start: int  # local minutes after midnight (written "HH:MM" in the file)
    duration_min: float

    def check(self) -> None:
        if self.day < 0:
            raise ScenarioError(f"incident {self.kind}: day must be >= 0, got {self.day}")
        _check_positive(f"incident {self.kind}: duration_min", self.duration_min, allow_zero=False)


@dataclass(frozen=True, kw_only=True)
class NodeOutage(Incident):
    kind: ClassVar[str] = "node_outage"
    node: str


@dataclass(frozen=True, kw_only=True)
class DegradedLink(Incident):
    kind: ClassVar[str] = "degraded_link"
    node: str
    extra_latency_ms: float = 150.0
    extra_loss_pct: float = 3.0

    def check(self) -> None:
        super().check()
        _check_positive("incident degraded_link: extra_latency_ms", self.extra_latency_ms)
        if not 0 <= self.extra_loss_pct <= 100:
            raise ScenarioError(
                f"incident degraded_link: extra_loss_pct must be in [0, 100], got {self.extra_loss_pct}")


@dataclass(frozen=True, kw_only=True)
class QueueSurge(Incident):
    kind: ClassVar[str] = "queue_surge"
    center: str
    factor: float = 3.0

    def check(self) -> None:
        super().check()
        _check_positive("incident queue_surge: factor", self.factor)


@dataclass(frozen=True, kw_only=True)
class PortalOutage(Incident):
    kind: ClassVar[str] = "portal_outage"
    shift_to_in_person: float = 0.5

    def check(self) -> None:
        super().check()
        _check_rate("incident portal_outage: shift_to_in_person", self.shift_to_in_person)


IncidentT = TypeVar("IncidentT", bound=Incident)
INCIDENT_KINDS: dict[str, type[Incident]] = {c.kind: c for c in (NodeOutage, DegradedLink, QueueSurge, PortalOutage)}


# ---------------------------------------------------------------- the scenario


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str = ""
    province: str = "QNG"
    timezone: str = "Asia/Ho_Chi_Minh"
    load_factor: float = 1.0
    office_hours: OfficeHours = field(default_factory=OfficeHours)
    filings: FilingsSpec = field(default_factory=FilingsSpec)
    service_center: ServiceCenterSpec = field(default_factory=ServiceCenterSpec)
    network: NetworkSpec = field(default_factory=NetworkSpec)
    targets: dict[str, float] = field(default_factory=dict)
    incidents: tuple[Incident, ...] = ()
    source: Path | None = None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def incidents_of(self, kind: type[IncidentT]) -> list[IncidentT]:
        return [i for i in self.incidents if isinstance(i, kind)]

    def check(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ScenarioError(f"unknown timezone {self.timezone!r}") from None
        _check_positive("load_factor", self.load_factor, allow_zero=False)
        for part in (self.office_hours, self.filings, self.service_center, self.network, *self.incidents):
            part.check()


# ---------------------------------------------------------------- loading


def available_scenarios() -> list[str]:
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def scenario_path(name_or_path: str | Path) -> Path:
    """A bundled scenario by name, or a TOML file by path."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(".toml") or "/" in text:
        path = Path(name_or_path)
        if not path.is_file():
            raise ScenarioError(f"scenario file not found: {path}")
        return path
    path = SCENARIO_DIR / f"{text}.toml"
    if not path.is_file():
        raise ScenarioError(
            f"unknown scenario {text!r}; available: {', '.join(available_scenarios())} (or give a path to a .toml file)"
        )
    return path


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(
            merged.get(key), dict) else value
    return merged


def _read(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path.resolve() in seen:
        raise ScenarioError(f"scenario {path} extends itself")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    parent = data.pop("extends", None)
    if parent is None:
        return data
    merged = _merge(_read(scenario_path(parent), (*seen, path.resolve())), data)
    if "name" not in data:
        merged.pop("name", None)  # a scenario is named by its own file, not by its parent
    return merged


def load_scenario(name_or_path: str | Path | Scenario) -> Scenario:
    """Parse and check a scenario; a `Scenario` passes through (checked)."""
    if isinstance(name_or_path, Scenario):
        name_or_path.check()
        return name_or_path
    path = scenario_path(name_or_path)
    data = _read(path)
    try:
        scenario = scenario_from_dict(data, default_name=path.stem, source=path)
    except ScenarioError as exc:
        raise ScenarioError(f"{path}: {exc}") from None
    return scenario


def scenario_from_dict(data: dict[str, Any], default_name: str = "custom", source: Path | None = None) -> Scenario:
    data = dict(data)
    sections = {
        "office_hours": _office_hours(data.pop("office_hours", {})),
        "filings": _build(FilingsSpec, data.pop("filings", {}), "filings"),
        "service_center": _build(ServiceCenterSpec, data.pop("service_center", {}), "service_center"),
        "network": _build(NetworkSpec, data.pop("network", {}), "network"),
        "targets": _targets(data.pop("targets", {})),
        "incidents": tuple(_incident(i, raw) for i, raw in enumerate(data.pop("incidents", []))),
    }
    data.setdefault("name", default_name)
    top = _build(Scenario, data, "scenario", skip=(*sections, "source"))
    scenario = dataclasses.replace(top, **sections, source=source)
    scenario.check()
    return scenario


def _coerce(where: str, value: Any, annotation: Any) -> Any:
    """TOML value -> the field's declared scalar type (ints are accepted where floats are).

    Annotations are strings under `from __future__ import annotations`; matching them by name is
    all the scalar fields here need (tables and lists are parsed by their own functions).
    """
    expected = {"float": float, "int": int, "str": str, "bool": bool}.get(str(annotation))
    if expected is None:
        return value
    ok = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise ScenarioError(f"{where} must be {expected.__name__}, got {value!r}")
    return value


def _build(cls: Any, raw: Any, where: str, skip: tuple[str, ...] = ()) -> Any:
    if not isinstance(raw, dict):
        raise ScenarioError(f"[{where}] must be a table")
    known = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name not in skip}
    unknown = set(raw) - set(known)
    if unknown:
        raise ScenarioError(f"unknown key(s) in [{where}]: {', '.join(sorted(unknown))}; "
                            f"known: {', '.join(known)}")
    return cls(**{k: _coerce(f"{where}.{k}", v, known[k].type) for k, v in raw.items()})


def _office_hours(raw: dict[str, Any]) -> OfficeHours:
    raw = dict(raw)
    sessions = raw.pop("sessions", None)
    holidays = raw.pop("holidays", [])
    hours = _build(OfficeHours, raw, "office_hours", skip=("sessions", "holidays"))
    if sessions is not None:
        if not all(isinstance(s, list) and len(s) == 2 for s in sessions):
            raise ScenarioError('office_hours.sessions must be a list of ["HH:MM", "HH:MM"] pairs')
        hours = dataclasses.replace(hours, sessions=tuple((parse_hhmm(a), parse_hhmm(b)) for a, b in sessions))
    try:
        days = tuple(sorted(d if isinstance(d, date) else date.fromisoformat(d) for d in holidays))
    except (TypeError, ValueError):
        raise ScenarioError("office_hours.holidays must be a list of dates (YYYY-MM-DD)") from None
    return dataclasses.replace(hours, holidays=days)


def _targets(raw: Any) -> dict[str, float]:
    if not isinstance(raw, dict):
        raise ScenarioError("[targets] must be a table of numbers")
    return {k: _coerce(f"targets.{k}", v, "float") for k, v in raw.items()}


def _incident(index: int, raw: Any) -> Incident:
    where = f"incidents[{index}]"
    if not isinstance(raw, dict) or "kind" not in raw:
        raise ScenarioError(f"{where} needs a kind: one of {', '.join(INCIDENT_KINDS)}")
    raw = dict(raw)
    kind = raw.pop("kind")
    cls = INCIDENT_KINDS.get(kind)
    if cls is None:
        raise ScenarioError(f"{where}: unknown incident kind {kind!r}; known: {', '.join(INCIDENT_KINDS)}")
    if "start" not in raw or "duration_min" not in raw:
        raise ScenarioError(f"{where} ({kind}) needs start (HH:MM) and duration_min")
    if not isinstance(raw["start"], str):
        raise ScenarioError(f"{where}.start must be a local time string HH:MM")
    raw["start"] = parse_hhmm(raw["start"])
    required = [f.name for f in dataclasses.fields(cls)
                if f.init and f.default is dataclasses.MISSING and f.name not in raw]
    if required:
        raise ScenarioError(f"{where} ({kind}) is missing {', '.join(required)}")
    return _build(cls, raw, f"{where} ({kind})")
