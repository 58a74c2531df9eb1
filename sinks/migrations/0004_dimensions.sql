-- Dimension tables, filled from models/reference.py by `sinks.dimensions.load_reference` (called by
-- migrate()). A reload replaces a table's rows only when the reference data changed, recorded by
-- checksum in reference_loads, so re-running the migration leaves them untouched.

CREATE TABLE IF NOT EXISTS dim_provinces
(
    province_code LowCardinality(String),
    name String,
    name_en String
)
ENGINE = MergeTree
ORDER BY province_code;

CREATE TABLE IF NOT EXISTS dim_communes
(
    commune_code String,
    province_code LowCardinality(String),
    name String,
    kind LowCardinality(String),
    weight Float64
)
ENGINE = MergeTree
ORDER BY commune_code;

CREATE TABLE IF NOT EXISTS dim_agencies
(
    agency_code String,
    name String,
    name_en String,
    level LowCardinality(String),
    province_code LowCardinality(String),
    commune_code Nullable(String)
)
ENGINE = MergeTree
ORDER BY agency_code;

CREATE TABLE IF NOT EXISTS dim_procedures
(
    procedure_id String,
    name String,
    level LowCardinality(String),
    online_mode LowCardinality(String),
    department_code Nullable(String),
    processing_days UInt16,
    demand_weight Float64
)
ENGINE = MergeTree
ORDER BY procedure_id;

CREATE TABLE IF NOT EXISTS dim_centers
(
    center_id String,
    name String,
    level LowCardinality(String),
    commune_code Nullable(String),
    counters UInt16
)
ENGINE = MergeTree
ORDER BY center_id;

CREATE TABLE IF NOT EXISTS dim_nodes
(
    node_id String,
    role LowCardinality(String),
    agency_code Nullable(String),
    commune_code Nullable(String),
    capacity_bps Float64
)
ENGINE = MergeTree
ORDER BY node_id;

CREATE TABLE IF NOT EXISTS reference_loads
(
    table_name LowCardinality(String),
    checksum String,
    row_count UInt64,
    loaded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
ORDER BY (table_name, loaded_at);
