"""Every benchmark runs on tiny sizes against a real broker and real ClickHouse (chDB), and its output
has the documented fields; then the report is built from those outputs. No timing is asserted: the
machine is shared, and the benchmarks exist to measure, not these tests.

One broker for the module (Apache Kafka when java + mvn exist, else Tansu; IOC_TEST_BROKER picks).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.freshness import FreshnessParams, measure_freshness
from benchmarks.kernel import run_kernel_bench
from benchmarks.memory import MemoryParams, measure_memory
from benchmarks.pipeline import PipelineParams, append_step, measure_pipeline, profile_report, write_profiles
from benchmarks.report import END, START, embed, write_report
from benchmarks.runtime import Broker, bench_broker, ensure_topics
from benchmarks.scaling import ScalingParams, measure_scaling
from benchmarks.suite import save
from ioc import cli

pytestmark = [pytest.mark.broker, pytest.mark.slow]

MACHINE_FIELDS = {"cpu", "cores", "ram_gb", "python", "versions", "broker", "loadavg_1m"}
DRAIN_FIELDS = {"events", "complete", "seconds", "events_per_s", "lag_series", "startup_s", "rss_mb"}


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    with bench_broker(tmp_path_factory.mktemp("bench-broker")) as b:
        ensure_topics(b.url, b.partitions)
        yield b


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("results")


def keep(result: dict, results: Path, name: str) -> dict:
    save(result, results / f"{name}.json", 1.0, quick=True)
    return json.loads((results / f"{name}.json").read_text())


def test_pipeline_runs_all_four_contenders(broker: Broker, results: Path, tmp_path: Path) -> None:
    params = PipelineParams(json_events=2_000, arrow_events=20_000, baseline_time_box_s=3, nodes=50, arrow_batch=5_000,
                            timeout_s=180, repeats=2)
    result = keep(measure_pipeline(broker, tmp_path, params), results, "pipeline")
    contenders = result["contenders"]
    assert set(contenders) == {"a_worker_json", "b_worker_arrow", "c_faust_table", "d_quix_streams"}
    for c in contenders.values():
        assert set(c) >= DRAIN_FIELDS and c["events"] > 0 and c["lag_series"]
    for ours in ("a_worker_json", "b_worker_arrow"):
        assert contenders[ours]["complete"] and contenders[ours]["dead_letters"] == 0
        assert contenders[ours]["rows_inserted"] >= contenders[ours]["events"]
    assert contenders["b_worker_arrow"]["events"] == 20_000
    for ours in ("a_worker_json", "b_worker_arrow"):  # each worker ran twice, the median (upper) run reported
        rates = contenders[ours]["runs_events_per_s"]
        assert len(rates) == 2 and contenders[ours]["events_per_s"] == sorted(rates)[1]
    assert {"a_vs_c", "a_vs_d", "b_vs_c", "b_vs_d", "a_vs_plain_consumer", "b_vs_chdb_insert",
            "b_vs_in_process"} <= set(result["ratios"])
    assert set(result["targets"]["met"]) == {"a_vs_c", "a_vs_d", "a_events_per_s", "a_vs_plain_consumer",
                                             "b_events_per_s"}
    limits = result["limits"]
    assert limits["e_plain_consumer"]["complete"] and limits["e_plain_consumer"]["events"] == 2_000
    assert limits["f_consume_and_parse"]["complete"] and limits["f_consume_and_parse"]["events"] == 2_000
    assert result["ratios"]["a_vs_consume_and_parse"] is not None
    assert limits["chdb_insert"]["rows"] == limits["in_process"]["events"] == 20_000
    assert limits["chdb_insert"]["rows_per_s"] > 0 and limits["in_process"]["events_per_cpu_s"] > 0
    for ours in ("a_worker_json", "b_worker_arrow"):  # CPU of the measured stretch, startup left out
        assert contenders[ours]["cpu_s"] > 0 and contenders[ours]["events_per_cpu_s"] > 0
    assert result["per_core"]["b_bound_events_per_s"] == \
        result["per_core"]["cores"] * contenders["b_worker_arrow"]["events_per_cpu_s"]
    for ours, key in (("a_worker_json", "a"), ("b_worker_arrow", "b")):  # the local broker's CPU counted beside ours
        run = contenders[ours]
        assert run["broker_cpu_s"] > 0
        assert result["per_core"][f"{key}_box_bound_events_per_s"] == \
            round(result["per_core"]["cores"] * run["events"] / (run["cpu_s"] + run["broker_cpu_s"]))
        assert result["ratios"][f"{key}_vs_box_bound"] is not None
    steps = results / "pipeline_steps.json"
    append_step(result, steps)
    append_step(result, steps)  # each run adds its line
    logged = json.loads(steps.read_text())
    assert len(logged) == 2 and logged[0]["code"] == result["machine"]["code"] and "subject" in logged[0]
    assert logged[0]["a_vs_box_bound"] == result["ratios"]["a_vs_box_bound"]
    assert [load["format"] for load in result["loads"]] == ["json", "arrow"]
    assert set(result["machine"]) >= MACHINE_FIELDS


def test_freshness_reports_raw_event_delays(broker: Broker, results: Path, tmp_path: Path) -> None:
    # windows=0: no waiting for a minute boundary; the window-row measurement needs one (see `ioc bench freshness`).
    result = keep(measure_freshness(broker, tmp_path, FreshnessParams(windows=0, duration_s=4, nodes=20), rate=300,
                                    rate_source="test"), results, "freshness")
    assert result["produced_events"] > 0
    assert result["raw_events"]["n"] == result["produced_events"]
    assert {"p50_s", "p99_s", "max_s"} <= set(result["raw_events"])
    assert {"window_rows", "definition", "target", "achieved_rate_events_per_s",
            "backlog_when_production_stopped"} <= set(result)
    assert result["window_rows"] == {"n": 0}


def test_memory_reports_rss_and_state_per_key_count(broker: Broker, results: Path, tmp_path: Path) -> None:
    result = keep(measure_memory(broker, tmp_path, MemoryParams(key_counts=(200,), samples_per_key=2)), results,
                  "memory")
    (run,) = result["runs"]
    assert run["keys"] == run["keys_in_worker"] == 200 and run["events"] == 400
    assert run["rss_after_mb"] > 0 and run["rss_peak_mb"] >= run["rss_after_mb"]
    assert {"rss_idle_mb", "rss_growth_mb", "growth_bytes_per_key", "window_state_mb", "seen_ids_mb"} <= set(run)


def test_scaling_splits_partitions_between_two_workers(broker: Broker, results: Path, tmp_path: Path) -> None:
    result = keep(measure_scaling(broker, tmp_path, ScalingParams(events=3_000, nodes=50, timeout_s=180)), results,
                  "scaling")
    one, two = result["runs"]
    assert one["workers"] == 1 and two["workers"] == 2
    assert one["complete"] and two["complete"]
    assert sum(two["events_per_worker"]) == 3_000 and all(n > 0 for n in two["events_per_worker"])
    assert {"speedup", "efficiency", "tail_events"} <= set(two)
    assert len(two["events_per_s_per_worker"]) == len(two["cpu_s_per_worker"]) == 2
    assert all(r["events_per_cpu_s"] > 0 and r["cores_used"] > 0 for r in (one, two))
    assert result["how_it_scales"]


def test_kernel_through_the_cli_and_the_report(results: Path, tmp_path: Path) -> None:
    out = tmp_path / "kernel.json"
    assert cli.main(["bench", "kernel", "--json", str(out), "--events", "20000", "--keys", "100"]) == 0
    kernel = json.loads(out.read_text())
    assert {"events_per_s", "baseline_events_per_s", "ratio", "baseline_matches", "run", "numpy_floor_events_per_s",
            "engine_vs_floor", "allocator"} <= set(kernel)
    assert kernel["baseline_matches"]
    keep(run_kernel_bench(events=20_000, keys=100, baseline_events=5_000, variants=False), results, "kernel")

    readme = tmp_path / "README.md"
    readme.write_text("# Project\n\nText.\n")
    table = write_report(results, readme)
    labels = {"kernel": ["window kernel"], "pipeline": ["pipeline (a)", "pipeline (b)"], "freshness": ["freshness"],
              "memory": ["worker RSS"], "scaling": ["scaling"]}
    for name, expected in labels.items():  # the earlier tests of this module wrote these (unless deselected)
        if (results / f"{name}.json").exists():
            assert all(label in table for label in expected), name
    assert "Not run: sink, sink_http" in table
    body = readme.read_text()
    assert body.startswith("# Project\n\nText.\n") and "## Benchmarks" in body
    embed(readme, "new table")  # rewritten in place, never appended twice
    body = readme.read_text()
    assert body.count(START) == 1 and body.count("## Benchmarks") == 1
    assert f"{START}\nnew table\n{END}" in body
    assert (results / "README.md").read_text().startswith("# Benchmark results")


def test_profile_report_per_thread(tmp_path: Path) -> None:
    import cProfile
    import threading

    def work() -> None:
        sum(i * i for i in range(200_000))

    profiler = cProfile.Profile()
    profiler.enable()
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    work()
    profiler.disable()
    profiler.dump_stats(tmp_path / "w.prof")
    # No threshold on own time: how long `work` takes depends on the machine, not on the report.
    text = io.StringIO()
    threads = profile_report([tmp_path / "w.prof"], text, min_own_s=0.0)
    assert set(threads) == {"event-loop"}
    assert threads["event-loop"]["top"][0]["own_s"] > 0
    assert "thread event-loop" in text.getvalue()
    assert profile_report([tmp_path / "w.prof"], io.StringIO(), min_own_s=float("inf")) == {}  # idle ones left out
    write_profiles({"json": {"text": text.getvalue()}, "arrow": {"text": "arrow's\n"}}, tmp_path / "profile.txt")
    written = (tmp_path / "profile.txt").read_text()
    assert "worker, json load" in written and "thread event-loop" in written and "worker, arrow load" in written
