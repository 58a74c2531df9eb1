"""The Grafana data sources: ClickHouse (as the read-only reader user), which every dashboard reads, and
Prometheus, which scrapes the workers' /metrics (the pipeline dashboard's "Worker" panels).

Dashboards reference it by a stable uid, so the exported JSON works unchanged on any Grafana that
has the data source under that uid (file provisioning or `ioc dashboards push`). The password is
never part of a model written to disk: provisioning YAML names an environment variable instead
(Grafana interpolates `${VAR}` in provisioning files), and push sends it from `Settings` only.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from grafana_foundation_sdk.models.dashboard import DataSourceRef

from dashboards.query import PLUGIN_ID
from models.settings import Settings

DATASOURCE_UID = "ioc-clickhouse"
DATASOURCE_NAME = "IOC ClickHouse"
# Environment variables the Grafana process must carry for the provisioned data source.
READER_USER_ENV = "IOC_CLICKHOUSE_READER_USER"
READER_PASSWORD_ENV = "IOC_CLICKHOUSE_READER_PASSWORD"


PROMETHEUS_UID = "ioc-prometheus"
PROMETHEUS_NAME = "IOC worker metrics"
PROMETHEUS_TYPE = "prometheus"
DEFAULT_PROMETHEUS_URL = "http://prometheus:9090"  # the docker-compose service


def ref() -> DataSourceRef:
    return DataSourceRef(type_val=PLUGIN_ID, uid=DATASOURCE_UID)


def ref_json() -> dict[str, str]:
    return {"type": PLUGIN_ID, "uid": DATASOURCE_UID}


@dataclass(frozen=True)
class ClickHouseEndpoint:
    """Where Grafana (not this process) reaches ClickHouse over HTTP."""

    host: str = "clickhouse"
    port: int = 8123
    database: str = "ioc"
    secure: bool = False

    @classmethod
    def from_dsn(cls, dsn: str) -> ClickHouseEndpoint:
        """`http(s)://host:port/db` -> endpoint; an embedded chdb:// store cannot serve Grafana."""
        parts = urlsplit(dsn)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"Grafana needs a ClickHouse server, not {parts.scheme or dsn!r}: pass --clickhouse-host "
                "(and --clickhouse-port/--clickhouse-database) or set IOC_CLICKHOUSE_DSN=http://host:8123/db"
            )
        secure = parts.scheme == "https"
        return cls(host=parts.hostname, port=parts.port or (8443 if secure else 8123),
                   database=parts.path.strip("/") or "default", secure=secure)

    def json_data(self, username: str) -> dict[str, object]:
        """The plugin's jsonData (src/types/config.ts: CHConfig), HTTP protocol."""
        return {
            "host": self.host,
            "port": self.port,
            "protocol": "http",
            "secure": self.secure,
            "username": username,
            "defaultDatabase": self.database,
            "dialTimeout": "10",
            "queryTimeout": "60",
        }


def provisioning_datasource(endpoint: ClickHouseEndpoint) -> dict[str, object]:
    """The `datasources:` entry of the provisioning file; credentials are `${VAR}` references."""
    return {
        "name": DATASOURCE_NAME,
        "uid": DATASOURCE_UID,
        "type": PLUGIN_ID,
        "access": "proxy",
        "isDefault": True,
        "editable": False,
        "jsonData": endpoint.json_data("${" + READER_USER_ENV + "}"),
        "secureJsonData": {"password": "${" + READER_PASSWORD_ENV + "}"},
    }


def api_datasource(endpoint: ClickHouseEndpoint, settings: Settings, *, with_password: bool) -> dict[str, object]:
    """The body of POST/PUT /api/datasources for `ioc dashboards push` (credentials from Settings)."""
    body: dict[str, object] = {
        "name": DATASOURCE_NAME,
        "uid": DATASOURCE_UID,
        "type": PLUGIN_ID,
        "access": "proxy",
        "isDefault": True,
        "jsonData": endpoint.json_data(settings.clickhouse_reader_user),
    }
    if with_password:
        body["secureJsonData"] = {"password": settings.clickhouse_reader_password}
    return body


def prometheus_ref() -> DataSourceRef:
    return DataSourceRef(type_val=PROMETHEUS_TYPE, uid=PROMETHEUS_UID)


def prometheus_datasource(url: str) -> dict[str, object]:
    """The Prometheus data source, for provisioning and for POST /api/datasources alike (no credentials:
    compose's Prometheus is on the internal network only). Its scrape interval (deploy/prometheus.yml)
    is the smallest step Grafana asks for."""
    return {
        "name": PROMETHEUS_NAME,
        "uid": PROMETHEUS_UID,
        "type": PROMETHEUS_TYPE,
        "access": "proxy",
        "url": url,
        "isDefault": False,
        "jsonData": {"httpMethod": "POST", "timeInterval": "5s"},
    }
