"""The grafana-clickhouse-datasource query target, typed for the Grafana foundation SDK.

The SDK (grafana-foundation-sdk, Grafana 10.1 schema) ships query builders for Prometheus, Loki, ...
but none for the ClickHouse plugin, so this module adds one in the SDK's own style: a model class
implementing `cog.variants.Dataquery` (to_json/from_json), a builder implementing
`cog.builder.Builder`, and a variant registration so that `Dashboard.from_json` turns the targets
of a ClickHouse panel back into `ClickHouseQuery` objects instead of untyped dicts.

The JSON shape is the plugin's SQL-editor query (`src/types/sql.ts`: CHSqlQuery):

    {"refId": "A", "datasource": {"type": "grafana-clickhouse-datasource", "uid": "..."},
     "editorType": "sql", "queryType": "timeseries" | "table", "format": 0 | 1, "rawSql": "..."}

`format` is what the plugin's backend reads (sqlds / sqlutil.FormatQueryOption: 0 time series,
1 table): with 0 a long frame (time, label, value) is pivoted to one series per label; `queryType`
only selects the editor's mode in the UI.
"""

from __future__ import annotations

import enum
import typing
from dataclasses import dataclass, field

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

PLUGIN_ID = "grafana-clickhouse-datasource"
# The plugin release the compose stack installs (GF_INSTALL_PLUGINS) and the targets are written for.
PLUGIN_VERSION = "4.10.2"


class Format(enum.IntEnum):
    """sqlutil.FormatQueryOption, the backend's result shaping."""

    TIME_SERIES = 0
    TABLE = 1


QUERY_TYPE = {Format.TIME_SERIES: "timeseries", Format.TABLE: "table"}


@dataclass
class ClickHouseQuery(cogvariants.Dataquery):
    """One SQL target of a panel (or of an annotation) on the ClickHouse data source."""

    raw_sql: str = ""
    format: Format = Format.TABLE
    ref_id: str = "A"
    datasource: DataSourceRef | None = None
    hide: bool = False
    plugin_version: str = PLUGIN_VERSION
    extra: dict[str, typing.Any] = field(default_factory=dict)  # unknown keys survive a round trip

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "refId": self.ref_id,
            "editorType": "sql",
            "queryType": QUERY_TYPE[self.format],
            "format": int(self.format),
            "rawSql": self.raw_sql,
            "pluginVersion": self.plugin_version,
        }
        if self.datasource is not None:
            payload["datasource"] = self.datasource
        if self.hide:
            payload["hide"] = True
        return payload | self.extra

    @classmethod
    def from_json(cls, data: dict[str, typing.Any]) -> typing.Self:
        known = {"refId", "editorType", "queryType", "format", "rawSql", "pluginVersion", "datasource", "hide"}
        if data.get("editorType", "sql") != "sql":
            raise ValueError(f"only SQL-editor ClickHouse targets are modelled, got {data.get('editorType')!r}")
        fmt = Format(int(data.get("format", Format.TABLE)))
        if "queryType" in data and data["queryType"] != QUERY_TYPE[fmt]:
            raise ValueError(f"queryType {data['queryType']!r} disagrees with format {int(fmt)}")
        return cls(
            raw_sql=str(data.get("rawSql", "")),
            format=fmt,
            ref_id=str(data.get("refId", "A")),
            datasource=DataSourceRef.from_json(data["datasource"]) if "datasource" in data else None,
            hide=bool(data.get("hide", False)),
            plugin_version=str(data.get("pluginVersion", PLUGIN_VERSION)),
            extra={k: v for k, v in data.items() if k not in known},
        )


class ClickHouseQueryBuilder(cogbuilder.Builder[ClickHouseQuery]):
    """Fluent builder in the SDK's style: `ClickHouseQueryBuilder().raw_sql(...).time_series()`."""

    def __init__(self) -> None:
        self._internal = ClickHouseQuery()

    def build(self) -> ClickHouseQuery:
        return self._internal

    def raw_sql(self, sql: str) -> typing.Self:
        self._internal.raw_sql = sql
        return self

    def ref_id(self, ref_id: str) -> typing.Self:
        self._internal.ref_id = ref_id
        return self

    def datasource(self, ref: DataSourceRef) -> typing.Self:
        self._internal.datasource = ref
        return self

    def time_series(self) -> typing.Self:
        self._internal.format = Format.TIME_SERIES
        return self

    def table(self) -> typing.Self:
        self._internal.format = Format.TABLE
        return self


def register() -> None:
    """Teach the SDK's runtime to decode ClickHouse targets (idempotent), plus the core panel types."""
    from grafana_foundation_sdk.cog.plugins import register_default_plugins

    register_default_plugins()
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(identifier=PLUGIN_ID, from_json_hook=ClickHouseQuery.from_json)
    )
