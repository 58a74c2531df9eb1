"""The one configuration object. Every setting comes from an `IOC_*` environment variable.

Secrets (passwords, tokens) may also come from a file named by `IOC_<NAME>_FILE`, so that
docker secrets and Kubernetes mounted files work without putting credentials in env dumps.
Nothing here is a module-level global: callers build `Settings.from_env()` once and pass it down.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

DEFAULT_DATA_DIR = "./var"


def _secret(env: Mapping[str, str], name: str) -> str:
    """`IOC_<NAME>` or the contents of the file named by `IOC_<NAME>_FILE`, else empty."""
    if value := env.get(f"IOC_{name}"):
        return value
    if path := env.get(f"IOC_{name}_FILE"):
        return Path(path).read_text().strip()
    return ""


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def bootstrap_servers(url: str) -> str:
    """`kafka://h:p;h2:p2` (Faust style) -> `h:p,h2:p2` (client style)."""
    servers = url.split("://", 1)[-1]
    return servers.replace(";", ",").rstrip("/")


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    # Kafka
    broker_url: str = ""  # empty: the URL written by `ioc broker up` (data_dir/broker.url)
    topic_partitions: int = 4
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = field(default="", repr=False)
    kafka_ssl_cafile: str = ""
    # ClickHouse
    clickhouse_dsn: str = "chdb://./var/ioc.chdb"
    clickhouse_user: str = ""
    clickhouse_password: str = field(default="", repr=False)
    clickhouse_ca_cert: str = ""
    clickhouse_verify_tls: bool = True
    clickhouse_reader_user: str = "ioc_reader"
    clickhouse_reader_password: str = field(default="", repr=False)
    raw_ttl_days: int = 90
    # Event-time rules
    allowed_lateness_s: int = 120
    max_future_skew_s: int = 300
    max_message_bytes: int = 64 * 1024
    max_arrow_batch_bytes: int = 64 * 1024 * 1024
    # Sink batching and backpressure
    # ClickHouse pays ~15 ms per insert however small (a new part); at 1M rows/s 200k-row inserts are 5 a second
    sink_batch_rows: int = 200_000
    sink_flush_ms: int = 500
    sink_max_buffer_rows: int = 1_000_000
    sink_max_retries: int = 8
    # Worker
    app_id: str = "ioc-streams"  # Faust app id = Kafka consumer group = checkpoint namespace
    kafka_session_timeout_s: int = 30  # Tansu: 6 (its group joins wait half of it, DESIGN.md s.5)
    max_poll_records: int = 20_000  # bounds one batch's processing time, so heartbeats never starve
    kafka_fetch_max_wait_ms: int = 100  # aiokafka: longest a fetch waits at the broker (streams.transport)
    parse_threads: int = 2  # threads reading fetched batches ahead of their turn (FamilyPipeline.parse_ahead); 0: none
    faust_transport: str = "aiokafka"  # or "confluent": both drivers get batch delivery (streams.transport)
    province: str = "QNG"  # the province this deployment watches (models.reference.PROVINCES)
    index_weights_file: str = ""  # Decision 766 index weights (models/service_index.toml when empty)
    rules_file: str = ""  # alert rules (streams/rules.py); empty: the bundled streams/rules/default.toml
    checkpoint_interval_s: int = 5  # how much a restarted worker may have to re-process
    idle_flush_s: int = 3  # a partition without new events this long emits its open windows
    stats_interval_s: int = 1
    keep_freed_memory: bool = True  # glibc keeps freed blocks for the next batch (streams.allocator)
    # Grafana
    grafana_url: str = "http://localhost:3000"
    metrics_host: str = "127.0.0.1"  # the worker's /metrics and /health (0.0.0.0 in a container)
    metrics_port: int = -1  # -1: no endpoint; 0: a free port (written to the stats file)
    grafana_token: str = field(default="", repr=False)
    grafana_user: str = ""
    grafana_password: str = field(default="", repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every field from `IOC_<FIELD>` (upper case); secrets also from `IOC_<FIELD>_FILE`."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            name = f.name.upper()
            raw = _secret(env, name) if f.metadata.get("secret") or not f.repr else env.get(f"IOC_{name}")
            if not raw:
                continue
            if f.type in ("int", int):
                values[f.name] = int(raw)
            elif f.type in ("bool", bool):
                values[f.name] = _bool(raw)
            elif f.type in ("Path", Path):
                values[f.name] = Path(raw)
            else:
                values[f.name] = raw
        return cls(**values)  # type: ignore[arg-type]

    def kafka_client_config(self, bootstrap: str) -> dict[str, str]:
        """librdkafka-style settings (confluent-kafka): security passes through from env."""
        config = {"bootstrap.servers": bootstrap, "security.protocol": self.kafka_security_protocol}
        if self.kafka_sasl_mechanism:
            config |= {"sasl.mechanism": self.kafka_sasl_mechanism, "sasl.username": self.kafka_sasl_username,
                       "sasl.password": self.kafka_sasl_password}
        if self.kafka_ssl_cafile:
            config["ssl.ca.location"] = self.kafka_ssl_cafile
        return config

    def resolved_broker_url(self) -> str:
        """The broker to use: `IOC_BROKER_URL`, else the one `ioc broker up` recorded."""
        if self.broker_url:
            return self.broker_url
        recorded = self.data_dir / "broker.url"
        if recorded.exists():
            return recorded.read_text().strip()
        raise RuntimeError(
            "no Kafka broker configured: set IOC_BROKER_URL=kafka://host:port or start one with `ioc broker up`"
        )
