"""Loading the dimension tables (dim_*) from the reference data in models/reference.py."""

from __future__ import annotations

import hashlib
import logging

import pyarrow as pa
from clickhouse_connect.driver.client import Client

from models.reference import Reference, build_reference

log = logging.getLogger(__name__)


def table_checksum(table: pa.Table) -> str:
    """SHA-256 of the table's Arrow IPC stream: equal for equal schema and content."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def load_reference(client: Client, reference: Reference | None = None) -> list[str]:
    """(Re)load every dim_* table whose reference data changed; return the names reloaded.

    Idempotent: a table is rewritten only when its checksum differs from the last recorded load or
    its row count does not match (e.g. a load interrupted between TRUNCATE and INSERT). The
    checksum is recorded after the insert, so an interrupted load is redone next time.
    """
    tables = (reference or build_reference()).tables()
    last = {
        name: (checksum, rows)
        for name, checksum, rows in client.query(
            "SELECT table_name, argMax(checksum, loaded_at), argMax(row_count, loaded_at) "
            "FROM reference_loads GROUP BY table_name"
        ).result_rows
    }
    counts = dict(
        client.query(
            "SELECT name, total_rows FROM system.tables "
            "WHERE database = currentDatabase() AND name IN {names:Array(String)}",
            parameters={"names": list(tables)},
        ).result_rows
    )
    reloaded: list[str] = []
    for name, table in tables.items():
        checksum = table_checksum(table)
        if last.get(name) == (checksum, table.num_rows) and counts.get(name) == table.num_rows:
            continue
        # Table names come from our own reference module, never from data.
        client.command(f"TRUNCATE TABLE IF EXISTS {name}")
        client.insert_arrow(name, table)
        client.insert(
            "reference_loads", [[name, checksum, table.num_rows]], column_names=["table_name", "checksum", "row_count"]
        )
        reloaded.append(name)
    if reloaded:
        log.info("loaded reference tables: %s", ", ".join(reloaded))
    return reloaded
