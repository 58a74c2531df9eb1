"""Checkpoints in real ClickHouse (chDB): each stores only the seen ids added since the one before,
and a restore gets back exactly the ids of the checkpoint it restores."""

from __future__ import annotations

import functools
import pickle
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from models.events import SERVICE_CENTER
from models.schema import encode_json, parse_time
from models.settings import Settings
from sinks.client import connect
from sinks.migrate import migrate
from streams.checkpoints import (
    CHECKPOINT_TABLE,
    SEEN_IDS_TABLE,
    Cut,
    checkpoint_rows,
    load_checkpoints,
    load_seen_ids,
    seen_id_rows,
)
from streams.decode import MessageBatch
from streams.pipeline import FamilyPipeline, PartitionState, pipelines

SC = SERVICE_CENTER
SETTINGS = Settings()
T0 = parse_time("2025-07-14T08:00:00Z")
GROUP = "g"


@pytest.fixture
def client(chdb_store: Path) -> Iterator[Client]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    dsn = f"chdb://{chdb_store}?database={name}"
    migrate(dsn, SETTINGS)
    c = connect(dsn, SETTINGS)
    yield c
    c.command(f"DROP DATABASE IF EXISTS {name} SYNC")
    c.close()


def batch(ids: range, step_ms: int = 500) -> MessageBatch:
    """Service-center events e<i> at T0 + i * step_ms, offset i, partition 0."""
    return MessageBatch.of([(encode_json(SC, {"event_id": f"e{i}", "event_time": T0 + i * step_ms, "center_id": "C1",
                                              "kind": "issued"}), 0, i, None) for i in ids])


def seen_ids(state: PartitionState) -> set[str]:
    return {i for ids in state.seen.buckets.values() for i in ids.to_pylist()}


def store(client: Client, cut: Cut, with_checkpoint_row: bool = True) -> None:
    client.insert_arrow(SEEN_IDS_TABLE, seen_id_rows(GROUP, SC.topic, {0: cut}))
    if with_checkpoint_row:
        client.insert_arrow(CHECKPOINT_TABLE, checkpoint_rows(GROUP, SC.topic, {0: cut}))


def restore(client: Client, pipeline: FamilyPipeline) -> PartitionState:
    offset, blob = load_checkpoints(client, GROUP, SC.topic, [0])[0]
    state = PartitionState.restore(blob, offset, functools.partial(load_seen_ids, client, GROUP, SC.topic, 0, offset))
    pipeline.partitions[0] = state
    return state


def test_each_checkpoint_stores_only_new_ids_and_a_restore_gets_its_own(client: Client) -> None:
    pipeline = pipelines(SETTINGS)[SC.topic]
    state = pipeline.partitions[0] = pipeline.new_state()
    pipeline.process(batch(range(0, 150)))  # 75 s of events: two one-minute buckets
    first = state.cut()
    assert sum(len(ids) for ids in first.new_ids.values()) == 150 and len(first.new_ids) == 2
    assert PartitionState.restore(first.state, 0, lambda _: {}).seen.buckets == {}  # the blob holds no ids
    store(client, first)
    state.mark_stored(first)

    pipeline.process(batch(range(150, 200)))
    second = state.cut()
    assert sorted(i for ids in second.new_ids.values() for i in ids.to_pylist()) == sorted(
        f"e{i}" for i in range(150, 200))
    store(client, second)
    state.mark_stored(second)

    pipeline.process(batch(range(200, 230)))
    store(client, state.cut(), with_checkpoint_row=False)  # crashed before its checkpoint row
    expected = seen_ids(state) - {f"e{i}" for i in range(200, 230)}

    restored = restore(client, pipelines(SETTINGS)[SC.topic])
    assert restored.next_offset == 200
    assert seen_ids(restored) == expected  # the unfinished checkpoint's ids are not read
    assert restored.seen.unsaved() == {}


def test_a_restored_worker_still_catches_duplicates_and_takes_the_rest(client: Client) -> None:
    pipeline = pipelines(SETTINGS)[SC.topic]
    state = pipeline.partitions[0] = pipeline.new_state()
    pipeline.process(batch(range(0, 100)))
    cut = state.cut()
    store(client, cut)

    again = pipelines(SETTINGS)[SC.topic]
    restored = restore(client, again)
    replayed = MessageBatch.of([(encode_json(SC, {"event_id": f"e{i}", "event_time": T0 + i * 500, "center_id": "C1",
                                                  "kind": "issued"}), 0, 100 + k, None)
                                for k, i in enumerate([5, 99, 100])])
    out = again.process(replayed)
    assert [d.reason for d in out.dead] == ["duplicate", "duplicate"]
    assert out.events_valid == 1
    assert sum(len(ids) for ids in restored.seen.unsaved().values()) == 1  # only e100 goes in the next checkpoint


def test_a_checkpoint_written_before_the_ids_went_apart_still_restores() -> None:
    """Older blobs pickled the ids inside the state and had no `saved`: they restore, all ids unsaved."""
    pipeline = pipelines(SETTINGS)[SC.topic]
    state = pipeline.partitions[0] = pipeline.new_state()
    pipeline.process(batch(range(0, 40)))
    del state.seen.__dict__["saved"]  # the old shape
    old_blob = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    restored = PartitionState.restore(old_blob, 40, lambda _: {})
    assert seen_ids(restored) == {f"e{i}" for i in range(40)}
    assert sum(len(ids) for ids in restored.seen.unsaved().values()) == 40  # the next checkpoint stores them
