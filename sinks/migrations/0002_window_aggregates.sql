-- Windowed aggregates, as the window engine emits them (one row per window x key, with a version).
--
-- Idempotent on window + key: ReplacingMergeTree(version) keeps, per (window_start, key), the row
-- with the highest version. A window re-emitted after a late event (version + 1) replaces the old
-- row; re-inserting the same batch changes nothing. Read with FINAL (or argMax(..., version)).
-- ingested_at is not part of the contract with the engine (it fills itself); the daily rollups use
-- it to find the days that changed since their last refresh, helped by a min-max index.

CREATE TABLE IF NOT EXISTS agg_service_center
(
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    center_id LowCardinality(String),
    version UInt32,
    issued UInt32,
    called UInt32,
    served UInt32,
    abandoned UInt32,
    counters_opened UInt32,
    counters_closed UInt32,
    wait_count UInt32,
    wait_sum Float64,
    wait_max Nullable(Float64),
    wait_p50 Nullable(Float64),
    wait_p90 Nullable(Float64),
    wait_p99 Nullable(Float64),
    wait_sketch Map(Int32, UInt64),
    service_count UInt32,
    service_sum Float64,
    service_p90 Nullable(Float64),
    rating_count UInt32,
    rating_sum Float64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX ingested_at_idx ingested_at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (window_start, center_id);

CREATE TABLE IF NOT EXISTS agg_filings
(
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    agency_code LowCardinality(String),
    channel LowCardinality(String),
    level LowCardinality(String),
    version UInt32,
    submitted UInt32,
    processed UInt32,
    on_time UInt32,
    late UInt32,
    result_issued UInt32,
    electronic UInt32,
    rejected UInt32,
    paid_online UInt32,
    digitised UInt32,
    reused_data UInt32,
    on_time_ratio Nullable(Float64),
    paid_online_ratio Nullable(Float64),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX ingested_at_idx ingested_at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (window_start, agency_code, channel, level);

CREATE TABLE IF NOT EXISTS agg_network
(
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    node_id LowCardinality(String),
    version UInt32,
    samples UInt32,
    up_samples UInt32,
    latency_p50 Nullable(Float64),
    latency_p95 Nullable(Float64),
    latency_max Nullable(Float64),
    latency_sketch Map(Int32, UInt64),
    latency_sum Float64,
    jitter_sum Float64,
    loss_sum Float64,
    loss_max Nullable(Float64),
    rx_bps_sum Float64,
    tx_bps_sum Float64,
    capacity_bps Nullable(Float64),
    util_max Nullable(Float64),
    availability Nullable(Float64),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX ingested_at_idx ingested_at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (window_start, node_id);

-- Outage sessions (consecutive link-down samples of a node). An open outage is re-emitted with a
-- later `end` and a higher version; its start, hence its key, never changes.
CREATE TABLE IF NOT EXISTS network_outages
(
    node_id LowCardinality(String),
    `start` DateTime64(3, 'UTC'),
    `end` DateTime64(3, 'UTC'),
    duration_s Float64,
    samples UInt32,
    version UInt32,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX ingested_at_idx ingested_at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(`start`)
ORDER BY (node_id, `start`);
