-- Raw events, one table per family: the fields of models/events.py as they arrive (Arrow schema
-- `Family.schema`), plus the time the sink wrote them.
--
-- Idempotent on event_id: ReplacingMergeTree collapses rows with the same sorting key, and a
-- redelivered event (same event_id) is the same event, so it also has the same event_time and key.
-- Queries that must not see redeliveries use FINAL (or count distinct event_id).
-- Sorting key: time bucket first, then the entity key, because dashboards filter a time range first
-- and then an entity (DESIGN.md: 13-90 ms on 10M rows with this order in chDB).
-- Retention (TTL) is not part of this schema history: `migrate()` sets it from IOC_RAW_TTL_DAYS on
-- every run, so changing the setting and re-running the migration changes it. It counts from
-- ingested_at, not event_time, so that replayed historical days are not expired on arrival.

CREATE TABLE IF NOT EXISTS raw_service_center
(
    event_id String,
    event_time DateTime64(3, 'UTC'),
    center_id LowCardinality(String),
    kind LowCardinality(String),
    ticket_id Nullable(String),
    counter_id Nullable(UInt16),
    wait_s Nullable(Float64),
    service_s Nullable(Float64),
    rating Nullable(UInt8),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (toStartOfHour(event_time), center_id, event_id);

CREATE TABLE IF NOT EXISTS raw_filings
(
    event_id String,
    event_time DateTime64(3, 'UTC'),
    agency_code LowCardinality(String),
    dossier_id String,
    procedure_id LowCardinality(String),
    kind LowCardinality(String),
    channel LowCardinality(String),
    level LowCardinality(String),
    paid_online Nullable(Bool),
    digitised Nullable(Bool),
    reused_data Nullable(Bool),
    due_time Nullable(DateTime64(3, 'UTC')),
    on_time Nullable(Bool),
    electronic Nullable(Bool),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (toStartOfHour(event_time), agency_code, event_id);

CREATE TABLE IF NOT EXISTS raw_network
(
    event_id String,
    event_time DateTime64(3, 'UTC'),
    node_id LowCardinality(String),
    latency_ms Float64,
    jitter_ms Float64,
    loss_pct Float64,
    rx_bps Float64,
    tx_bps Float64,
    capacity_bps Float64,
    link_up Bool,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (toStartOfHour(event_time), node_id, event_id);
