"""Rules files: the defaults load, overrides extend them, and every bad file fails naming its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.rules import DEFAULT_RULES, RulesError, load_rules


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    return path


def test_default_rules_load_with_every_family() -> None:
    rules = load_rules()
    assert rules.source == DEFAULT_RULES
    assert {r.family for r in rules.rules if r.enabled} == {"network", "service_center", "filings"}
    node_down = next(r for r in rules.rules if r.name == "node_down")
    assert node_down.scope == "node" and node_down.severity == "critical"
    assert any(r.kind == "anomaly" for r in rules.rules)


def test_extends_changes_only_the_keys_written(tmp_path: Path) -> None:
    path = write(tmp_path, 'extends = "default"\n[rules.loss_high]\nabove = 2.5\nclear = 1.0\n'
                           '[rules.queue_long]\nenabled = false\n')
    rules = {r.name: r for r in load_rules(path).rules}
    base = {r.name: r for r in load_rules().rules}
    assert rules["loss_high"].above == 2.5 and rules["loss_high"].for_min == base["loss_high"].for_min
    assert not rules["queue_long"].enabled
    assert rules.keys() == base.keys()


@pytest.mark.parametrize(("text", "line", "words"), [
    ('extends = "default"\n\n[rules.loss_high]\nabov = 2.0\n', 4, "unknown key"),
    ('extends = "default"\n[rules.loss_high]\nabove = "high"\n', 3, "must be float"),
    ('extends = "default"\n[rules.loss_high]\nclear = 9.0\n', 3, "healthy side"),
    ('extends = "default"\n[rules.x]\nfamily = "network"\nmetric = "wait_p90"\nscope = "node"\n'
     'severity = "info"\ntitle = "t"\nabove = 1\n', 4, "no metric 'wait_p90'"),
    ('extends = "default"\n[rules.x]\nfamily = "network"\nmetric = "availability"\nscope = "galaxy"\n'
     'severity = "info"\ntitle = "t"\nbelow = 1\n', 5, "unknown scope"),
    ('extends = "default"\n[rules.x]\nfamily = "network"\nmetric = "availability"\nscope = "node"\n'
     'severity = "info"\ntitle = "t"\n', 2, "exactly one of above or below"),
    ('extends = "default"\n[rules.x]\nfamily = "network"\nmetric = "latency_p50"\nscope = "node"\n'
     'severity = "info"\ntitle = "t"\nkind = "anomaly"\nabove = 3\n', 9, "anomaly rule breaches on z"),
    ('extends = "default"\n[rules.node_down]\nseverity = "panic"\n', 3, "must be one of"),
    ('extends = "default"\n[rules.node_down]\ndaily_slots = 48\n', 3, "an anomaly rule's slots a day"),
    ('extends = "default"\n[rules.latency_anomaly]\ndaily_slots = 7\n', 3, "a divisor of 1440"),
    ('extends = "default"\n[rules.node_down]\ntitle = "{subjet} down"\n', 3, "bad format"),
    ('extends = "default"\n[settings]\ntimezone = "Mars/Olympus"\n', 3, "unknown timezone"),
    ('extends = "nope"\n', 1, "no such rules file"),
    ('[rules.a]\nfamily = "network"\nmetric = \n', 3, "not valid TOML"),
])
def test_bad_rules_name_the_line(tmp_path: Path, text: str, line: int, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(RulesError) as err:
        load_rules(path)
    message = str(err.value)
    assert words in message
    assert f"{path}:{line}" in message or f"line {line}" in message, message


def test_missing_file_and_nothing_enabled(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="rules file"):
        load_rules(tmp_path / "absent.toml")
    names = [r.name for r in load_rules().rules]
    off = 'extends = "default"\n' + "".join(f"[rules.{n}]\nenabled = false\n" for n in names)
    with pytest.raises(RulesError, match="no enabled rule"):
        load_rules(write(tmp_path, off))


def test_worker_refuses_a_bad_rules_file_before_it_starts(tmp_path: Path) -> None:
    """The incident stage reads the rules when the worker builds its pipelines, before it joins."""
    from models.settings import Settings
    from streams.signals import incident_pipeline

    path = write(tmp_path, 'extends = "default"\n[rules.loss_high]\nabove = -\n')
    with pytest.raises(RulesError, match=str(path)):
        incident_pipeline(Settings(rules_file=str(path)))
