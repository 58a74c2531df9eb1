"""Bad input never crashes a worker and is never lost (DESIGN.md s.7): dead-lettered with its reason.

Three levels, fastest first:
- `decode_batch` in-process, hypothesis-driven: every hostile message of the catalogue
  (tests/fuzz_support.py) is rejected with exactly its expected reason, valid events pass untouched
  and in order, and arbitrary bytes never raise (count conservation: each message is an event or a
  dead letter, nothing else);
- the pipelines in-process on a simulated slice mixed with seeded noise: aggregates equal the clean run;
- a real `ioc worker` on Apache Kafka with 10,000 hostile messages mixed into a simulated stream: the
  worker survives, `ioc.deadletter` holds one message per expected dead letter with its reason, the
  aggregates equal the clean run, and ClickHouse counts the rejections per reason.

Regressions for the bugs the fuzzer found are spelled out at the top, one input each.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from conftest import broker_kinds
from fuzz_support import (
    ARROW_DEFECTS,
    ARROW_HEADERS,
    JSON_DEFECTS,
    MAX_MESSAGE_BYTES,
    Hostile,
    RandomDraw,
    StrategyDraw,
    arrow_stream,
    duplicate_of,
    hostile,
    injected_records,
    iso,
    valid_record,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from worker_support import (
    AGG_KEYS,
    WorkerProcess,
    assert_same_tables,
    dump_tables,
    expected_aggregates,
    own_broker,
    query_store,
    wait_all_done,
)

from models.events import DEADLETTER_TOPIC, FAMILIES, FAMILY_BY_TOPIC, SERVICE_CENTER
from models.schema import REASONS, Family, parse_time, records_to_table, table_to_json_messages
from models.settings import Settings, bootstrap_servers
from simulators.generate import generate
from simulators.replay import kafka_partition
from streams.decode import MessageBatch, decode_batch
from streams.pipeline import Outputs, pipelines, process_tables
from streams.seen_ids import SeenIds

T0 = parse_time("2025-07-14T08:00:00Z")
NOW = T0 + 3_600_000
ARROW_LIMIT = 1 << 24
FUZZ = settings(max_examples=100, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def decode(family: Family, batch: MessageBatch, seen: SeenIds | None = None):  # type: ignore[no-untyped-def]
    return decode_batch(family, batch, NOW, 300_000, MAX_MESSAGE_BYTES, ARROW_LIMIT, seen)


def one(family: Family, value: bytes | None, arrow: bool = False):  # type: ignore[no-untyped-def]
    return decode(family, MessageBatch.of([(value, 0, 0, ARROW_HEADERS if arrow else None)]))


# ---------------------------------------------------------------- regressions: one input per bug found


def test_a_bare_null_message_first_in_a_batch_is_rejected_not_a_segfault() -> None:
    """pyarrow's JSON reader dereferenced a null pointer on a leading `null` (apache/arrow#47409)."""
    for value in (b"null", b" null", b"null null", b"\nnull"):
        out = one(SERVICE_CENTER, value)
        assert out.events.num_rows == 0 and len(out.dead) == 1, value
    good = orjson.dumps(valid_record(RandomDraw(1), SERVICE_CENTER, "g", T0))
    out = decode(SERVICE_CENTER, MessageBatch.of([(b"null", 0, 0, None), (good, 0, 1, None)]))
    assert [d.offset for d in out.dead] == [0] and out.offsets.tolist() == [1]


def test_an_integer_beyond_2_53_is_out_of_range_not_an_exception() -> None:
    record = valid_record(RandomDraw(2), SERVICE_CENTER, "i", T0) | {"counter_id": 2**53 + 1}
    assert [d.reason for d in one(SERVICE_CENTER, orjson.dumps(record)).dead] == ["out_of_range"]


def test_json_strings_that_are_not_utf8_are_undecodable() -> None:
    record = valid_record(RandomDraw(3), SERVICE_CENTER, "u", T0) | {"center_id": "PLACEHOLDER"}
    value = orjson.dumps(record).replace(b"PLACEHOLDER", b"Q\xff\xfeN")
    assert [d.reason for d in one(SERVICE_CENTER, value).dead] == ["undecodable"]


