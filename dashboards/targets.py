"""KPI targets for thresholds, read from the scenario the simulator is calibrated with.

`simulators/scenarios/default.toml [targets]` is the single source: the briefing compares against
the same numbers, so a target changed there moves every threshold on the wall at the next export.
"""

from __future__ import annotations

from dataclasses import dataclass

from grafana_foundation_sdk.builders.dashboard import ThresholdsConfig
from grafana_foundation_sdk.models.dashboard import Threshold, ThresholdsMode

GREEN, ORANGE, RED = "green", "orange", "red"
# How far below an "at least" target still counts as "close" (orange) rather than failing (red).
NEAR = 0.9


@dataclass(frozen=True)
class Targets:
    online_application: float
    online_payment: float
    digitisation: float
    data_reuse: float
    electronic_results: float
    on_time: float
    abandonment: float  # at most
    mean_wait_min: float  # at most
    availability: float

    @classmethod
    def from_scenario(cls, name: str = "default") -> Targets:
        from simulators.scenario import load_scenario

        values = load_scenario(name).targets
        missing = [f for f in cls.__dataclass_fields__ if f not in values]
        if missing:
            raise ValueError(f"scenario {name!r} has no [targets] for {', '.join(missing)}")
        return cls(**{f: float(values[f]) for f in cls.__dataclass_fields__})


def at_least(target: float, near: float = NEAR) -> ThresholdsConfig:
    """Red below near*target, orange up to the target, green from the target on."""
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps([
        Threshold(value=None, color=RED),
        Threshold(value=round(target * near, 6), color=ORANGE),
        Threshold(value=target, color=GREEN),
    ])


def availability(target: float) -> ThresholdsConfig:
    """Availability misses by hundredths, not tenths: orange within one point under the target."""
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps([
        Threshold(value=None, color=RED),
        Threshold(value=round(target - 0.01, 6), color=ORANGE),
        Threshold(value=target, color=GREEN),
    ])


def at_most(target: float) -> ThresholdsConfig:
    """Green up to the target, red above it."""
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps([
        Threshold(value=None, color=GREEN),
        Threshold(value=target, color=RED),
    ])


def count_alarm(at: float = 1) -> ThresholdsConfig:
    """Counts that should be zero (nodes in outage, critical incidents): red from `at`."""
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps([
        Threshold(value=None, color=GREEN),
        Threshold(value=at, color=RED),
    ])


def neutral() -> ThresholdsConfig:
    return ThresholdsConfig().mode(ThresholdsMode.ABSOLUTE).steps([Threshold(value=None, color="blue")])
