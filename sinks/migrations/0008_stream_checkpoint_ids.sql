-- The duplicate filter's event ids of each checkpoint, apart from its state (streams.checkpoints):
-- each checkpoint appends the ids its partition saw since the one before, per event-time bucket, and
-- a restore reads the rows of checkpoints up to the one it restores (next_offset <= its offset).
-- Only the last minutes of ids are ever read; rows leave after a day, a whole hourly part at a time.
-- A worker down longer than that restores without them: a copy of an event sent just before the
-- outage that arrives only after it would count twice (producer retries take seconds, not a day).
CREATE TABLE IF NOT EXISTS stream_checkpoint_ids
(
    consumer_group LowCardinality(String),
    topic LowCardinality(String),
    `partition` UInt32,
    next_offset UInt64,
    bucket Int64,
    ids Array(String) CODEC(ZSTD(3)),
    written_at DateTime('UTC') DEFAULT now()
)
ENGINE = MergeTree
PARTITION BY toStartOfHour(written_at)
ORDER BY (consumer_group, topic, `partition`, bucket, next_offset)
TTL written_at + INTERVAL 1 DAY
SETTINGS ttl_only_drop_parts = 1;
