"""Limit (e): a plain aiokafka consumer, the client our worker's Faust transport runs on, doing nothing.

It joins a group, fetches with `getmany` (aiokafka's fetcher, as Faust's consumer thread does for our
worker) and only counts the messages it gets: no decoding, no windows, no ClickHouse. Its rate is what
a plain aiokafka consumer costs per message on this machine, so the worker's JSON rate divided by it
is the share of that limit the worker reaches. It is plain on purpose: aiokafka builds a
`ConsumerRecord` per message here, which the worker skips (`streams.transport.lean_records`).

With IOC_BENCH_PARSE_JSON=1 it also reads each partition's fetch into an Arrow table with the worker's
own JSON reader (`models.schema.decode_json_batch`), in the loop: the least a JSON consumer does before
anything useful (limit (f)).

Run as `python -m benchmarks.baselines.plain_consumer` with IOC_BROKER_URL, IOC_APP_ID and
IOC_BENCH_STATS (the progress probe, benchmarks.probe).
"""

from __future__ import annotations

import asyncio
import os
import signal

from aiokafka import AIOKafkaConsumer

from benchmarks.probe import Probe, profiled
from models.events import NETWORK
from models.schema import decode_json_batch
from models.settings import bootstrap_servers


async def consume(probe: Probe, parse_json: bool) -> None:
    consumer = AIOKafkaConsumer(NETWORK.topic, bootstrap_servers=bootstrap_servers(os.environ["IOC_BROKER_URL"]),
                                group_id=os.environ["IOC_APP_ID"], auto_offset_reset="earliest",
                                enable_auto_commit=False, fetch_max_wait_ms=100)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=200)
            if consumer.assignment():
                probe.ready()
            n = sum(len(records) for records in batches.values())
            if parse_json:
                for records in batches.values():
                    decode_json_batch(NETWORK, [r.value for r in records])
            if n:
                probe.begin()
                probe.add(n)
    finally:
        await consumer.stop()


def main() -> None:
    probe = Probe.from_env().start()
    try:
        with profiled():
            asyncio.run(consume(probe, os.environ.get("IOC_BENCH_PARSE_JSON") == "1"))
    finally:
        probe.close()


if __name__ == "__main__":
    main()
