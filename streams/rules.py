"""Alert rules as configuration: how emitted windows become incidents (`streams.incidents`).

A rules file is TOML: a `[settings]` table and one `[rules.NAME]` table per rule. The bundled
`streams/rules/default.toml` holds the defaults; `IOC_RULES_FILE=path` replaces it (a deployment's
own thresholds), and a file may start with `extends = "default"` to override a few keys of another.
Parsing is strict: an unknown key, a metric the family does not have, a scope the metric cannot be
rolled up to, a missing or contradictory threshold are errors that name the file and the line, so a
worker never starts half-configured (it loads the rules before it joins the consumer group).

A threshold rule breaches while its metric is `above` (or `below`) the threshold; an incident opens
once the breach held `for_min` minutes, and a breach ends only when the metric is back past `clear`
(hysteresis: between the two the state holds) for `clear_for_min` minutes, or when the subject gave no
data to judge for `stale_min` (a center that closed for the night). An anomaly rule breaches while the
metric is more than `z` deviations above its exponentially weighted mean (`alpha`), once `min_history`
windows have been seen; it learns the usual level only from windows that do not breach, so a surge does
not become the norm while it lasts.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.metrics import METRICS, SCOPES

RULES_DIR = Path(__file__).parent / "rules"
DEFAULT_RULES = RULES_DIR / "default.toml"
SEVERITIES = ("info", "warning", "critical")
KINDS = ("threshold", "anomaly")


class RulesError(ValueError):
    """A rules file that cannot be used; the message names the file and the line."""


@dataclass(frozen=True)
class Rule:
    name: str
    family: str  # network, service_center, filings
    metric: str  # a metric of the family (streams.metrics.METRICS)
    scope: str  # node, center, agency, commune, province: what one incident is about
    severity: str
    title: str  # str.format fields: subject, value, threshold
    kind: str = "threshold"
    above: float | None = None
    below: float | None = None
    clear: float | None = None  # hysteresis level; default: the threshold itself
    for_min: float = 0.0
    clear_for_min: float = 5.0
    over_min: float = 0.0  # the metric over this many trailing minutes (0: the latest window)
    min_volume: float = 0.0  # no judgement while the metric's volume (e.g. dossiers) is below this
    service_min: float = 10.0  # arrival_excess: mean service time until the center's own is measured
    z: float = 4.0  # anomaly: deviations above the EWMA that breach
    alpha: float = 0.1
    min_history: int = 20
    counts: bool = False  # anomaly on a count: its variance is at least its mean (Poisson), whatever the EWMA says
    daily_slots: int = 0  # anomaly: one usual level per time of day (this many slots a day, local time); 0: one
    stale_min: float = 60.0  # a breach without any judgement for this long ends (its subject went quiet)
    enabled: bool = True

    @property
    def threshold(self) -> float:
        if self.kind == "anomaly":
            return self.z
        value = self.above if self.above is not None else self.below
        assert value is not None
        return value

    @property
    def breaches_above(self) -> bool:
        return self.kind == "anomaly" or self.above is not None

    @property
    def clear_level(self) -> float:
        return self.threshold if self.clear is None else self.clear


@dataclass(frozen=True)
class Settings:
    timezone: str = "Asia/Ho_Chi_Minh"  # local day of the cumulative metrics (people waiting today)
    group_by_topology: bool = True  # an outage of a node and of the nodes below it is one incident
    idle_partition_s: float = 30.0  # a source partition silent this long (wall clock) stops holding the others back


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    settings: Settings = Settings()
    source: Path | None = None

    def of_family(self, family: str) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.family == family and r.enabled)


def _line_of(text: str, section: str, key: str | None = None) -> int:
    """1-based line of `[section]` (or of `key =` inside it) in a TOML text; 0 when not found."""
    lines = text.splitlines()
    header = re.compile(r"^\s*\[\s*" + r"\s*\.\s*".join(re.escape(p) for p in section.split(".")) + r"\s*\]")
    for i, line in enumerate(lines):
        if header.match(line):
            if key is None:
                return i + 1
            for j in range(i + 1, len(lines)):
                if re.match(r"^\s*\[", lines[j]):
                    break
                if re.match(rf"^\s*{re.escape(key)}\s*=", lines[j]):
                    return j + 1
            return i + 1
    return 0


class _Located:
    """Raises RulesError at the line of a section or key of the file being read."""

    def __init__(self, path: Path, text: str) -> None:
        self.path, self.text = path, text

    def error(self, section: str, key: str | None, message: str) -> RulesError:
        line = _line_of(self.text, section, key)
        where = f"{self.path}:{line}" if line else str(self.path)
        return RulesError(f"{where}: [{section}]{f' {key}' if key else ''}: {message}")


def _read(path: Path, seen: tuple[Path, ...] = ()) -> tuple[dict[str, Any], dict[tuple[str, str | None], _Located]]:
    """The file's tables merged over the file it extends, and where each rule/key was written."""
    if path.resolve() in seen:
        raise RulesError(f"{path}: extends itself")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"rules file {path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text)  # its message carries "(at line N, column M)"
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{path}: not valid TOML: {exc}") from None
    here = _Located(path, text)
    parent = data.pop("extends", None)
    if parent is None:
        merged: dict[str, Any] = {}
        origin: dict[tuple[str, str | None], _Located] = {}
    else:
        parent_path = RULES_DIR / f"{parent}.toml" if "/" not in str(parent) else Path(parent)
        if not parent_path.is_file():
            line = next((i + 1 for i, t in enumerate(text.splitlines()) if re.match(r"^\s*extends\s*=", t)), 1)
            raise RulesError(f"{path}:{line}: extends {parent!r}: no such rules file")
        merged, origin = _read(parent_path, (*seen, path.resolve()))
    unknown = set(data) - {"settings", "rules"}
    if unknown:
        raise RulesError(f"{path}: unknown top-level key(s) {', '.join(sorted(unknown))}; expected [settings] "
                         "and [rules.NAME] tables")
    merged_settings = dict(merged.get("settings", {}))
    for key, value in data.get("settings", {}).items():
        merged_settings[key] = value
        origin[("settings", key)] = here
    rules = {name: dict(body) for name, body in merged.get("rules", {}).items()}
    for name, body in data.get("rules", {}).items():
        if not isinstance(body, dict):
            raise here.error(f"rules.{name}", None, "must be a table of keys")
        rules.setdefault(name, {}).update(body)
        origin[(f"rules.{name}", None)] = here
        for key in body:
            origin[(f"rules.{name}", key)] = here
    return {"settings": merged_settings, "rules": rules}, origin


