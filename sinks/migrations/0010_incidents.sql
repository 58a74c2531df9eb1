-- Incidents replace the per-window alerts (streams/incidents.py): one row per incident, versioned.
--
-- The incident engine writes a new version whenever an incident changes (opened, a subject joins,
-- severity or peak rises, resolved); ReplacingMergeTree(version) keeps the latest per incident_id, and
-- a replay after a crash rewrites the same ids with the same versions. Read with FINAL (or the
-- incidents_current view). Operators acknowledge in incident_acks (`ioc incidents ack`): a table of
-- its own, so the engine's versions and the operators' writes never race for one row.
-- The old alerts table (one row per breaching window, 500+ a day) is dropped: nothing reads it.

DROP TABLE IF EXISTS alerts;

CREATE TABLE IF NOT EXISTS incidents
(
    incident_id String,
    version UInt32,
    status LowCardinality(String),   -- open | resolved
    family LowCardinality(String),
    scope LowCardinality(String),
    subject String,
    title String,
    severity LowCardinality(String),
    rules Array(LowCardinality(String)),
    subjects Array(String),          -- every node / center / agency in it, the subject first
    communes Array(String),          -- the communes they serve: the impact
    `start` DateTime64(3, 'UTC'),     -- first breaching window
    detected_at DateTime64(3, 'UTC'), -- event time at which it opened
    `end` Nullable(DateTime64(3, 'UTC')), -- last breaching window end, once resolved
    peak_rule LowCardinality(String),
    peak_value Nullable(Float64),
    threshold Nullable(Float64),
    updated_at DateTime64(3, 'UTC'),
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX start_idx `start` TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(version)
ORDER BY incident_id;

CREATE TABLE IF NOT EXISTS incident_acks
(
    incident_id String,
    acknowledged_at DateTime64(3, 'UTC'),
    acknowledged_by String,
    note String
)
ENGINE = ReplacingMergeTree(acknowledged_at)
ORDER BY incident_id;

-- What operators see: the latest version of each incident, and its lifecycle state with the
-- acknowledgement: open -> acknowledged -> resolved.
CREATE VIEW IF NOT EXISTS incidents_current AS
SELECT
    i.*,
    a.acknowledged_at AS acknowledged_at,
    a.acknowledged_by AS acknowledged_by,
    a.note AS note,
    multiIf(i.status = 'resolved', 'resolved', a.acknowledged_at IS NOT NULL, 'acknowledged', 'open') AS state
FROM incidents AS i FINAL
LEFT JOIN (SELECT * FROM incident_acks FINAL) AS a ON a.incident_id = i.incident_id
SETTINGS join_use_nulls = 1;
