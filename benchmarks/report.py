"""The Markdown report: one table over every result file, written to benchmarks/results/README.md and
embedded in the project README between `<!-- bench:start -->` and `<!-- bench:end -->`.

Only reads the JSON files in the results directory, so the table can be rebuilt without re-running
anything (`ioc bench report`); a missing result shows as "not run".
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

START, END = "<!-- bench:start -->", "<!-- bench:end -->"
RESULT_FILES = ("kernel", "sink", "sink_http", "alerts", "pipeline", "freshness", "memory", "scaling")


def load_results(results_dir: Path) -> dict[str, Any]:
    out = {}
    for name in (*RESULT_FILES, "pipeline_steps"):
        path = results_dir / f"{name}.json"
        if path.exists():
            out[name] = json.loads(path.read_text())
    return out


def rate(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e3:
        return f"{value / 1e3:.1f}k"
    return f"{value:.0f}"


def mark(met: bool | None) -> str:
    return "-" if met is None else ("yes" if met else "**no**")


def x(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}x"


def rows(results: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str, str, str]]:
    """(benchmark, measured, baseline, ratio, target, met) per line of the table."""
    out: list[tuple[str, str, str, str, str, str]] = []
    if k := results.get("kernel"):
        floor = f" (numpy floor {rate(k['numpy_floor_events_per_s'])})" if "numpy_floor_events_per_s" in k else ""
        out.append(("window kernel (10k keys, 1 core)", f"{rate(k['events_per_s'])} events/s{floor}",
                    f"plain Python loop {rate(k['baseline_events_per_s'])} events/s", x(k["ratio"]),
                    ">= 50M events/s/core", mark(k["events_per_s"] >= 50e6)))
    for name, label in (("sink", "sink, chDB"), ("sink_http", "sink, HTTP (stand-in)")):
        if s := results.get(name):
            by = {r["batch_rows"]: r["rows_per_s"] for r in s["results"]}
            out.append((f"{label}: rows/s by insert batch", " / ".join(f"{rate(v)} @{rate(b)}" for b, v in by.items()),
                        "-", "-", "-", "-"))
    if a := results.get("alerts"):
        ttd = [p["time_to_detect_min"] for p in a["per_injected"] if p["time_to_detect_min"] is not None]
        met = a["targets"]["met"]
        out.append((f"incidents vs injected, {a['params']['days']} simulated days",
                    f"recall {a['detected']}/{a['injected']}, {a['within_target']}/{a['injected']} within target "
                    f"(slowest {max(ttd, default=0):.0f} min); unmatched {a['unmatched']} "
                    f"(max {a['unmatched_max_per_day']}/day)",
                    "-", "-", "recall 100%; 5 min network, 15 min queues/filings; <= 10 unmatched/day",
                    f"{mark(met['recall'])} / {mark(met['time_to_detect'])} / {mark(met['unmatched_per_day'])}"))
    if p := results.get("pipeline"):
        c = p["contenders"]
        a, b = c["a_worker_json"], c["b_worker_arrow"]
        faust, quix = c["c_faust_table"], c["d_quix_streams"]
        r, met = p["ratios"], p["targets"]["met"]
        base = f"(c) Faust Table {rate(faust['events_per_s'])}, (d) Quix {rate(quix['events_per_s'])}"
        out.append(("pipeline (a): JSON, 1 event/message, into ClickHouse", f"{rate(a['events_per_s'])} events/s",
                    base, f"{x(r['a_vs_c'])} vs (c), {x(r['a_vs_d'])} vs (d)", ">= 10x (c), > (d)",
                    f"{mark(met['a_vs_c'])} / {mark(met['a_vs_d'])}"))
        out.append(("pipeline (b): Arrow batches of 10k, into ClickHouse", f"{rate(b['events_per_s'])} events/s",
                    base, f"{x(r['b_vs_c'])} vs (c), {x(r['b_vs_d'])} vs (d)", ">= 2M events/s per worker",
                    mark(met["b_events_per_s"])))
        if limits := p.get("limits"):
            e, chdb, inproc = limits["e_plain_consumer"], limits["chdb_insert"], limits["in_process"]
            core = p["per_core"]
            box = core.get("a_box_bound_events_per_s")
            out.append(("pipeline (a) against the Kafka client alone",
                        f"{rate(a['events_per_s'])} events/s, {rate(a['events_per_cpu_s'])}/CPU-s"
                        + (f"; box bound {rate(box)} (worker + broker CPU per event, {core['cores']} cores)"
                           if box else ""),
                        f"(e) plain aiokafka consumer {rate(e['events_per_s'])} messages/s"
                        + (f"; (f) the same, reading each fetch as JSON into Arrow "
                           f"{rate(limits['f_consume_and_parse']['events_per_s'])}"
                           if "f_consume_and_parse" in limits else ""),
                        f"{r['a_vs_plain_consumer']} of (e)"
                        + (f", {r['a_vs_consume_and_parse']} of (f)" if r.get("a_vs_consume_and_parse") else "")
                        + (f", {r['a_vs_box_bound']} of the box bound" if r.get("a_vs_box_bound") else ""),
                        ">= 200k events/s, >= 0.7 of (e)",
                        f"{mark(met['a_events_per_s'])} / {mark(met['a_vs_plain_consumer'])}"))
            out.append(("pipeline (b) against its parts' limits",
                        f"{rate(b['events_per_cpu_s'])} events/CPU-s on {b['cores_used']} cores: at most "
                        f"{rate(core['b_bound_events_per_s'])} events/s on {core['cores']} cores",
                        f"chDB insert alone {rate(chdb['rows_per_s'])} rows/s on {chdb['cores_used']} cores; "
                        f"decode + windows {rate(inproc['events_per_s'])} events/s on 1 core",
                        f"{r['b_vs_chdb_insert']} of chDB, {r['b_vs_in_process']} of in-process"
                        + (f", {r['b_vs_box_bound']} of the box bound ({rate(core['b_box_bound_events_per_s'])})"
                           if r.get("b_vs_box_bound") else ""),
                        "-", "-"))
    if f := results.get("freshness"):
        for i, point in enumerate([f, *f.get("lower_rates", [])]):
            w, raw = point["window_rows"], point["raw_events"]
            label = "half max" if i == 0 else "lower rate"
            met = w.get("p99_s") is not None and w["p99_s"] <= f["target"]["p99_s_at_most"]
            out.append((f"freshness at {rate(point['achieved_rate_events_per_s'])} events/s ({label})",
                        f"window p50 {w.get('p50_s')} s, p99 {w.get('p99_s')} s; raw event p50 {raw['p50_s']} s, "
                        f"p99 {raw['p99_s']} s", f"backlog at stop {point['backlog_when_production_stopped']:,}",
                        "-", "p99 <= 2 s", mark(met)))
    if m := results.get("memory"):
        runs = m["runs"]
        out.append(("worker RSS by active keys", " / ".join(f"{r['rss_after_mb']:.0f} MB @{rate(r['keys'])}"
                                                            for r in runs),
                    f"idle {runs[0]['rss_idle_mb']:.0f} MB",
                    f"+{runs[-1]['growth_bytes_per_key']:,} B/key @{rate(runs[-1]['keys'])}",
                    "bounded, reported at 100k", "reported"))
    if s := results.get("scaling"):
        runs = s["runs"]
        tail = [r.get("tail_events_per_s") for r in runs]
        per_cpu = " -> ".join(rate(r.get("events_per_cpu_s")) for r in runs)
        out.append(("scaling: JSON, 1 -> 2 workers (2 cores)", " -> ".join(f"{rate(r['events_per_s'])}" for r in runs)
                    + f" events/s ({per_cpu} per CPU-s)", "after production: " + " -> ".join(rate(t) for t in tail),
                    f"{runs[-1]['speedup']}x", "-", "-"))
    return out


def machine_line(results: dict[str, Any]) -> str:
    runs = [r for r in results.values() if isinstance(r, dict)]  # pipeline_steps is a list of runs
    m = next((r["machine"] for r in runs if "machine" in r and "versions" in r["machine"]), None)
    if m is None:
        return ""
    v = m["versions"]
    loads = sorted({r["machine"]["loadavg_1m"] for r in runs if "loadavg_1m" in r.get("machine", {})})
    load = f"{loads[0]}-{loads[-1]}" if len(loads) > 1 else (f"{loads[0]}" if loads else "?")
    return (f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB RAM, {m['os']}; load average {load} "
            f"during the runs (shared machine). Python {m['python']}, faust-streaming {v['faust-streaming']}, aiokafka "
            f"{v['aiokafka']}, {m.get('broker', 'broker ?')}, chDB {v['chdb']}, quixstreams {v['quixstreams']}, "
            f"confluent-kafka {v['confluent-kafka']}, pyarrow {v['pyarrow']}, numpy {v['numpy']}; "
            f"code {m.get('code', '?')}.")


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| benchmark | measured | baseline (same run) | ratio | target | met |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows(results)]
    missing = [n for n in RESULT_FILES if n not in results]
    text = "\n".join(lines)
    if machine := machine_line(results):
        text += "\n\n" + machine
    if missing:
        text += f"\n\nNot run: {', '.join(missing)}."
    return text


def pipeline_detail(p: dict[str, Any]) -> str:
    lines = ["| contender | events | seconds | events/s | CPU s | cores | events/CPU-s | startup s | RSS MB "
             "| complete |", "|---|---|---|---|---|---|---|---|---|---|"]
    runs = dict(p["contenders"])
    if "limits" in p:
        runs["e_plain_consumer"] = p["limits"]["e_plain_consumer"]
        if "f_consume_and_parse" in p["limits"]:
            runs["f_consume_and_parse"] = p["limits"]["f_consume_and_parse"]
    for key, c in runs.items():
        rates = c.get("runs_events_per_s")
        runs_note = f" (runs: {', '.join(f'{v:,}' for v in rates)})" if rates else ""
        lines.append(f"| {key} | {c['events']:,} | {c['seconds']} | {c['events_per_s']:,}{runs_note} | "
                     f"{c.get('cpu_s', '-')} | "
                     f"{c.get('cores_used', '-')} | {c.get('events_per_cpu_s') or '-'} | {c['startup_s']} | "
                     f"{c['rss_mb']} | {'yes' if c['complete'] else 'time-boxed'} |")
    if limits := p.get("limits"):
        for key in ("chdb_insert", "in_process"):
            lim = limits[key]
            done = lim.get("rows", lim.get("events"))
            per_s = lim.get("rows_per_s", lim.get("events_per_s"))
            per_cpu = lim.get("rows_per_cpu_s", lim.get("events_per_cpu_s"))
            lines.append(f"| limit: {lim['what']} | {done:,} | {lim['seconds']} | {per_s:,} | - | "
                         f"{lim.get('cores_used', 1)} | {per_cpu:,} | - | - | yes |")
    return "\n".join(lines)


def steps_table(steps: list[dict[str, Any]]) -> str:
    """The optimisation steps (pipeline_steps.json): each committed run, its code and its ratios to the limits."""
    lines = ["Steps (`pipeline_steps.json`, one line per committed run; ratios to the limits measured in that run; "
             "box bound: the machine's cores at the run's worker + broker CPU per event):", "",
             "| code | run | load | (a) JSON events/s | (a)/(e) plain consumer | (a)/(f) consume + parse | (a)/box "
             "| (b) Arrow events/s | (b)/chDB insert (its batch) | (b)/in-process | (b)/box |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for st in steps:
        run = (st["finished_at"] or "")[:16] + (" quick" if st.get("quick") else "")
        lines.append(f"| {st['code']}: {st['subject'][:70]} | {run} | {st['loadavg_1m']} | "
                     f"{st['a_events_per_s']:,} | {st['a_vs_plain_consumer']} | "
                     f"{st.get('a_vs_consume_and_parse') or '-'} | {st.get('a_vs_box_bound') or '-'} | "
                     f"{st['b_events_per_s']:,} | {st['b_vs_chdb_insert']} ({st.get('chdb_insert', '?')}) | "
                     f"{st['b_vs_in_process']} | {st.get('b_vs_box_bound') or '-'} |")
    return "\n".join(lines)


IDLE = ("select.epoll", "_thread.lock", "_queue.SimpleQueue", "threading.py", "selectors.py")


def profile_summary(p: dict[str, Any], top: int = 8) -> str:
    profiles = p.get("profile")
    if not profiles:
        return ""
    if "threads" in profiles:  # results written before both loads were profiled
        profiles = {"json": profiles}
    out = []
    for fmt, prof in profiles.items():
        out += [f"cProfile of the worker on the {fmt} load (its own run, {prof['events_per_s_under_profiler']:,} "
                "events/s under the profiler); the busiest functions by own time per thread, idle waits left out; "
                "whole process life, so the event loop's chDB queries are the startup migrations (full lists: "
                "`pipeline_profile.txt`):", ""]
        for thread, data in prof["threads"].items():
            if thread == "bench-probe":
                continue  # the measurement itself
            busy = [r for r in data["top"] if not any(idle in r["function"] for idle in IDLE)]
            out.append(f"- thread `{thread}`: " + "; ".join(
                f"`{r['function']}` {r['own_s']} s ({r['calls']:,} calls)" for r in busy[:top]))
        out.append("")
    return "\n".join(out).rstrip()


def results_readme(results: dict[str, dict[str, Any]]) -> str:
    parts = ["# Benchmark results", "",
             "Written by `ioc bench all [--quick]`; every number comes from the JSON files next to this one, each "
             "from one run in which the baselines ran too. The machine is shared with other work, so absolute "
             "numbers are noisy: read the ratios.", "", table(results)]
    if p := results.get("pipeline"):
        parts += ["", "## pipeline", "", p["method"] + ".", "", pipeline_detail(p)]
        if steps := results.get("pipeline_steps"):
            parts += ["", steps_table(steps)]
        if summary := profile_summary(p):
            parts += ["", summary]
    if f := results.get("freshness"):
        parts += ["", "## freshness", "", f"Store: {f['store']}. Rate: {f['rate_source']}; achieved "
                  f"{f['achieved_rate_events_per_s']:,} events/s, backlog when production stopped "
                  f"{f['backlog_when_production_stopped']:,} events. Allowed lateness {f['params']['lateness_s']} s. "
                  f"Window closings observed: {f.get('window_closings_observed', '?')} (windows x partitions); "
                  "each closing's rows land together, so the window percentiles rest on few independent samples.",
                  "", "Definition: " + f["definition"]]
    if m := results.get("memory"):
        parts += ["", "## memory", "", m["workload"] + ".", "",
                  "| keys | events | RSS idle MB | RSS after MB | RSS peak MB | window state MB | seen ids MB |",
                  "|---|---|---|---|---|---|---|"]
        parts += [f"| {r['keys']:,} | {r['events']:,} | {r['rss_idle_mb']} | {r['rss_after_mb']} | {r['rss_peak_mb']} "
                  f"| {r['window_state_mb']} | {r['seen_ids_mb']} |" for r in m["runs"]]
    if s := results.get("scaling"):
        parts += ["", "## scaling", "", s["method"] + ".", ""]
        parts += [f"- {r['workers']} worker(s): {r['events_per_s']:,} events/s overall, "
                  f"{r.get('tail_events_per_s') or '-'} after production ended; events per worker "
                  f"{r['events_per_worker']}" for r in s["runs"]]
        parts += ["", "How the design scales further:", ""] + [f"- {note}" for note in s["how_it_scales"]]
    return "\n".join(parts) + "\n"


def embed(readme: Path, text: str) -> None:
    """Replace what is between the markers, or append a `## Benchmarks` section with them."""
    body = readme.read_text() if readme.exists() else ""
    block = f"{START}\n{text}\n{END}"
    if START in body and END in body:
        body = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: block, body, count=1, flags=re.DOTALL)
    else:
        body = body.rstrip("\n") + (
            "\n\n## Benchmarks\n\n`ioc bench all [--quick]` runs every benchmark with its baselines in the same run "
            "and rewrites this table (details, methods and the profile: `benchmarks/results/README.md`).\n\n"
            f"{block}\n")
    readme.write_text(body)


def write_report(results_dir: Path, readme: Path | None = None) -> str:
    results = load_results(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "README.md").write_text(results_readme(results))
    text = table(results)
    if readme is not None:
        embed(readme, text)
    return text
