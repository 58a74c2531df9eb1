"""Checkpoints in ClickHouse: a partition's state and the next offset it has not yet seen.

Order of a checkpoint (`streams.recovery.checkpoint`): outputs and the new seen ids flushed
-> checkpoint rows inserted -> Kafka offset committed. A crash anywhere in between leaves either the
previous checkpoint (outputs re-emitted idempotently) or the new one; never a state ahead of its
outputs.

The seen event ids (the duplicate filter, `streams.decode.SeenIds`) are most of a state's bytes:
minutes of ids. They are stored apart, each checkpoint appending only the ids added since the one
before (`stream_checkpoint_ids`), and a restore reads the deltas of checkpoints up to the one it
restores. Rows of a checkpoint that never completed have a higher offset and are not read.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from clickhouse_connect.driver.client import Client

CHECKPOINT_TABLE = "stream_checkpoints"
SEEN_IDS_TABLE = "stream_checkpoint_ids"
SCHEMA = pa.schema([("consumer_group", pa.string()), ("topic", pa.string()), ("partition", pa.uint32()),
                    ("next_offset", pa.uint64()), ("state", pa.binary())])
SEEN_IDS_SCHEMA = pa.schema([("consumer_group", pa.string()), ("topic", pa.string()), ("partition", pa.uint32()),
                             ("next_offset", pa.uint64()), ("bucket", pa.int64()), ("ids", pa.list_(pa.string()))])


@dataclass
class Cut:
    """One partition's checkpoint as taken under the worker's lock, before anything is written."""

    next_offset: int
    state: bytes  # the pickled state without its seen ids
    new_ids: dict[int, pa.Array]  # bucket -> ids seen since the last stored checkpoint
    id_counts: dict[int, int]  # bucket -> its ids at the cut: stored once this checkpoint is


def checkpoint_rows(group: str, topic: str, cuts: dict[int, Cut]) -> pa.Table:
    parts = sorted(cuts)
    return pa.table({
        "consumer_group": [group] * len(parts),
        "topic": [topic] * len(parts),
        "partition": pa.array(parts, pa.uint32()),
        "next_offset": pa.array([cuts[p].next_offset for p in parts], pa.uint64()),
        "state": pa.array([cuts[p].state for p in parts], pa.binary()),
    }, schema=SCHEMA)


def seen_id_rows(group: str, topic: str, cuts: dict[int, Cut]) -> pa.Table:
    """One row per (partition, bucket) with new ids."""
    rows = [(p, cut.next_offset, b, ids) for p, cut in sorted(cuts.items()) for b, ids in sorted(cut.new_ids.items())]
    values = pa.concat_arrays([r[3].cast(pa.string()) for r in rows]) if rows else pa.array([], pa.string())
    offsets = np.concatenate([[0], np.cumsum([len(r[3]) for r in rows], dtype=np.int32)]).astype(np.int32)
    return pa.table({
        "consumer_group": [group] * len(rows),
        "topic": [topic] * len(rows),
        "partition": pa.array([r[0] for r in rows], pa.uint32()),
        "next_offset": pa.array([r[1] for r in rows], pa.uint64()),
        "bucket": pa.array([r[2] for r in rows], pa.int64()),
        "ids": pa.ListArray.from_arrays(pa.array(offsets), values),
    }, schema=SEEN_IDS_SCHEMA)


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


def load_seen_ids(client: Client, group: str, topic: str, partition: int, next_offset: int,
                  min_bucket: int) -> dict[int, pa.Array]:
    """{bucket: ids} stored by the checkpoints of a partition up to the one at `next_offset`."""
    table = client.query_arrow(
        f"SELECT bucket, arrayJoin(ids) AS id FROM {SEEN_IDS_TABLE} "
        f"WHERE consumer_group = {{group:String}} AND topic = {{topic:String}} AND `partition` = {{p:UInt32}} "
        f"AND next_offset <= {{offset:UInt64}} AND bucket >= {{min_bucket:Int64}}",
        parameters={"group": group, "topic": topic, "p": partition, "offset": next_offset, "min_bucket": min_bucket},
    )
    if table.num_rows == 0:
        return {}
    table = table.sort_by("bucket")
    buckets = table.column("bucket").to_numpy()
    ids = table.column("id").combine_chunks().cast(pa.string())
    starts = [0, *(np.flatnonzero(np.diff(buckets)) + 1).tolist(), len(buckets)]
    return {int(buckets[a]): ids.slice(a, b - a) for a, b in itertools.pairwise(starts)}
