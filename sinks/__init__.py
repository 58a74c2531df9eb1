"""ClickHouse schema and sink: one clickhouse-connect code path for a server (HTTP) and chDB.

- `sinks.client.connect(dsn, settings)`: a client for `http(s)://...` or `chdb://PATH`;
- `sinks.migrate.migrate(dsn, settings)`: versioned migrations (`sinks/migrations/*.sql`) + TTL,
  reference data and the read-only Grafana user;
- `sinks.writer.ClickHouseWriter`: batched, retried Arrow inserts with backpressure;
- `sinks.rollups.refresh_rollups(client)`: bring the daily rollups up to date now;
- `sinks.tables`: the table names readers and writers share.
"""