_TYPES = {"float": (int, float), "int": (int,), "str": (str,), "bool": (bool,)}


def _typed(cls: type, raw: dict[str, Any], skip: tuple[str, ...], fail: Any) -> dict[str, Any]:
    known = {f.name: f for f in dataclasses.fields(cls) if f.name not in skip}
    out = {}
    for key, value in raw.items():
        if key not in known:
            raise fail(key, f"unknown key; known: {', '.join(known)}")
        expected = str(known[key].type).replace(" | None", "")
        ok = isinstance(value, _TYPES[expected]) and not (expected != "bool" and isinstance(value, bool))
        if not ok:
            raise fail(key, f"must be {expected}, got {value!r}")
        out[key] = float(value) if expected == "float" else value
    return out


def _rule(name: str, raw: dict[str, Any], where: dict[tuple[str, str | None], _Located]) -> Rule:
    section = f"rules.{name}"

    def fail(key: str | None, message: str) -> RulesError:
        located = where.get((section, key)) or where.get((section, None))
        return located.error(section, key, message) if located else RulesError(f"[{section}] {key}: {message}")

    values = _typed(Rule, raw, ("name",), fail)
    for required in ("family", "metric", "scope", "severity", "title"):
        if required not in values:
            raise fail(None, f"missing {required}")
    family, metric = values["family"], values["metric"]
    spec = METRICS.get((family, metric))
    if spec is None:
        known = ", ".join(sorted(m for f, m in METRICS if f == family)) or "none (unknown family)"
        raise fail("metric", f"{family} has no metric {metric!r}; known: {known}")
    if values["scope"] not in SCOPES:
        raise fail("scope", f"unknown scope {values['scope']!r}; known: {', '.join(SCOPES)}")
    if values["scope"] not in spec.scopes:
        raise fail("scope", f"{metric} can be judged per {', '.join(spec.scopes)}, not per {values['scope']}")
    if values["severity"] not in SEVERITIES:
        raise fail("severity", f"must be one of {', '.join(SEVERITIES)}")
    kind = values.get("kind", "threshold")
    if kind not in KINDS:
        raise fail("kind", f"must be one of {', '.join(KINDS)}")
    has = [k for k in ("above", "below") if k in values]
    if kind == "threshold" and len(has) != 1:
        raise fail(None, "a threshold rule needs exactly one of above or below")
    if kind == "anomaly" and has:
        raise fail(has[0], "an anomaly rule breaches on z (deviations), not on above/below")
    if "clear" in values and kind == "threshold":
        above = "above" in values
        threshold = values["above" if above else "below"]
        if (above and values["clear"] > threshold) or (not above and values["clear"] < threshold):
            raise fail("clear", f"must be on the healthy side of the threshold ({'<=' if above else '>='} "
                                f"{threshold:g})")
    for key in ("for_min", "clear_for_min", "over_min", "min_volume", "stale_min"):
        if values.get(key, 0.0) < 0:
            raise fail(key, "must be >= 0")
    slots = values.get("daily_slots", 0)
    if slots and (kind != "anomaly" or not 0 < slots <= 1440 or 1440 % slots):
        raise fail("daily_slots", "an anomaly rule's slots a day: a divisor of 1440 (48: half hours), or 0")
    if not 0 < values.get("alpha", 0.1) <= 1:
        raise fail("alpha", "must be in (0, 1]")
    if values.get("over_min", 0.0) > spec.max_over_min:
        raise fail("over_min", f"at most {spec.max_over_min:g} for {metric}")
    try:
        values["title"].format(subject="x", value=1.0, threshold=1.0)
    except (KeyError, IndexError, ValueError) as exc:
        raise fail("title", f"bad format ({exc}); fields: {{subject}}, {{value}}, {{threshold}}") from None
    return Rule(name=name, **values)


def load_rules(path: Path | str | None = None) -> RuleSet:
    """The rule set of `path` (default: the bundled defaults), checked; RulesError if unusable."""
    path = Path(path) if path else DEFAULT_RULES
    data, where = _read(path)

    def settings_fail(key: str | None, message: str) -> RulesError:
        located = where.get(("settings", key))
        return located.error("settings", key, message) if located else RulesError(f"{path}: [settings] {message}")

    settings = Settings(**_typed(Settings, data["settings"], (), settings_fail))
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(settings.timezone)
    except Exception:
        raise settings_fail("timezone", f"unknown timezone {settings.timezone!r}") from None
    rules = tuple(_rule(name, body, where) for name, body in data["rules"].items())
    if not any(r.enabled for r in rules):
        raise RulesError(f"{path}: no enabled rule")
    return RuleSet(rules, settings, path)
