"""Where a batch's outputs go: every row to the ClickHouse writer (buffered, retried, batched), dead
letters to `ioc.deadletter`, the emitted windows to `ioc.signals` for the incident stage
(streams.signals), and incidents opened or resolved to `ioc.alerts`, for whoever consumes them."""

from __future__ import annotations

import time
from dataclasses import dataclass

import faust
import orjson

from models.events import ALERTS_TOPIC, ARROW_CONTENT_TYPE, ARROW_CONTENT_TYPE_HEADER, DEADLETTER_TOPIC, SIGNALS_TOPIC
from sinks.writer import ClickHouseWriter
from streams.pipeline import Outputs, deadletter_rows
from streams.signals import signal_message


@dataclass(frozen=True)
class OutputTopics:
    deadletters: faust.TopicT
    signals: faust.TopicT
    alerts: faust.TopicT
    province: str  # the key of every signal: one province, one incident engine

    @classmethod
    def of(cls, app: faust.App, province: str) -> OutputTopics:
        def raw(name: str) -> faust.TopicT:
            return app.topic(name, key_serializer="raw", value_serializer="raw")

        return cls(deadletters=raw(DEADLETTER_TOPIC), signals=raw(SIGNALS_TOPIC), alerts=raw(ALERTS_TOPIC),
                   province=province)


async def send_outputs(out: Outputs, writer: ClickHouseWriter, topics: OutputTopics) -> None:
    now_ms = int(time.time() * 1000)
    rows = list(out.rows)
    if out.dead:
        rows.append(("deadletters", deadletter_rows(out.dead, now_ms)))
    writer.add_many([(table, data) for table, data in rows if data.num_rows])
    for d in out.dead:  # rare: bad input; the original bytes plus why, keyed by source topic
        await topics.deadletters.send(
            key=d.topic.encode(), value=d.payload,
            headers=[("ioc-source-topic", d.topic.encode()), ("ioc-partition", str(d.partition).encode()),
                     ("ioc-offset", str(d.offset).encode()), ("ioc-reason", d.reason.encode()),
                     ("ioc-detail", d.detail.encode()[:500])])
    key = topics.province.encode()
    for signal in out.signals:
        await topics.signals.send(key=key, value=signal_message(signal),
                                  headers=[(ARROW_CONTENT_TYPE_HEADER, ARROW_CONTENT_TYPE)])
    for message in out.alerts:
        await topics.alerts.send(key=str(message["subject"]).encode(), value=orjson.dumps(message))