def arrow_events(n: int) -> bytes:
    draw = RandomDraw(4)
    return arrow_stream(records_to_table(SERVICE_CENTER, [valid_record(draw, SERVICE_CENTER, f"a{i}", T0 + i)
                                                          for i in range(n)]))


def test_an_arrow_stream_cut_at_a_batch_boundary_is_rejected_whole() -> None:
    """The IPC reader returns the batches before a cut without error: the rest vanished silently."""
    two = pa.BufferOutputStream()
    table = pa.ipc.open_stream(arrow_events(4)).read_all()
    with pa.ipc.new_stream(two, table.schema) as writer:
        writer.write_table(table.slice(0, 2))
        writer.write_table(table.slice(2))
    stream = two.getvalue().to_pybytes()
    for cut in range(len(stream) - 1):  # every prefix, including those ending at a message boundary
        out = one(SERVICE_CENTER, stream[:cut], arrow=True)
        assert out.events.num_rows == 0 and [d.reason for d in out.dead] == ["undecodable"], cut


def test_damaged_arrow_metadata_is_undecodable_not_an_exception() -> None:
    """A field name that is not UTF-8 raised UnicodeDecodeError, a repeated one KeyError."""
    stream = arrow_events(2)
    for damaged in (stream.replace(b"center_id", b"cent\xffr_id"), stream.replace(b"ticket_id", b"center_id")):
        assert [d.reason for d in one(SERVICE_CENTER, damaged, arrow=True).dead] == ["undecodable"]


def test_arrow_columns_of_another_kind_are_wrong_type_as_in_json() -> None:
    """Casting accepted what JSON rejects: an int64 event_time read as ms since 1970, ints as strings."""
    table = pa.ipc.open_stream(arrow_events(3)).read_all()
    for name, column in (("event_time", pa.array([T0] * 3)), ("center_id", pa.array([7] * 3)),
                         ("counter_id", pa.array(["1"] * 3))):
        damaged = arrow_stream(table.set_column(table.schema.get_field_index(name), name, column))
        [dead] = one(SERVICE_CENTER, damaged, arrow=True).dead
        assert (dead.reason, dead.detail) == ("wrong_type", name)
    compatible = table.set_column(1, "event_time", pc.cast(table.column("event_time"), pa.timestamp("us")))
    compatible = compatible.set_column(3, "kind", table.column("kind").dictionary_encode())
    assert one(SERVICE_CENTER, arrow_stream(compatible), arrow=True).events.num_rows == 3


