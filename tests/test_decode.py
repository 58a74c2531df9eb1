"""Batch decoding: JSON and Arrow, bad input isolated with a reason, order kept, duplicates caught."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from models.events import ARROW_CONTENT_TYPE, SERVICE_CENTER
from models.schema import encode_json, parse_time, records_to_table
from models.settings import Settings
from streams.decode import MessageBatch, decode_batch
from streams.pipeline import pipelines
from streams.seen_ids import SeenIds

SC = SERVICE_CENTER
T0 = parse_time("2025-07-14T08:00:00Z")
NOW = T0 + 3_600_000
ARROW_HEADERS = [("content-type", ARROW_CONTENT_TYPE)]


def event(i: int, **extra: object) -> dict[str, object]:
    return {"event_id": f"e{i}", "event_time": T0 + i * 1000, "center_id": f"C{i % 7}", "kind": "called",
            "wait_s": float(i % 50)} | extra


def json_batch(values: list[bytes], partition: int = 0) -> MessageBatch:
    return MessageBatch.of([(v, partition, i, None) for i, v in enumerate(values)])


def decode(batch: MessageBatch, seen: SeenIds | None = None):  # type: ignore[no-untyped-def]
    return decode_batch(SC, batch, NOW, 300_000, 4096, 1 << 24, seen)


def arrow_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


BAD = {
    "undecodable": b"{not json",
    "missing_field": b'{"event_id": "m", "center_id": "C1", "kind": "called"}',
    "wrong_type": b'{"event_id": "w", "event_time": "2025-07-14T08:00:00Z", "center_id": 5, "kind": "called"}',
    "unknown_enum": b'{"event_id": "u", "event_time": "2025-07-14T08:00:00Z", "center_id": "C1", "kind": "x"}',
    "out_of_range": b'{"event_id": "o", "event_time": "2025-07-14T08:00:00Z", "center_id": "C1", "kind": "served",'
                    b' "rating": 7}',
    "future_time": b'{"event_id": "f", "event_time": "2030-01-01T00:00:00Z", "center_id": "C1", "kind": "called"}',
    "oversized": b'{"event_id": "' + b"x" * 5000 + b'"}',
}


def test_clean_json_batch_decodes_whole() -> None:
    values = [encode_json(SC, event(i)) for i in range(1000)]
    out = decode(json_batch(values))
    assert out.events.num_rows == 1000 and not out.dead
    assert out.events.column("event_id").to_pylist() == [f"e{i}" for i in range(1000)]
    assert out.offsets.tolist() == list(range(1000))


@settings(max_examples=60, deadline=None)
@given(positions=st.lists(st.tuples(st.integers(0, 199), st.sampled_from(sorted(BAD))), max_size=12))
def test_bad_messages_are_isolated_with_their_reason(positions: list[tuple[int, str]]) -> None:
    values = [encode_json(SC, event(i)) for i in range(200)]
    expected_bad = {}
    for pos, reason in positions:
        values[pos] = BAD[reason]
        expected_bad[pos] = reason
    out = decode(json_batch(values))
    assert {d.offset: d.reason for d in out.dead} == expected_bad
    good = [i for i in range(200) if i not in expected_bad]
    assert out.events.column("event_id").to_pylist() == [f"e{i}" for i in good]  # order kept
    assert all(d.payload == values[d.offset] for d in out.dead)  # the original bytes


def test_arrow_batches_and_json_mix_in_offset_order() -> None:
    table = records_to_table(SC, [event(i) for i in range(10, 20)])
    batch = MessageBatch.of([
        (encode_json(SC, event(0)), 0, 100, None),
        (arrow_bytes(table), 0, 101, ARROW_HEADERS),
        (encode_json(SC, event(1)), 0, 102, None),
        (b"broken arrow", 0, 103, ARROW_HEADERS),
    ])
    out = decode(batch)
    assert out.events.column("event_id").to_pylist() == ["e0", *[f"e{i}" for i in range(10, 20)], "e1"]
    assert out.offsets.tolist() == [100] + [101] * 10 + [102]
    assert [(d.offset, d.reason) for d in out.dead] == [(103, "undecodable")]


def test_bad_row_inside_an_arrow_batch_is_dead_lettered_alone() -> None:
    rows = [event(i) for i in range(5)]
    rows[2] = event(2, kind="served", rating=9)
    out = decode(MessageBatch.of([(arrow_bytes(records_to_table(SC, rows)), 3, 7, ARROW_HEADERS)]))
    assert out.events.num_rows == 4
    [dead] = out.dead
    assert (dead.partition, dead.offset, dead.reason, dead.detail) == (3, 7, "out_of_range", "rating")
    assert pa.ipc.open_stream(dead.payload).read_all().column("event_id").to_pylist() == ["e2"]


def test_arrow_batch_missing_optional_columns_is_accepted() -> None:
    table = pa.table({"event_id": ["a"], "event_time": pa.array([T0], pa.timestamp("ms", tz="UTC")),
                      "center_id": ["C1"], "kind": ["issued"]})
    out = decode(MessageBatch.of([(arrow_bytes(table), 0, 0, ARROW_HEADERS)]))
    assert out.events.num_rows == 1 and out.events.column("wait_s").null_count == 1


def test_duplicates_within_and_across_batches() -> None:
    seen = SeenIds()
    first = decode(json_batch([encode_json(SC, event(i)) for i in (1, 2, 2, 3)]), seen)
    assert first.events.column("event_id").to_pylist() == ["e1", "e2", "e3"]
    assert [(d.offset, d.reason) for d in first.dead] == [(2, "duplicate")]
    second = decode(json_batch([encode_json(SC, event(i)) for i in (3, 4)]), seen)
    assert second.events.column("event_id").to_pylist() == ["e4"]
    assert [d.reason for d in second.dead] == ["duplicate"]


def reference_first_sightings(batches: list[list[tuple[str, int]]], bucket_ms: int, keep_ms: int) -> list[list[bool]]:
    """SeenIds' rule in plain Python: an id is new unless kept (its bucket not yet forgotten) or earlier in
    its batch."""
    kept: dict[int, set[str]] = {}
    max_time = 0
    out = []
    for batch in batches:
        marks, mine = [], set()
        for event_id, _ in batch:
            marks.append(event_id not in mine and not any(event_id in ids for ids in kept.values()))
            mine.add(event_id)
        for (event_id, t), new in zip(batch, marks, strict=True):
            if new:
                kept.setdefault(t // bucket_ms, set()).add(event_id)
        if any(marks):
            max_time = max([max_time] + [t for (_, t), new in zip(batch, marks, strict=True) if new])
        oldest = (max_time - keep_ms) // bucket_ms
        kept = {b: ids for b, ids in kept.items() if b >= oldest}
        out.append(marks)
    return out


batches_of_ids = st.lists(st.lists(st.tuples(st.sampled_from([f"id-{i}" for i in range(40)] + ["", "x" * 20]),
                                             st.integers(0, 600_000)), max_size=30), max_size=12)


@given(batches_of_ids, st.sampled_from(["real", "colliding"]), st.data())
@settings(max_examples=60, deadline=None)
def test_seen_ids_match_the_plain_rule(batches: list[list[tuple[str, int]]], hashes: str, data: st.DataObject
                                       ) -> None:
    """The hash filter and sorted runs find exactly the ids a set would, also when every id hashes alike
    (a collision), across a pickle (the checkpoint's blob, ids restored apart) and a rolled back batch."""
    import pickle

    import streams.seen_ids as decode_module

    seen = SeenIds(bucket_ms=60_000, keep_ms=120_000)
    expected = reference_first_sightings(batches, 60_000, 120_000)
    real = decode_module.string_hashes
    try:
        if hashes == "colliding":  # every id one hash: only the string comparison can tell them apart
            decode_module.string_hashes = lambda ids: np.zeros(len(ids), dtype=np.uint64)  # type: ignore[assignment]
        for batch, marks in zip(batches, expected, strict=True):
            ids = pa.array([i for i, _ in batch], pa.string())
            times = np.array([t for _, t in batch], dtype=np.int64)
            if data.draw(st.booleans(), label="roll back a failed attempt first"):
                saved = (dict(seen.buckets), seen.max_time_ms, dict(seen.saved))  # as FamilyPipeline._decode
                seen.first_sightings(ids, times)
                seen.buckets, seen.max_time_ms, seen.saved = saved
            if data.draw(st.booleans(), label="restore from a checkpoint first"):
                restored = pickle.loads(pickle.dumps(seen.without_ids()))
                restored.restore_saved(dict(seen.buckets))
                seen = restored
            assert seen.first_sightings(ids, times).tolist() == marks
    finally:
        decode_module.string_hashes = real


def test_seen_ids_stay_bounded() -> None:
    seen = SeenIds(bucket_ms=60_000, keep_ms=120_000)
    for minute in range(60):
        values = [encode_json(SC, event(minute * 60 + s)) for s in range(60)]
        decode(json_batch(values), seen)
    assert len(seen.buckets) <= 4


def test_partitions_travel_with_events() -> None:
    batch = MessageBatch.of([(encode_json(SC, event(i)), i % 3, i, None) for i in range(9)])
    out = decode(batch)
    assert out.partitions.tolist() == [i % 3 for i in range(9)]


def test_none_value_is_dead_lettered() -> None:
    out = decode(MessageBatch.of([(None, 0, 0, None)]))
    assert [d.reason for d in out.dead] == ["undecodable"]


def test_batches_read_ahead_on_parse_threads_give_what_reading_in_turn_gives() -> None:
    # FamilyPipeline.parse_ahead reads the next batches while one is processed; effects must not change:
    # same events, windows, duplicates across batches and dead letters, in the same order.
    settings = Settings(max_message_bytes=4096)
    values = [encode_json(SC, event(i)) for i in range(300)]
    values[17], values[150] = BAD["undecodable"], BAD["future_time"]
    values[200] = values[199]  # a duplicate of the batch before's last event (batches of 100)
    table = records_to_table(SC, [event(i) for i in range(300, 340)])

    def batches() -> list[MessageBatch]:
        out = [MessageBatch.of([(v, 0, o, None) for o, v in enumerate(values[s:s + 100], start=s)])
               for s in range(0, 300, 100)]
        arrow = [(arrow_bytes(table), 0, 300, ARROW_HEADERS), (b"broken", 0, 301, ARROW_HEADERS)]
        return [*out, MessageBatch.of(arrow)]

    def run(pool: ThreadPoolExecutor | None) -> list[tuple]:
        pipeline = pipelines(settings)[SC.topic]
        todo = batches()
        if pool is not None:
            for batch in todo:  # all of them read ahead before the first is processed
                pipeline.parse_ahead(batch, pool)
        outs = [pipeline.process(batch, now_ms=NOW) for batch in todo] + [pipeline.close_all()]
        return [([(name, rows.to_pylist()) for name, rows in o.rows], [(d.offset, d.reason) for d in o.dead],
                 o.events_valid) for o in outs]

    with ThreadPoolExecutor(2) as pool:
        ahead = run(pool)
    in_turn = run(None)
    assert ahead == in_turn
    dead = [d for _, batch_dead, _ in in_turn for d in batch_dead]
    assert dead == [(17, "undecodable"), (150, "future_time"), (200, "duplicate"), (301, "undecodable")]


def test_a_batch_whose_reading_ahead_failed_is_read_again_in_its_turn() -> None:
    pipeline = pipelines(Settings())[SC.topic]
    batch = json_batch([encode_json(SC, event(i)) for i in range(50)])
    batch.reading = Future()
    batch.reading.set_exception(RuntimeError("a reader bug"))  # what a parse thread hands back when it fails
    out = pipeline.process(batch, now_ms=NOW)
    assert out.events_valid == 50 and not out.dead

    again = MessageBatch.of([(encode_json(SC, event(i)), 0, i, None) for i in range(50, 60)])  # the next offsets
    again.reading = Future()
    again.reading.cancel()  # the worker stopping: its parse threads drop what they had not started
    assert pipeline.process(again, now_ms=NOW).events_valid == 10
