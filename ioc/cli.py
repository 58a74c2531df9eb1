"""`ioc`: the one command. Each subcommand parses its flags and calls one plain function of a stage.

Imports of the stages happen inside the handlers so `ioc --help` stays instant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path

from models.settings import Settings


def _speed(text: str) -> float:
    """`--speed 60` replays 60x real time; `max` as fast as the broker takes it (0)."""
    if text == "max":
        return 0.0
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("speed must be > 0 or 'max'")
    return value


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from simulators.generate import simulate_to_dir

    hours = args.days * 24 if args.days is not None else args.hours
    simulate_to_dir(args.scenario, args.start, hours, args.seed, args.out, progress=not args.quiet)
    return 0


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from simulators.replay import replay_dir

    broker = args.broker or settings.resolved_broker_url()
    replay_dir(args.dir, broker, speed=args.speed, fmt=args.format, batch=args.batch, settings=settings,
               progress=not args.quiet)
    return 0


def cmd_broker(args: argparse.Namespace, settings: Settings) -> int:
    from ioc import broker

    if args.action == "up":
        info = broker.up(settings.data_dir, kind=args.kind, port=args.port)
        print(info.url)
    elif args.action == "down":
        print("stopped" if broker.down(settings.data_dir) else "no broker running")
    else:
        info = broker.status(settings.data_dir)
        print(json.dumps(info.as_dict() if info else {"running": False}, indent=2))
        return 0 if info else 1
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from streams.app import run_worker

    run_worker(settings, loglevel=args.loglevel)
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from ioc.demo import DemoOptions, run_demo

    return run_demo(settings, DemoOptions(scenario=args.scenario, start=args.start, hours=args.hours, seed=args.seed,
                                          speed=args.speed, fmt=args.format, broker_kind=args.broker,
                                          keep_broker=args.keep_broker))


def cmd_briefing(args: argparse.Namespace, settings: Settings) -> int:
    from briefing import write_briefing

    out = write_briefing(args.clickhouse or settings.clickhouse_dsn, args.date, args.lang, args.out, settings,
                         scenario=args.scenario)
    print(out)
    return 0


def cmd_db(args: argparse.Namespace, settings: Settings) -> int:
    dsn = args.clickhouse or settings.clickhouse_dsn
    if args.action == "migrate":
        from sinks.migrate import migrate

        migrate(dsn, settings)
        return 0
    from models.service_index import load_index_weights
    from sinks.client import connect
    from sinks.rollups import refresh_rollups

    weights = load_index_weights(settings.index_weights_file or None)  # checked before connecting
    client = connect(dsn, settings)
    try:
        print("refreshed: " + ", ".join(refresh_rollups(client, weights)))
    finally:
        client.close()
    return 0


def cmd_incidents(args: argparse.Namespace, settings: Settings) -> int:
    from rich.console import Console
    from rich.table import Table

    from sinks.client import connect
    from sinks.incidents import acknowledge, list_incidents

    client = connect(args.clickhouse or settings.clickhouse_dsn, settings)
    try:
        if args.action == "ack":
            if not args.id:
                print("ioc incidents ack: give the incident id (see `ioc incidents list`)", file=sys.stderr)
                return 2
            state = acknowledge(client, args.id, args.by, args.note)
            print(f"{args.id}: {state}")
            return 0
        states = ("open", "acknowledged", "resolved") if args.all else ("open", "acknowledged")
        rows = list_incidents(client, states, limit=args.limit)
    finally:
        client.close()
    table = Table(title=f"incidents ({'all' if args.all else 'not resolved'})")
    table.add_column("id", no_wrap=True)  # what `ioc incidents ack` takes: never cut
    for column in ("state", "severity", "title", "start (UTC)", "minutes", "impact"):
        table.add_column(column, overflow="fold")
    for r in rows:
        end = r.end or datetime.now(UTC)
        table.add_row(r.incident_id, r.state + (f" by {r.acknowledged_by}" if r.acknowledged_by else ""), r.severity,
                      r.title, f"{r.start:%Y-%m-%d %H:%M}", f"{(end - r.start).total_seconds() / 60:.0f}",
                      f"{r.subjects} subjects, {r.communes} communes")
    Console().print(table if rows else "no incidents")
    return 0


def cmd_dashboards(args: argparse.Namespace, settings: Settings) -> int:
    from dashboards.datasource import DEFAULT_PROMETHEUS_URL, ClickHouseEndpoint

    if args.clickhouse_host:
        endpoint = ClickHouseEndpoint(args.clickhouse_host, args.clickhouse_port or 8123,
                                      args.clickhouse_database or "ioc")
    elif args.action == "push":
        endpoint = ClickHouseEndpoint.from_dsn(settings.clickhouse_dsn)
    else:
        endpoint = ClickHouseEndpoint()  # the docker-compose service
    if args.action == "export":
        from dashboards.export import ExportOptions, export

        options = ExportOptions(endpoint=endpoint, scenario=args.scenario,
                                prometheus_url=args.prometheus_url or DEFAULT_PROMETHEUS_URL)
        for path in export(args.out, options):
            print(path)
        return 0
    from dashboards.push import connect, push

    report = push(connect(args.grafana_url or settings.grafana_url, settings), endpoint, settings,
                  scenario=args.scenario, update_secrets=args.update_secrets, prometheus_url=args.prometheus_url)
    print("\n".join(report.lines()))
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from benchmarks.report import write_report
    from benchmarks.suite import README, BenchOptions, run_all, run_one

    opts = BenchOptions(quick=args.quick, broker_kind=args.broker, clickhouse=args.clickhouse, events=args.events,
                        keys=args.keys, profile=args.profile)
    if args.what == "report":  # the table again from the committed results, nothing re-run
        print(write_report(opts.results_dir, README))
        return 0
    if args.what == "all":
        table, ok = run_all(opts)
        print(table)
        return 0 if ok else 1
    result = run_one(args.what, opts, out=args.json, settings=settings)
    if args.json is None:  # a result in benchmarks/results/: the report and the README table follow it
        write_report(opts.results_dir, README)
    print(json.dumps(result, indent=2))
    return 0


def _vietnam_today() -> date:
    """Leaders read the briefing in Vietnam: "today" is the local date there, not the machine's."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    return datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ioc", description="IOC stream analytics: simulate, stream, store, show.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("simulate", help="generate a calibrated event load into Parquet files (one per topic)")
    p.add_argument("--scenario", default="default", help="scenario name (simulators/scenarios/NAME.toml) or a path")
    p.add_argument("--start", type=date.fromisoformat, default=date(2025, 7, 14), help="first day (YYYY-MM-DD)")
    span = p.add_mutually_exclusive_group()
    span.add_argument("--hours", type=float, default=24.0, help="how many hours to simulate")
    span.add_argument("--days", type=int, default=None, help="how many days to simulate (at most 31), e.g. 28 "
                      "for four weeks of trends")
    p.add_argument("--seed", type=int, default=7, help="random seed: same seed, identical files")
    p.add_argument("--out", type=Path, default=Path("var/sim"), help="output directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("replay", help="produce simulated events to Kafka in event-time order")
    p.add_argument("dir", type=Path, help="directory written by `ioc simulate`")
    p.add_argument("--broker", default="", help="kafka://host:port (default: IOC_BROKER_URL or `ioc broker up`)")
    p.add_argument("--speed", type=_speed, default=_speed("max"), help="N times real time, or 'max'")
    p.add_argument("--format", choices=("json", "arrow"), default="json", help="one JSON event per message, "
                   "or Arrow IPC batches")
    p.add_argument("--batch", type=int, default=10_000, help="events per Arrow message (with --format arrow)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("broker", help="start/stop a local Kafka-protocol broker (Apache Kafka 3.9 or Tansu)")
    p.add_argument("action", choices=("up", "down", "status"))
    p.add_argument("--kind", choices=("auto", "kafka", "tansu"), default="auto",
                   help="auto: Apache Kafka when java and mvn exist, else Tansu")
    p.add_argument("--port", type=int, default=0, help="listen port (0: a free one)")
    p.set_defaults(func=cmd_broker)

    p = sub.add_parser("demo", help="the whole pipeline locally: broker, simulated day, worker, ClickHouse, KPIs")
    p.add_argument("--scenario", default="default", help="scenario name or path")
    p.add_argument("--start", type=date.fromisoformat, default=date(2025, 7, 14), help="day to simulate")
    p.add_argument("--hours", type=float, default=24.0, help="hours to simulate")
    p.add_argument("--seed", type=int, default=7, help="random seed")
    p.add_argument("--speed", type=_speed, default=_speed("max"), help="replay speed: N x real time, or 'max'")
    p.add_argument("--format", choices=("json", "arrow"), default="json", help="wire format of the replay")
    p.add_argument("--broker", choices=("auto", "kafka", "tansu"), default="auto", help="local broker kind")
    p.add_argument("--keep-broker", action="store_true", help="leave the broker the demo starts running "
                   "(a broker that was already running is always left alone); stop it with `ioc broker down`")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("briefing", help="the leaders' morning briefing: one A4 HTML page about the day before --date")
    p.add_argument("--date", type=date.fromisoformat, default=_vietnam_today(),
                   help="briefing date (YYYY-MM-DD, default today in Vietnam); it covers the day before")
    p.add_argument("--lang", choices=("vi", "en"), default="vi", help="Vietnamese or English")
    p.add_argument("--clickhouse", default="", help="DSN: http://host:8123 or chdb://PATH (default IOC_CLICKHOUSE_DSN)")
    p.add_argument("--scenario", default="default", help="scenario whose [targets] the KPIs are judged against")
    p.add_argument("--out", type=Path, default=Path("var/briefing.html"), help="output HTML file")
    p.set_defaults(func=cmd_briefing)

    p = sub.add_parser("worker", help="run a stream worker (Faust): Kafka topics -> windows -> ClickHouse")
    p.add_argument("--loglevel", choices=("crit", "error", "warn", "info", "debug"), default="warn")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("db", help="ClickHouse schema")
    p.add_argument("action", choices=("migrate", "refresh"), help="refresh: the daily rollups and the Decision 766 "
                   "index now (a server also refreshes the rollups every 5 minutes; schedule `refresh` for the index)")
    p.add_argument("--clickhouse", default="", help="DSN: http://host:8123 or chdb://PATH (default IOC_CLICKHOUSE_DSN)")
    p.set_defaults(func=cmd_db)

    p = sub.add_parser("incidents", help="list incidents, acknowledge one (ClickHouse incidents_current)")
    p.add_argument("action", choices=("list", "ack"))
    p.add_argument("id", nargs="?", default="", help="ack: the incident id")
    p.add_argument("--all", action="store_true", help="list: resolved ones too")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--by", default=os.environ.get("USER", "operator"), help="ack: who acknowledges")
    p.add_argument("--note", default="", help="ack: a note for the shift log")
    p.add_argument("--clickhouse", default="", help="DSN (default IOC_CLICKHOUSE_DSN); a chDB store only when "
                   "no worker has it open")
    p.set_defaults(func=cmd_incidents)

    p = sub.add_parser("dashboards", help="Grafana: export JSON models + provisioning, or push to a Grafana")
    p.add_argument("action", choices=("export", "push"))
    p.add_argument("--out", type=Path, default=Path("deploy/grafana"), help="export: output directory")
    p.add_argument("--grafana-url", default="", help="push: Grafana base URL (default IOC_GRAFANA_URL); "
                   "credentials from IOC_GRAFANA_TOKEN or IOC_GRAFANA_USER/IOC_GRAFANA_PASSWORD")
    p.add_argument("--clickhouse-host", default="", help="ClickHouse host as Grafana reaches it "
                   "(export default: clickhouse; push default: from IOC_CLICKHOUSE_DSN)")
    p.add_argument("--clickhouse-port", type=int, default=0, help="its HTTP port (default 8123)")
    p.add_argument("--clickhouse-database", default="", help="its database (default ioc)")
    p.add_argument("--scenario", default="default", help="scenario whose [targets] set the thresholds")
    p.add_argument("--prometheus-url", default="", help="Prometheus as Grafana reaches it, for the worker "
                   "panels (export default: the compose service, http://prometheus:9090; push: only when given)")
    p.add_argument("--update-secrets", action="store_true", help="push: send the reader password even if "
                   "the data source already has one")
    p.set_defaults(func=cmd_dashboards)

    p = sub.add_parser("bench", help="benchmarks with their baselines in the same run (JSON in benchmarks/results/)")
    p.add_argument("what", choices=("kernel", "sink", "sink_http", "alerts", "pipeline", "freshness", "memory",
                                    "scaling", "all", "report"),
                   help="a benchmark, all of them, or `report`: rebuild the README table from benchmarks/results")
    p.add_argument("--json", type=Path, default=None, help="write the result to this file "
                   "(default: benchmarks/results/NAME.json, and the report and README table are rebuilt)")
    p.add_argument("--quick", action="store_true", help="smaller sizes: `all --quick` takes a few minutes")
    p.add_argument("--broker", choices=("auto", "kafka", "tansu"), default="auto",
                   help="broker for pipeline/freshness/memory/scaling (auto: Apache Kafka when java and mvn exist)")
    p.add_argument("--profile", action="store_true",
                   help="pipeline: one more run of the worker per load (JSON, Arrow) under cProfile "
                   "(benchmarks/results/pipeline_profile.txt)")
    p.add_argument("--events", type=int, default=None, help="kernel: events (default 2M, 1M with --quick)")
    p.add_argument("--keys", type=int, default=None, help="kernel: distinct keys (default 10k)")
    p.add_argument("--clickhouse", default="", help="sink: DSN (default: a temporary chDB store)")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings.from_env()
    try:
        return int(args.func(args, settings) or 0)
    except (ValueError, LookupError, FileNotFoundError) as exc:  # bad input: one clear line, no traceback
        print(f"ioc {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
