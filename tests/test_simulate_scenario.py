"""Scenario files, run parameters and the office clock."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.schema import parse_time
from simulators.clock import Calendar
from simulators.generate import generate, simulate_to_dir
from simulators.scenario import (
    NodeOutage,
    PortalOutage,
    ScenarioError,
    available_scenarios,
    load_scenario,
    scenario_from_dict,
)

DEFAULT = load_scenario("default")
CAL = Calendar(DEFAULT)


def write(tmp_path: Path, text: str, name: str = "custom.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_default_scenario_carries_the_calibration_figures() -> None:
    f = DEFAULT.filings
    assert (f.online_application, f.online_payment, f.digitisation) == (0.70, 0.4476, 0.8088)
    assert (f.data_reuse, f.electronic_results) == (0.5845, 0.8119)
    assert DEFAULT.office_hours.sessions == ((7 * 60 + 30, 11 * 60 + 30), (13 * 60 + 30, 17 * 60))
    assert DEFAULT.timezone == "Asia/Ho_Chi_Minh"
    assert DEFAULT.targets["online_application"] == 0.70
    # every kind on the first day (the demo's day) and again on the next four (`ioc bench alerts`)
    every_kind = {"degraded_link", "node_outage", "portal_outage", "queue_surge"}
    assert {i.kind for i in DEFAULT.incidents if i.day == 0} == every_kind
    assert {i.kind for i in DEFAULT.incidents if i.day > 0} == every_kind
    assert {i.day for i in DEFAULT.incidents} == set(range(5))


def test_every_bundled_scenario_loads() -> None:
    assert {"default", "stress"} <= set(available_scenarios())
    for name in available_scenarios():
        assert load_scenario(name).name == name


def test_extends_overrides_only_what_it_names(tmp_path: Path) -> None:
    path = write(tmp_path, 'extends = "default"\nload_factor = 3\n[filings]\non_time = 0.9\n')
    scenario = load_scenario(path)
    assert scenario.name == "custom" and scenario.load_factor == 3.0
    assert scenario.filings.on_time == 0.9
    assert scenario.filings.online_payment == DEFAULT.filings.online_payment
    assert scenario.incidents == DEFAULT.incidents


def test_unknown_scenario_lists_the_available_ones() -> None:
    with pytest.raises(ScenarioError, match=r"unknown scenario 'nope'; available: .*default"):
        load_scenario("nope")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[filings]\non_time = 1.5\n", r"filings\.on_time must be a rate in \[0, 1\]"),
        ("[filings]\nontime = 0.9\n", r"unknown key\(s\) in \[filings\]: ontime"),
        ("[network]\ninterval_s = 0\n", r"network\.interval_s"),
        ('[network]\ninterval_s = "fast"\n', r"network\.interval_s must be float"),
        ('timezone = "Mars/Olympus"\n', r"unknown timezone"),
        ("load_factor = -1\n", r"load_factor must be > 0"),
        ('[office_hours]\nsessions = [["13:30", "17:00"], ["07:30", "11:30"]]\n', r"ordered"),
        ('[office_hours]\nsessions = [["7h30", "11:30"]]\n', r"HH:MM"),
        ('[office_hours]\nweekmask = "11111"\n', r"weekmask"),
        ('[[incidents]]\nkind = "meteor"\nstart = "10:00"\nduration_min = 5\n', r"unknown incident kind 'meteor'"),
        ('[[incidents]]\nkind = "node_outage"\nstart = "10:00"\nduration_min = 5\n', r"missing node"),
        ('[[incidents]]\nkind = "portal_outage"\nduration_min = 5\n', r"needs start"),
        ('[[incidents]]\nkind = "queue_surge"\ncenter = "X"\nstart = "10:00"\nduration_min = 5\nfactor = -2\n',
         r"factor must be >= 0"),
        ("this is = = not toml\n", r"not valid TOML"),
    ],
)
def test_bad_scenarios_are_rejected_with_the_offending_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        load_scenario(write(tmp_path, text))


def test_incident_targets_must_exist_in_the_reference_data() -> None:
    bad = dataclasses.replace(DEFAULT, incidents=(NodeOutage(start=600, duration_min=5, node="N-NOWHERE"),))
    with pytest.raises(ScenarioError, match="unknown node 'N-NOWHERE'"):
        generate(bad, date(2025, 7, 14), 1, 1)


@pytest.mark.parametrize(
    ("start", "hours", "seed", "message"),
    [
        (date(2025, 7, 14), 0, 1, "hours must be in"),
        (date(2025, 7, 14), 10_000, 1, "hours must be in"),
        (date(2025, 7, 14), 1, -1, "seed must be"),
        ("2025-07-14", 1, 1, "start must be a date"),
    ],
)
def test_bad_run_parameters_are_rejected(tmp_path: Path, start: object, hours: float, seed: int,
                                         message: str) -> None:
    with pytest.raises(ValueError, match=message):
        simulate_to_dir("default", start, hours, seed, tmp_path, progress=False)  # type: ignore[arg-type]
    assert not any(tmp_path.iterdir())  # nothing written


def test_scenario_from_dict_builds_incidents_with_local_times() -> None:
    scenario = scenario_from_dict({"incidents": [{"kind": "portal_outage", "start": "15:00", "duration_min": 60,
                                                  "day": 1}]})
    (outage,) = scenario.incidents
    assert isinstance(outage, PortalOutage) and outage.start == 900 and outage.day == 1


# ---------------------------------------------------------------- office clock


def test_office_clock_skips_nights_lunch_and_weekends() -> None:
    friday_1650 = parse_time("2025-07-18T09:50:00Z")  # 16:50 local
    office = CAL.to_office(np.array([friday_1650]))
    monday = CAL.from_office(office + 30)[0]  # 10 minutes on Friday, 20 on Monday morning
    assert monday == parse_time("2025-07-21T00:50:00Z")  # Monday 07:50 local
    lunch = CAL.to_office(np.array([parse_time("2025-07-14T05:00:00Z")]))  # Monday 12:00 local
    assert CAL.from_office(lunch)[0] == parse_time("2025-07-14T06:30:00Z")  # 13:30 local


def test_holidays_are_not_working_days() -> None:
    holiday = dataclasses.replace(DEFAULT, office_hours=dataclasses.replace(
        DEFAULT.office_hours, holidays=(date(2025, 9, 2),)))
    cal = Calendar(holiday)
    day = (np.datetime64("2025-09-02") - np.datetime64("1970-01-01")).astype(np.int64)
    assert not cal.is_working(np.array([day]))[0] and CAL.is_working(np.array([day]))[0]


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=20_000 * 450, max_value=21_000 * 450, allow_nan=False))
def test_office_clock_round_trips(office_min: float) -> None:
    back = CAL.to_office(CAL.from_office(np.array([office_min])))[0]
    assert back == pytest.approx(office_min, abs=1 / 60_000 + 1e-6)  # within a millisecond
    assert CAL.decompose(CAL.from_office(np.array([office_min]))).in_office[0]
