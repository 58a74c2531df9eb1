"""`ioc simulate`: generate a calibrated, deterministic event load and write it as Parquet.

`generate(...)` returns one Arrow table per family (in memory, for tests and streams);
`simulate_to_dir(...)` writes `<topic>.parquet` per family plus `manifest.json` (with the injected
incidents, `simulators.truth`), with a progress bar and a summary table. Same scenario, start, hours
and seed -> byte-identical files. Families generated a day at a time (telemetry, most of the volume)
go to their file a day at a time, so a four-week run (`ioc simulate --days 28`) needs no more memory
than its busiest day plus the queues and dossiers of the whole run.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from models.events import FAMILIES
from simulators import filings, network, service_center
from simulators.frame import EventTable
from simulators.kpi import RATE_LABELS, rate_counts
from simulators.scenario import Scenario, load_scenario
from simulators.truth import InjectedIncident, injected
from simulators.world import Span, World

MAX_HOURS = 31 * 24  # `generate` holds a run in memory (~100 MB a telemetry day); `simulate_to_dir` streams days
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class FamilyGenerator:
    make: Callable[[World, Span], EventTable]
    # Families without state across days are built a day at a time: the intermediate matrices of
    # a whole week of telemetry would need a few GB. Queues and dossiers span the whole run.
    slice_hours: float | None = None


GENERATORS: dict[str, FamilyGenerator] = {
    "service_center": FamilyGenerator(service_center.events),
    "filings": FamilyGenerator(filings.events),
    "network": FamilyGenerator(network.events, slice_hours=24),
}


@dataclass(frozen=True)
class SimulationSummary:
    scenario: str
    seed: int
    start: date
    hours: float
    out: Path
    files: dict[str, Path]  # topic -> Parquet file
    counts: dict[str, int]  # topic -> events
    rates: dict[str, float | None]  # realised, see simulators.kpi
    targets: dict[str, float] = field(default_factory=dict)
    incidents: tuple[InjectedIncident, ...] = ()
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def check_run(start: date, hours: float, seed: int) -> None:
    """Reject run parameters that cannot mean anything, with a message saying what is allowed."""
    if isinstance(start, datetime) or not isinstance(start, date):
        raise ValueError(f"start must be a date (the run begins at its local midnight), got {start!r}")
    if not isinstance(hours, (int, float)) or not 0 < hours <= MAX_HOURS:
        raise ValueError(f"hours must be in (0, {MAX_HOURS}], got {hours!r}; simulate longer spans in several runs")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")


def generate(scenario: Scenario | str | Path, start: date, hours: float, seed: int,
             families: Iterable[str] | None = None,
             on_family: Callable[[str], None] | None = None) -> dict[str, pa.Table]:
    """One Arrow table per family name (service_center, filings, network), each matching
    `family.schema` and sorted by event time. `families` picks some (each family has its own
    random stream, so a family's table is the same whether or not the others are generated).
    `on_family(name)` is called after each family."""
    check_run(start, hours, seed)
    chosen = list(GENERATORS) if families is None else list(families)
    unknown = set(chosen) - set(GENERATORS)
    if unknown:
        raise ValueError(f"unknown famil{'ies' if len(unknown) > 1 else 'y'} {sorted(unknown)}; "
                         f"known: {', '.join(GENERATORS)}")
    world = World.create(load_scenario(scenario), start, float(hours), seed)
    tables = {}
    for name in (n for n in GENERATORS if n in chosen):
        tables[name] = _build_family(world, GENERATORS[name])
        if on_family:
            on_family(name)
    return tables


def _build_family(world: World, generator: FamilyGenerator) -> pa.Table:
    return pa.concat_tables(list(_family_slices(world, generator)))


def _family_slices(world: World, generator: FamilyGenerator) -> Iterator[pa.Table]:
    """A family's events slice by slice (the whole run for families without slices), numbered on."""
    numbered = 0
    for span in world.spans(generator.slice_hours):
        table = generator.make(world, span).build(span.t0_ms, span.t1_ms, first_number=numbered)
        numbered += table.num_rows
        yield table


def simulate_to_dir(scenario: str | Path | Scenario, start: date, hours: float, seed: int, out: Path,
                    progress: bool = True) -> SimulationSummary:
    began = time.perf_counter()
    check_run(start, hours, seed)
    spec = load_scenario(scenario)
    world = World.create(spec, start, float(hours), seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    slices = {name: len(world.spans(g.slice_hours)) for name, g in GENERATORS.items()}
    with Progress(TextColumn("{task.description:<36}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TimeElapsedColumn(), console=console, disable=not progress, transient=False) as bar:
        task = bar.add_task("simulating", total=sum(slices.values()))
        files: dict[str, Path] = {}
        counts: dict[str, int] = {}
        rates: dict[str, float | None] = {}
        for name, generator in GENERATORS.items():
            topic = FAMILIES[name].topic
            bar.update(task, description=f"{topic} ({slices[name]} slice{'s' * (slices[name] > 1)})")
            files[topic], counts[topic], family_rates = _write_family(
                world, name, generator, out / f"{topic}.parquet", lambda: bar.advance(task))
            rates.update(family_rates)
        bar.update(task, description="done")

    summary = SimulationSummary(
        scenario=spec.name, seed=seed, start=start, hours=float(hours), out=out, files=files, counts=counts,
        rates=rates, targets=dict(spec.targets), incidents=tuple(injected(world)),
        seconds=time.perf_counter() - began,
    )
    _write_manifest(summary, spec)
    print_summary(summary, Console())
    return summary


def _write_family(world: World, family: str, generator: FamilyGenerator, path: Path,
                  on_slice: Callable[[], None]) -> tuple[Path, int, dict[str, float | None]]:
    """A family's slices into one Parquet file (written next to it and renamed, so a reader never sees
    half a file); returns the file, its events and its realised rates. Rates are shares of counts, so
    per-slice counts add up to the run's exactly."""
    partial = path.with_suffix(".parquet.partial")
    rows, counts = 0, {}
    writer: pq.ParquetWriter | None = None
    try:
        for table in _family_slices(world, generator):
            if writer is None:
                writer = pq.ParquetWriter(partial, table.schema, compression="zstd")
            writer.write_table(table)
            rows += table.num_rows
            for key, (part, whole) in rate_counts(family, table).items():
                known = counts.get(key, (0.0, 0))
                counts[key] = (known[0] + part, known[1] + whole)
            on_slice()
    finally:
        if writer is not None:
            writer.close()
    os.replace(partial, path)
    return path, rows, {k: (part / whole if whole else None) for k, (part, whole) in counts.items()}


def _write_manifest(summary: SimulationSummary, scenario: Scenario) -> None:
    """Everything needed to reproduce or check the run; no timings, so it is deterministic too."""
    manifest = {
        "scenario": summary.scenario,
        "scenario_file": str(scenario.source) if scenario.source else None,
        "seed": summary.seed,
        "start": summary.start.isoformat(),
        "hours": summary.hours,
        "timezone": scenario.timezone,
        "files": {topic: path.name for topic, path in summary.files.items()},
        "counts": summary.counts,
        "rates": {k: None if v is None else round(v, 6) for k, v in summary.rates.items()},
        "targets": summary.targets,
        "incidents": [i.as_json() for i in summary.incidents],
    }
    (summary.out / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def print_summary(summary: SimulationSummary, console: Console) -> None:
    events = Table(title=f"{summary.scenario}: {summary.start} +{summary.hours:g} h, seed {summary.seed}")
    events.add_column("topic")
    events.add_column("events", justify="right")
    for topic, count in summary.counts.items():
        events.add_row(topic, f"{count:,}")
    events.add_row("total", f"{summary.total:,}", style="bold")

    rates = Table(title="realised KPIs")
    for column in ("KPI", "realised", "target"):
        rates.add_column(column, justify="left" if column == "KPI" else "right")
    for key, value in summary.rates.items():
        target = summary.targets.get(key)
        rates.add_row(RATE_LABELS.get(key, key), _fmt(key, value), _fmt(key, target))
    console.print(events)
    console.print(rates)
    console.print(f"wrote {len(summary.files)} files to {summary.out} in {summary.seconds:.1f} s")


def _fmt(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if key.endswith("_min") else f"{100 * value:.2f}%"
