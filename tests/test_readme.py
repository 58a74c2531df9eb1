"""The README's figures are the committed results: the benchmark table is what `benchmarks.report` builds
from `benchmarks/results/*.json`, and the demo's KPIs are what the simulator generates for the demo day.
A benchmark re-run without its README update, or a simulator change that moves the demo's numbers,
fails here instead of leaving the README quietly wrong."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from benchmarks.report import END, START, load_results, results_readme, table
from benchmarks.suite import README, RESULTS_DIR

REPO = Path(__file__).resolve().parent.parent


def test_readme_benchmark_table_is_built_from_the_committed_results() -> None:
    body = README.read_text(encoding="utf-8")
    found = re.search(re.escape(START) + r"\n(.*?)\n" + re.escape(END), body, flags=re.DOTALL)
    assert found, "README.md has no benchmark table between the bench markers"
    results = load_results(RESULTS_DIR)
    assert found.group(1) == table(results), "README table differs from benchmarks/results: run `ioc bench report`"
    assert (RESULTS_DIR / "README.md").read_text(encoding="utf-8") == results_readme(results)


def test_readme_demo_kpis_are_the_simulated_days() -> None:
    from simulators.generate import generate
    from simulators.kpi import realised_rates

    body = README.read_text(encoding="utf-8")
    quoted = re.search(r"online application ([\d.]+)%, payment ([\d.]+)%, on time ([\d.]+)%", body)
    assert quoted, "README no longer quotes the demo's KPIs"
    rates = realised_rates(generate("default", date(2025, 7, 14), 24, seed=7))
    generated = [f"{100 * rates[k]:.2f}" for k in ("online_application", "online_payment", "on_time")]
    assert list(quoted.groups()) == generated