def test_a_decoder_failure_costs_the_poison_message_not_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception escaping the decoder made Faust restart the agent and the whole fetch vanished
    (its offsets passed over by the next batch). Whatever the next decoder bug is, the pipeline now
    dead-letters only the messages it fails on, after undoing the ids the failed attempt recorded."""
    import streams.pipeline

    real = streams.pipeline.decode_batch

    def buggy(family: Family, batch: MessageBatch, *args):  # type: ignore[no-untyped-def]
        decoded = real(family, batch, *args)  # records the batch's ids as seen, then fails
        if any(v is not None and b"POISON" in v for v in batch.values):
            raise RuntimeError("a decoder bug")
        return decoded

    monkeypatch.setattr(streams.pipeline, "decode_batch", buggy)
    draw = RandomDraw(8)
    values = [orjson.dumps(valid_record(draw, SERVICE_CENTER, f"p{i}", T0 + i * 1000)) for i in range(50)]
    values[17] = orjson.dumps(valid_record(draw, SERVICE_CENTER, "POISON", T0 + 17_000))
    pipeline = pipelines(Settings())[SERVICE_CENTER.topic]
    out = pipeline.process(MessageBatch.of([(v, 2, 100 + i, None) for i, v in enumerate(values)]), now_ms=NOW)
    assert out.events_valid == 49 and [(d.offset, d.reason) for d in out.dead] == [(117, "undecodable")]
    assert out.dead[0].detail.startswith("decoder error: RuntimeError") and out.dead[0].payload == values[17]
    assert pipeline.partitions[2].next_offset == 150


# ---------------------------------------------------------------- decode_batch, hypothesis-driven


@dataclass
class Item:
    """One message of a generated stream and what decoding it must give."""

    value: bytes | None
    arrow: bool
    ids: tuple[str, ...] = ()  # valid events, in order
    reasons: tuple[str, ...] = ()  # expected dead letters, in order


def draw_stream(draw: StrategyDraw, family: Family, size: int) -> list[Item]:
    items: list[Item] = []
    valid_json: list[bytes] = []
    for n in range(size):
        what = draw.choice(["valid", "valid_arrow", "hostile", "hostile", "hostile", "duplicate"])
        time_ms = T0 + n * 1000
        if what == "duplicate" and valid_json:
            items.append(Item(draw.choice(valid_json), False, reasons=("duplicate",)))
        elif what == "valid_arrow":
            rows = [valid_record(draw, family, f"v{n}-{i}", time_ms) for i in range(draw.integer(1, 4))]
            ids = tuple(r["event_id"] for r in rows)
            items.append(Item(arrow_stream(records_to_table(family, rows)), True, ids=ids))
        elif what == "hostile":
            h = hostile(draw, family, n, time_ms, NOW)
            items.append(Item(h.value, h.arrow, reasons=h.reasons))
        else:
            message = orjson.dumps(valid_record(draw, family, f"v{n}", time_ms))
            valid_json.append(message)
            items.append(Item(message, False, ids=(f"v{n}",)))
    return items


@FUZZ
@given(family=st.sampled_from(list(FAMILIES.values())), data=st.data())
def test_every_hostile_message_is_dead_lettered_with_its_reason(family: Family, data: st.DataObject) -> None:
    draw = StrategyDraw(data)
    items = draw_stream(draw, family, draw.integer(1, 30))
    cuts = sorted({0, len(items), *(draw.integer(0, len(items)) for _ in range(draw.integer(0, 2)))})
    seen = SeenIds()  # shared by the fetches, as in a partition's state
    dead, ids, offsets = [], [], []
    for lo, hi in itertools.pairwise(cuts):
        batch = MessageBatch.of([(items[i].value, 0, i, ARROW_HEADERS if items[i].arrow else None)
                                 for i in range(lo, hi)])
        out = decode(family, batch, seen)
        out.events.validate(full=True)
        dead += [(d.offset, d.reason) for d in out.dead]
        ids += out.events.column("event_id").to_pylist()
        offsets += out.offsets.tolist()
    assert sorted(dead) == sorted((i, r) for i, item in enumerate(items) for r in item.reasons)
    assert ids == [x for item in items for x in item.ids]  # valid events untouched, in order
    assert offsets == [i for i, item in enumerate(items) for _ in item.ids]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**66), 2**66) | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["event_id", "event_time", "kind", "center_id", "node_id", "wait_s", "x"]), inner,
        max_size=6),
    max_leaves=12)


def arbitrary_message(family: Family) -> st.SearchStrategy[tuple[bytes | None, bool]]:
    """Anything a hostile or broken producer could send, JSON-marked or Arrow-marked."""
    raw = st.one_of(st.none(), st.binary(max_size=300),
                    json_values.map(lambda v: orjson.dumps(v, option=orjson.OPT_NON_STR_KEYS)
                                    if _dumpable(v) else b"{}"),
                    st.sampled_from([b"null", b"NaN", b"{}", b"[]", b'{"event_id":null}', b"\xef\xbb\xbf{}"]))
    return st.tuples(raw, st.booleans())


def _dumpable(value: object) -> bool:
    try:
        orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return False
    return True


@FUZZ
@given(family=st.sampled_from(list(FAMILIES.values())), data=st.data())
def test_arbitrary_bytes_are_an_event_or_a_dead_letter(family: Family, data: st.DataObject) -> None:
    """Count conservation on input no catalogue foresaw: nothing raises, nothing disappears. A JSON
    message is one event or one dead letter; an Arrow message is rejected whole (one dead letter with
    its original bytes) or row by row (events plus one dead letter per bad row)."""
    messages = data.draw(st.lists(arbitrary_message(family), min_size=1, max_size=25))
    flips = data.draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6))
    stream = bytearray(arrow_events(3))  # and a valid Arrow stream with bytes overwritten
    for pos, byte in flips:
        stream[pos % len(stream)] = byte
    messages.append((bytes(stream), True))
    out = decode(family, MessageBatch.of([(v, 0, i, ARROW_HEADERS if arrow else None)
                                          for i, (v, arrow) in enumerate(messages)]), SeenIds())
    out.events.validate(full=True)  # whatever passed holds valid data (UTF-8, offsets)
    assert all(d.reason in REASONS for d in out.dead)
    events = Counter(out.offsets.tolist())
    for i, (value, arrow) in enumerate(messages):
        dead = [d for d in out.dead if d.offset == i]
        if not arrow:
            assert events[i] + len(dead) == 1, (i, value)
        elif any(d.payload == (value or b"") for d in dead):
            assert len(dead) == 1 and events[i] == 0, (i, dead)
        else:
            assert all(pa.ipc.open_stream(d.payload).read_all().num_rows == 1 for d in dead)


# ---------------------------------------------------------------- a simulated stream with seeded noise


@dataclass
class Message:
    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    time_ms: int
    hostile: Hostile | None = None


def valid_messages(tables: dict[str, pa.Table]) -> list[Message]:
    """The clean stream as JSON messages keyed by entity, all topics merged in event-time order."""
    out = []
    for name, table in tables.items():
        family = FAMILIES[name]
        times = pc.cast(table.column("event_time"), pa.int64()).to_pylist()
        keys = table.column(family.key_field).to_pylist()
        for value, key, t in zip(table_to_json_messages(family, table), keys, times, strict=True):
            out.append(Message(family.topic, key.encode(), value, [], t))
    out.sort(key=lambda m: m.time_ms)
    return out


def noisy_stream(valid: list[Message], hostile_count: int, seed: int, now_ms: int) -> list[Message]:
    """The clean stream with `hostile_count` hostile messages mixed in at seeded positions; a tenth
    of them are second deliveries of a valid message (same key, so the same partition) shortly after it."""
    draw = RandomDraw(seed)
    after: dict[int, list[Message]] = {}
    for n in range(hostile_count):
        if n % 10 == 9:
            j = draw.integer(0, len(valid) - 1)
            original = valid[j]
            slot = min(len(valid) - 1, j + draw.integer(0, 20))
            family = FAMILY_BY_TOPIC[original.topic]
            h = duplicate_of(family, original.value or b"", original.key)
        else:
            slot = draw.integer(0, len(valid) - 1)
            family = draw.choice(list(FAMILIES.values()))
            h = hostile(draw, family, n, valid[slot].time_ms, now_ms)
        after.setdefault(slot, []).append(Message(family.topic, h.key, h.value, h.headers, valid[slot].time_ms, h))
    out = []
    for i, message in enumerate(valid):
        out.append(message)
        out.extend(after.get(i, []))
    return out


def hostile_of(stream: list[Message]) -> list[Hostile]:
    return [m.hostile for m in stream if m.hostile is not None]


@pytest.fixture(scope="module", params=broker_kinds())
def broker_kind(request: pytest.FixtureRequest) -> str:
    """The session's broker kinds (IOC_TEST_BROKER) without conftest's shared `broker`: every test
    here starts its own (empty topics), so a shared one would only cost a broker start."""
    return str(request.param)


LOCAL_0800 = 1752454800000  # 2025-07-14T01:00Z = 08:00 in Vietnam


@pytest.fixture(scope="module")
def clean() -> dict[str, pa.Table]:
    """08:00-09:00 local of tickets and filings, 08:00-08:30 of an eighth of the network's nodes, plus
    a few valid events whose keys and texts are SQL injection attempts (stored verbatim, see below)."""
    tables = {}
    for name, table in generate("default", date(2025, 7, 14), 10, seed=11).items():
        t = pc.cast(table.column("event_time"), pa.int64()).to_numpy()
        keep = (t >= LOCAL_0800) & (t < LOCAL_0800 + (30 if name == "network" else 60) * 60_000)
        if name == "network":
            keep &= np.array([sum(n.encode()) % 8 == 0 for n in table.column("node_id").to_pylist()])
        hostile_keys = records_to_table(FAMILIES[name], injected_records(FAMILIES[name], LOCAL_0800 + 600_000))
        table = pa.concat_tables([table.filter(pa.array(keep)), hostile_keys])
        tables[name] = table.take(pc.sort_indices(table, [("event_time", "ascending")]))
    return tables


@pytest.fixture(scope="module")
def clean_expected(clean: dict[str, pa.Table]) -> dict[str, pa.Table]:
    return expected_aggregates(process_tables(clean, Settings(), partitions=4))


def fetches(stream: list[Message], partitions: int, seed: int) -> Iterator[tuple[str, MessageBatch]]:
    """The stream as a worker fetches it: per topic-partition in production order, in batches of random size."""
    rng = RandomDraw(seed).rng
    logs: dict[tuple[str, int], list[Message]] = {}
    for m in stream:
        p = kafka_partition(m.key, partitions) if m.key is not None else rng.randrange(partitions)
        logs.setdefault((m.topic, p), []).append(m)
    cursors = dict.fromkeys(logs, 0)
    while cursors:
        (topic, p) = rng.choice(sorted(cursors))
        start = cursors[(topic, p)]
        chunk = logs[(topic, p)][start:start + rng.randint(1, 700)]
        yield topic, MessageBatch.of([(m.value, p, start + i, m.headers) for i, m in enumerate(chunk)])
        cursors[(topic, p)] = start + len(chunk)
        if cursors[(topic, p)] >= len(logs[(topic, p)]):
            del cursors[(topic, p)]


def test_noise_in_a_simulated_stream_changes_no_aggregate(clean, clean_expected) -> None:  # type: ignore[no-untyped-def]
    """In-process (no broker): 3,000 hostile messages mixed into the clean stream, fetched in random
    batches; the pipelines reject exactly them and produce the clean run's windows."""
    stream = noisy_stream(valid_messages(clean), 3000, seed=5, now_ms=int(time.time() * 1000))
    by_topic = pipelines(Settings())
    outputs: list[Outputs] = []
    for topic, batch in fetches(stream, 4, seed=6):
        outputs.append(by_topic[topic].process(batch))
    outputs += [p.close_all() for p in by_topic.values()]
    reasons = Counter(d.reason for out in outputs for d in out.dead)
    assert reasons == Counter(r for h in hostile_of(stream) for r in h.reasons)
    assert sum(out.events_valid for out in outputs) == sum(t.num_rows for t in clean.values())
    got = expected_aggregates(outputs)
    for name in AGG_KEYS:
        if name in clean_expected:
            assert_same_tables(got[name], clean_expected[name], name)


