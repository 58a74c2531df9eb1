"""`python -m benchmarks.worker_main`: the real `ioc worker` (streams.app.make_app), instrumented.

Identical to `streams.app.run_worker` except for measurement, all of it outside the worker's code:
- a `Probe` (benchmarks.probe): `begin()` when an event batch reaches `StreamWorker.on_batch`, the worker's
  own `events_in` after it, and the rows of `raw_network` the writer has inserted (sampled every
  50 ms by the probe thread: that is "in ClickHouse");
- the wall time the sink thread spends in inserts, per table (the writer's `_insert` is wrapped);
- with IOC_BENCH_PROFILE=FILE, cProfile over the event loop thread (Faust, decode, windows, the
  Kafka client), dumped to FILE at shutdown.
"""

from __future__ import annotations

import time
from typing import Any

import faust

from benchmarks.probe import Probe, ProbeState, profiled
from models.events import FAMILY_BY_TOPIC, NETWORK, SIGNALS_TOPIC
from models.settings import Settings
from streams.app import make_app
from streams.decode import MessageBatch

RAW_TABLE = f"raw_{NETWORK.name}"


def instrument(worker: Any, probe: Probe) -> None:
    on_batch = worker.on_batch

    async def measured_on_batch(topic: str, batch: MessageBatch) -> None:
        # The clock starts at the first event batch: ioc.signals may hold an earlier run's signals (the
        # bench empties only the event topic), which a new group reads first and must not be timed.
        if topic in FAMILY_BY_TOPIC:
            probe.begin()
        await on_batch(topic, batch)
        probe.set_events(worker.stats.events_in)

    worker.on_batch = measured_on_batch  # the agents look the method up per batch

    insert_s: dict[str, float] = {}
    insert = worker.writer._insert

    def timed_insert(batch: Any) -> None:
        started = time.perf_counter()
        insert(batch)
        insert_s[batch.table] = insert_s.get(batch.table, 0.0) + time.perf_counter() - started

    worker.writer._insert = timed_insert
    probe.state.extra["insert_s"] = insert_s


def state_sizes(worker: Any) -> dict[str, float]:
    """The worker's in-memory state: window slots and sketches, keys, recently seen event ids.
    Read from the probe thread while the loop runs: copies of the dicts, sizes only. The incident stage
    (ioc.signals) holds a few incidents per province, not per key: left out."""
    parts = [state for topic, pipeline in list(worker.pipelines.items()) if topic != SIGNALS_TOPIC
             for state in list(pipeline.partitions.values())]
    return {
        "window_state_mb": round(sum(p.engine.state_nbytes() for p in parts) / 2**20, 2),
        "keys": sum(len(p.engine.keys) for p in parts),
        "seen_ids_mb": round(sum(p.seen.nbytes for p in parts) / 2**20, 2),
    }


def main() -> None:
    settings = Settings.from_env()
    with profiled():  # before make_app: the writer thread starts there
        app, worker = make_app(settings)
        last_state = [0.0]

        def sample(state: ProbeState) -> None:
            stats = worker.writer.stats()
            probe.set_sunk(stats.per_table.get(RAW_TABLE, 0))
            state.extra["rows_inserted"] = stats.rows_inserted
            state.extra["buffered_rows"] = stats.buffered_rows
            state.extra["windows_out"] = worker.stats.windows_out
            state.extra["dead_letters"] = worker.stats.dead_letters
            state.extra["late"] = worker.stats.late
            if time.monotonic() - last_state[0] >= 0.5:  # walking the state is cheap, but not every 50 ms
                last_state[0] = time.monotonic()
                state.extra.update(state_sizes(worker))

        probe = Probe.from_env(sample=sample)
        instrument(worker, probe)

        @app.on_partitions_assigned.connect
        async def ready(sender: Any, assigned: Any, **_: Any) -> None:
            if assigned:
                probe.ready()

        probe.start()
        try:
            faust.Worker(app, loglevel="warn", quiet=True, redirect_stdouts=False).execute_from_commandline()
        finally:
            worker.close()
            probe.close()


if __name__ == "__main__":
    main()
