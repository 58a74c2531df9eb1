-- The Decision 766/QD-TTg service index per agency, commune and province, per day and month-to-date
-- (models/service_index.py, sinks/service_index.py). Recomputed from the daily rollups, never
-- incremented: ReplacingMergeTree(computed_at) keeps the latest computation of each row, so a
-- recomputation after late data (or with other weights) replaces what was there.

CREATE TABLE IF NOT EXISTS rollup_service_index
(
    period LowCardinality(String),      -- day | mtd (the month up to and including `day`)
    day Date,                           -- local day (Asia/Ho_Chi_Minh)
    unit_level LowCardinality(String),  -- agency | commune | province
    unit_code String,
    transparency Nullable(Float64),     -- group scores in points (NULL: no data for the group)
    progress Nullable(Float64),
    online Nullable(Float64),
    satisfaction Nullable(Float64),
    digitisation Nullable(Float64),
    total Nullable(Float64),            -- out of 100, over the groups with data
    rank UInt32,                        -- 1 = best total among the units of the level that day
    units UInt32,                       -- units ranked at that level that day
    dossiers UInt64,                    -- submitted in the period: how much the figures rest on
    ratings UInt64,
    computed_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(day)
ORDER BY (period, day, unit_level, unit_code);

CREATE VIEW IF NOT EXISTS service_index AS
SELECT * FROM rollup_service_index FINAL;
