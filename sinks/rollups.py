"""Bringing the daily rollups up to date now, instead of waiting for their 5-minute refresh."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from models.service_index import IndexWeights
from sinks.service_index import refresh_service_index
from sinks.tables import ROLLUP_TABLES


def refresh_rollups(client: Client, weights: IndexWeights | None = None) -> tuple[str, ...]:
    """Recompute every day whose aggregates changed since the last computation; return the rollup
    tables refreshed. Synchronous: when it returns, `daily_*` reflect every aggregate inserted before
    the call. Safe alongside the scheduled refresh (the latest computation wins).

    Then the Decision 766 service index is recomputed from them (`sinks.service_index`; its weights
    are configuration, so no migration can bake it into a scheduled view).

    (No row counts: chDB reports none for INSERT ... SELECT.)
    """
    for table in ROLLUP_TABLES:
        # The same SELECT as the refreshable view rollup_*_refresh; table names are constants.
        client.command(f"INSERT INTO {table} SELECT * FROM {table}_pending")
    refresh_service_index(client, weights)
    return (*ROLLUP_TABLES, "rollup_service_index")