def test_the_catalogue_covers_the_issue() -> None:
    """The issue's list of hostile inputs, each a defect of the catalogue (names in fuzz_support)."""
    issue = {"invalid JSON": "invalid_json_prefix", "wrong types": "wrong_type", "missing fields": "missing_field",
             "unknown enums": "unknown_enum", "huge strings": "huge_string", "NaN/inf": "nan_inf",
             "negative durations": "out_of_range", "far-future timestamps": "far_future",
             "ancient timestamps": "ancient", "broken Arrow batches": "arrow_truncated",
             "Arrow batches with wrong column types": "arrow_wrong_column_type"}
    assert set(issue.values()) <= {*JSON_DEFECTS, *ARROW_DEFECTS}
    draw = RandomDraw(9)
    durations = [hostile(draw, SERVICE_CENTER, i, T0, NOW, "out_of_range") for i in range(200)]
    assert any(b'"wait_s":-' in (h.value or b"") for h in durations)  # negative durations among them
    assert iso(-62_135_596_800_000) == "0001-01-01T00:00:00.000Z"


# ---------------------------------------------------------------- 10,000 hostile messages through a real worker

HOSTILE_MESSAGES = 10_000


def read_topic(url: str, topic: str, expected: int, quiet_s: float = 5.0, timeout_s: float = 180) -> list:  # type: ignore[type-arg]
    """Every message of a topic: read until `expected` arrived and then `quiet_s` without more."""
    consumer = Consumer({"bootstrap.servers": bootstrap_servers(url), "group.id": f"reader-{uuid.uuid4().hex[:6]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    parts = consumer.list_topics(timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, 0) for p in parts])
    out: list = []  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout_s
    last = time.monotonic()
    while time.monotonic() < deadline and (len(out) < expected or time.monotonic() - last < quiet_s):
        batch = [m for m in consumer.consume(1000, timeout=0.5) if not m.error()]
        if batch:
            out += batch
            last = time.monotonic()
    consumer.close()
    return out


def produce(url: str, stream: list[Message]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap_servers(url), "partitioner": "murmur2_random",
                         "linger.ms": 20, "message.max.bytes": 8 * 1024 * 1024})
    for m in stream:
        while True:
            try:
                producer.produce(m.topic, key=m.key, value=m.value, headers=m.headers)
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(60) == 0


@pytest.mark.slow
@pytest.mark.broker
def test_ten_thousand_hostile_messages_through_a_worker(broker_kind: str, clean, clean_expected,
                                                        tmp_path: Path) -> None:
    b = own_broker(broker_kind, tmp_path)
    dsn = f"chdb://{tmp_path / 'store.chdb'}"
    worker = WorkerProcess(tmp_path / "w", b.url, dsn, f"fz-{uuid.uuid4().hex[:8]}").start()
    try:
        stream = noisy_stream(valid_messages(clean), HOSTILE_MESSAGES, seed=20250714,
                              now_ms=int(time.time() * 1000))
        bad = hostile_of(stream)
        letters = [r for h in bad for r in h.reasons]
        worker.wait_ready()
        produce(b.url, stream)
        wait_all_done([worker], sum(t.num_rows for t in clean.values()) + len(letters), timeout_s=400)
        stats = worker.stats()
        dead_topic = read_topic(b.url, DEADLETTER_TOPIC, len(letters))
    finally:
        worker.stop()
        b.stop()
    assert stats["dead_letters"] == len(letters) and stats["events_valid"] == sum(t.num_rows for t in clean.values())
    # Kafka: one dead letter per expected rejection, with its reason and source, the original bytes for JSON.
    assert len(dead_topic) == len(letters)
    headers = [dict(m.headers()) for m in dead_topic]
    assert Counter(h["ioc-reason"].decode() for h in headers) == Counter(letters)
    assert Counter(h["ioc-source-topic"].decode() for h in headers) == Counter(
        h.family.topic for h in bad for _ in h.reasons)
    assert not Counter(h.value or b"" for h in bad if not h.arrow) - Counter(m.value() or b"" for m in dead_topic)
    # ClickHouse: the valid stream's aggregates exactly, each event once, rejections counted per reason.
    stored = dump_tables(dsn, [*AGG_KEYS, *(f"raw_{n}" for n in FAMILIES)], tmp_path / "dump")
    for name in AGG_KEYS:
        if name in clean_expected:
            assert_same_tables(stored[name], clean_expected[name], name)
    for name, table in clean.items():
        assert sorted(stored[f"raw_{name}"].column("event_id").to_pylist()) == sorted(
            table.column("event_id").to_pylist())
    for family in FAMILIES.values():  # SQL injection attempts among the keys: data, stored verbatim
        keys = set(stored[f"agg_{family.name}"].column(family.key_field).to_pylist())
        assert {r[family.key_field] for r in injected_records(family, 0)} <= keys
    counts = query_store(dsn, "SELECT reason, sum(letters) AS n FROM deadletter_counts GROUP BY reason")
    # `deadletters` is idempotent on the message's position (topic, partition, offset), so the bad rows
    # of one Arrow batch count once there (they all carry the same defect here); Kafka has each row.
    per_message = Counter(h.reasons[0] for h in bad)
    assert dict(zip(counts.column("reason").to_pylist(), counts.column("n").to_pylist(), strict=True)) == per_message
