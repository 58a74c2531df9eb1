-- Stream worker checkpoints: per consumer group and topic-partition, the next offset to process and
-- the partition's windowing state at that offset. A worker writes a checkpoint only after every
-- output of the events before that offset is inserted, and commits the Kafka offset after that, so
-- a restarted worker restores the state, skips what it holds, and counts every event exactly once.
-- Written by the worker's own (read-write) user; the Grafana reader never needs this table.
CREATE TABLE IF NOT EXISTS stream_checkpoints
(
    consumer_group LowCardinality(String),
    topic LowCardinality(String),
    `partition` UInt32,
    next_offset UInt64,
    state String CODEC(ZSTD(3)),
    written_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(next_offset)
ORDER BY (consumer_group, topic, `partition`);
