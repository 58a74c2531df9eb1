"""Where a batch's outputs go: every row to the ClickHouse writer (buffered, retried, batched),
dead letters and alerts also to their Kafka topics, for whoever consumes them downstream."""

from __future__ import annotations

import time
from dataclasses import dataclass

import faust
import orjson

from models.events import ALERTS_TOPIC, DEADLETTER_TOPIC
from sinks.writer import ClickHouseWriter
from streams.pipeline import Outputs, deadletter_rows


@dataclass(frozen=True)
class OutputTopics:
    deadletters: faust.TopicT
    alerts: faust.TopicT

    @classmethod
    def of(cls, app: faust.App) -> OutputTopics:
        return cls(deadletters=app.topic(DEADLETTER_TOPIC, key_serializer="raw", value_serializer="raw"),
                   alerts=app.topic(ALERTS_TOPIC, key_serializer="raw", value_serializer="raw"))


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
    if out.alerts is not None:
        for alert in out.alerts.to_pylist():
            alert["event_time"] = alert["event_time"].isoformat()
            await topics.alerts.send(key=alert["subject"].encode(), value=orjson.dumps(alert))
