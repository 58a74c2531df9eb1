-- Daily rollups for the morning briefing: per day x agency x channel x level (filings), per day x
-- center (service centers), per day x node (network). Days are local days in Vietnam
-- (Asia/Ho_Chi_Minh, UTC+7, no DST), so "yesterday" means what the leaders mean by it.
--
-- Why not incremental materialized views: those see each inserted block once, so a window
-- re-emitted with a higher version, or a batch inserted twice by a retry, would be counted twice.
-- Instead each rollup is recomputed per day from the deduplicated aggregates (FINAL):
--   rollup_daily_X          storage, ReplacingMergeTree(computed_at): the latest computation wins;
--   rollup_daily_X_pending  a view computing every day that has aggregate rows ingested since the
--                           last computation (10 minutes of slack cover inserts still in flight then);
--   rollup_daily_X_refresh  a refreshable materialized view appending the pending view every
--                           5 minutes (works on a server and in chDB, which lacks Atomic default dbs);
--   daily_X                 what readers query: the storage with FINAL applied.
-- `sinks.rollups.refresh_rollups(client)` runs the same pending views synchronously, for the
-- briefing and the tests, so nobody waits for the schedule.

CREATE TABLE IF NOT EXISTS rollup_daily_filings
(
    day Date,
    agency_code LowCardinality(String),
    channel LowCardinality(String),
    level LowCardinality(String),
    submitted UInt64,
    submitted_online UInt64,
    paid_online UInt64,
    digitised UInt64,
    reused_data UInt64,
    processed UInt64,
    on_time UInt64,
    late UInt64,
    result_issued UInt64,
    electronic UInt64,
    rejected UInt64,
    computed_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(day)
ORDER BY (day, agency_code, channel, level);

-- Columns are qualified (a.x) because the output aliases reuse the input names: unqualified,
-- `sum(submitted) AS submitted` would make `sumIf(submitted, ...)` refer to the sum.
CREATE VIEW IF NOT EXISTS rollup_daily_filings_pending AS
SELECT
    toDate(a.window_start, 'Asia/Ho_Chi_Minh') AS day,
    a.agency_code AS agency_code,
    a.channel AS channel,
    a.level AS level,
    sum(a.submitted) AS submitted,
    sumIf(a.submitted, a.channel != 'in_person') AS submitted_online,
    sum(a.paid_online) AS paid_online,
    sum(a.digitised) AS digitised,
    sum(a.reused_data) AS reused_data,
    sum(a.processed) AS processed,
    sum(a.on_time) AS on_time,
    sum(a.late) AS late,
    sum(a.result_issued) AS result_issued,
    sum(a.electronic) AS electronic,
    sum(a.rejected) AS rejected,
    now64(3) AS computed_at
FROM agg_filings AS a FINAL
WHERE toDate(a.window_start, 'Asia/Ho_Chi_Minh') IN (
    SELECT toDate(window_start, 'Asia/Ho_Chi_Minh')
    FROM agg_filings
    WHERE ingested_at >= (SELECT max(computed_at) FROM rollup_daily_filings) - INTERVAL 10 MINUTE
)
GROUP BY day, agency_code, channel, level;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_daily_filings_refresh
REFRESH EVERY 5 MINUTE APPEND TO rollup_daily_filings
AS SELECT * FROM rollup_daily_filings_pending;

CREATE VIEW IF NOT EXISTS daily_filings AS
SELECT * FROM rollup_daily_filings FINAL;


CREATE TABLE IF NOT EXISTS rollup_daily_service_center
(
    day Date,
    center_id LowCardinality(String),
    issued UInt64,
    called UInt64,
    served UInt64,
    abandoned UInt64,
    wait_count UInt64,
    wait_sum Float64,
    wait_max Nullable(Float64),
    wait_sketch Map(Int32, UInt64),
    wait_p90 Nullable(Float64),
    service_count UInt64,
    service_sum Float64,
    rating_count UInt64,
    rating_sum Float64,
    computed_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(day)
ORDER BY (day, center_id);

CREATE VIEW IF NOT EXISTS rollup_daily_service_center_pending AS
SELECT
    toDate(a.window_start, 'Asia/Ho_Chi_Minh') AS day,
    a.center_id AS center_id,
    sum(a.issued) AS issued,
    sum(a.called) AS called,
    sum(a.served) AS served,
    sum(a.abandoned) AS abandoned,
    sum(a.wait_count) AS wait_count,
    sum(a.wait_sum) AS wait_sum,
    max(a.wait_max) AS wait_max,
    sumMap(a.wait_sketch) AS wait_sketch,
    ioc_sketch_quantile(sumMap(a.wait_sketch), 0.9) AS wait_p90,
    sum(a.service_count) AS service_count,
    sum(a.service_sum) AS service_sum,
    sum(a.rating_count) AS rating_count,
    sum(a.rating_sum) AS rating_sum,
    now64(3) AS computed_at
FROM agg_service_center AS a FINAL
WHERE toDate(a.window_start, 'Asia/Ho_Chi_Minh') IN (
    SELECT toDate(window_start, 'Asia/Ho_Chi_Minh')
    FROM agg_service_center
    WHERE ingested_at >= (SELECT max(computed_at) FROM rollup_daily_service_center) - INTERVAL 10 MINUTE
)
GROUP BY day, center_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_daily_service_center_refresh
REFRESH EVERY 5 MINUTE APPEND TO rollup_daily_service_center
AS SELECT * FROM rollup_daily_service_center_pending;

CREATE VIEW IF NOT EXISTS daily_service_center AS
SELECT * FROM rollup_daily_service_center FINAL;


CREATE TABLE IF NOT EXISTS rollup_daily_network
(
    day Date,
    node_id LowCardinality(String),
    samples UInt64,
    up_samples UInt64,
    availability Nullable(Float64),
    latency_sketch Map(Int32, UInt64),
    latency_p95 Nullable(Float64),
    outages UInt64,
    outage_minutes Float64,
    computed_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
PARTITION BY toYYYYMM(day)
ORDER BY (day, node_id);

-- Outages are split at local midnight: an outage from 23:50 to 00:20 gives 10 minutes to the first
-- day and 20 to the second; it counts as one outage on the day it started.
CREATE VIEW IF NOT EXISTS rollup_daily_network_outage_days AS
SELECT
    o.node_id AS node_id,
    o.day AS day,
    toUInt64(toDate(o.`start`, 'Asia/Ho_Chi_Minh') = o.day) AS started,
    greatest(0, dateDiff(
        'millisecond',
        greatest(o.`start`, toDateTime64(o.day, 3, 'Asia/Ho_Chi_Minh')),
        least(o.`end`, toDateTime64(o.day + 1, 3, 'Asia/Ho_Chi_Minh'))
    )) AS outage_ms,
    o.ingested_at AS ingested_at
FROM
(
    SELECT
        node_id, `start`, `end`, ingested_at,
        arrayJoin(arrayMap(
            i -> toDate(`start`, 'Asia/Ho_Chi_Minh') + i,
            -- greatest(0, ...): a row with end < start must not become a 2^64-element range
            range(toUInt64(greatest(0, dateDiff('day', toDate(`start`, 'Asia/Ho_Chi_Minh'), toDate(`end`, 'Asia/Ho_Chi_Minh')))) + 1)
        )) AS day
    FROM network_outages FINAL
) AS o;

CREATE VIEW IF NOT EXISTS rollup_daily_network_pending AS
WITH touched AS
(
    SELECT toDate(window_start, 'Asia/Ho_Chi_Minh') AS day
    FROM agg_network
    WHERE ingested_at >= (SELECT max(computed_at) FROM rollup_daily_network) - INTERVAL 10 MINUTE
    UNION ALL
    SELECT day
    FROM rollup_daily_network_outage_days
    WHERE ingested_at >= (SELECT max(computed_at) FROM rollup_daily_network) - INTERVAL 10 MINUTE
)
SELECT
    u.day AS day,
    u.node_id AS node_id,
    sum(u.n_samples) AS samples,
    sum(u.n_up) AS up_samples,
    if(sum(u.n_samples) = 0, NULL, sum(u.n_up) / sum(u.n_samples)) AS availability,
    sumMap(u.sketch) AS latency_sketch,
    ioc_sketch_quantile(sumMap(u.sketch), 0.95) AS latency_p95,
    sum(u.n_outages) AS outages,
    sum(u.outage_ms) / 60000 AS outage_minutes,
    now64(3) AS computed_at
FROM
(
    SELECT
        toDate(a.window_start, 'Asia/Ho_Chi_Minh') AS day,
        a.node_id AS node_id,
        toUInt64(a.samples) AS n_samples,
        toUInt64(a.up_samples) AS n_up,
        a.latency_sketch AS sketch,
        toUInt64(0) AS n_outages,
        toInt64(0) AS outage_ms
    FROM agg_network AS a FINAL
    WHERE toDate(a.window_start, 'Asia/Ho_Chi_Minh') IN (SELECT day FROM touched)
    UNION ALL
    SELECT
        d.day AS day,
        d.node_id AS node_id,
        toUInt64(0) AS n_samples,
        toUInt64(0) AS n_up,
        CAST(map(), 'Map(Int32, UInt64)') AS sketch,
        d.started AS n_outages,
        toInt64(d.outage_ms) AS outage_ms
    FROM rollup_daily_network_outage_days AS d
    WHERE d.day IN (SELECT day FROM touched)
) AS u
GROUP BY day, node_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS rollup_daily_network_refresh
REFRESH EVERY 5 MINUTE APPEND TO rollup_daily_network
AS SELECT * FROM rollup_daily_network_pending;

CREATE VIEW IF NOT EXISTS daily_network AS
SELECT * FROM rollup_daily_network FINAL;
