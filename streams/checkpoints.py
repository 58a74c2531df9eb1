"""Checkpoints in ClickHouse: a partition's state and the next offset it has not yet seen.

Order of a checkpoint (`streams.app.StreamWorker.checkpoint`): outputs flushed -> checkpoint rows
inserted -> Kafka offset committed. A crash anywhere in between leaves either the previous
checkpoint (outputs re-emitted idempotently) or the new one; never a state ahead of its outputs.
"""

from __future__ import annotations

import pyarrow as pa
from clickhouse_connect.driver.client import Client

CHECKPOINT_TABLE = "stream_checkpoints"
SCHEMA = pa.schema([("consumer_group", pa.string()), ("topic", pa.string()), ("partition", pa.uint32()),
                    ("next_offset", pa.uint64()), ("state", pa.binary())])


def checkpoint_rows(group: str, topic: str, states: dict[int, tuple[int, bytes]]) -> pa.Table:
    parts = sorted(states)
    return pa.table({
        "consumer_group": [group] * len(parts),
        "topic": [topic] * len(parts),
        "partition": pa.array(parts, pa.uint32()),
        "next_offset": pa.array([states[p][0] for p in parts], pa.uint64()),
        "state": pa.array([states[p][1] for p in parts], pa.binary()),
    }, schema=SCHEMA)


def load_checkpoints(client: Client, group: str, topic: str, partitions: list[int]) -> dict[int, tuple[int, bytes]]:
    """{partition: (next_offset, state)} of the latest checkpoint of each given partition."""
    if not partitions:
        return {}
    result = client.query(
        f"SELECT `partition`, max(next_offset) AS last_offset, argMax(state, next_offset) AS last_state "
        f"FROM {CHECKPOINT_TABLE} WHERE consumer_group = {{group:String}} AND topic = {{topic:String}} "
        f"AND `partition` IN {{partitions:Array(UInt32)}} GROUP BY `partition`",
        parameters={"group": group, "topic": topic, "partitions": partitions},
        column_formats={"last_state": "bytes"},
    )
    return {int(p): (int(offset), bytes(state)) for p, offset, state in result.result_rows}
