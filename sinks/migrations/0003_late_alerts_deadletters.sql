-- Side outputs of the streams: events too late for their window, alerts, dead letters.

-- The late side output of streams.windows (LATE_SCHEMA): one row per event and window it missed.
-- Idempotent on (family, event_id, window_start); event_time belongs to the event, so a redelivered
-- late event has the same sorting key and collapses (FINAL). detected_at defaults to the insert time.
CREATE TABLE IF NOT EXISTS late_events
(
    family LowCardinality(String),
    key LowCardinality(String),
    event_id String,
    event_time DateTime64(3, 'UTC'),
    window_start DateTime64(3, 'UTC'),
    detected_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(event_time)
ORDER BY (family, toDate(event_time), event_id, window_start);

-- Idempotent on alert_id alone (the sorting key), whatever else a re-raised alert carries.
-- Few rows: the min-max index is enough for "alerts of the last hour".
CREATE TABLE IF NOT EXISTS alerts
(
    alert_id String,
    event_time DateTime64(3, 'UTC'),
    family LowCardinality(String),
    subject LowCardinality(String),
    rule LowCardinality(String),
    severity LowCardinality(String),
    value Nullable(Float64),
    threshold Nullable(Float64),
    message String,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX event_time_idx event_time TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree
ORDER BY alert_id;

-- One row per rejected Kafka message, idempotent on its position (topic, partition, offset): a
-- message dead-lettered again after a worker restart collapses. received_at may differ between the
-- two deliveries, so it is not in the key (nor in a partition expression).
CREATE TABLE IF NOT EXISTS deadletters
(
    source_topic LowCardinality(String),
    `partition` UInt32,
    `offset` UInt64,
    reason LowCardinality(String),
    detail String,
    payload_bytes UInt32,
    received_at DateTime64(3, 'UTC'),
    INDEX received_at_idx received_at TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree
ORDER BY (source_topic, `partition`, `offset`);

-- Dead-letter counts per day (Asia/Ho_Chi_Minh), topic and reason, deduplicated.
CREATE VIEW IF NOT EXISTS deadletter_counts AS
SELECT
    toDate(received_at, 'Asia/Ho_Chi_Minh') AS day,
    source_topic,
    reason,
    count() AS letters,
    sum(payload_bytes) AS payload_bytes,
    max(received_at) AS last_received_at
FROM deadletters FINAL
GROUP BY day, source_topic, reason;
