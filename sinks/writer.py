"""The sink: batched, retried Arrow inserts into ClickHouse with a bounded buffer.

Usage (the stream worker calls these from a thread executor; every method is thread-safe):

    writer = ClickHouseWriter(settings.clickhouse_dsn, settings)
    pause = writer.add("agg_filings", arrow_table)   # True: buffer over its bound, pause consuming
    writer.flush()                                   # returns once everything added so far is inserted
    consumer.commit()                                # only now: nothing acknowledged can be lost
    writer.close()                                   # flushes, then closes the client

How data moves: `add` appends to a per-table buffer (no I/O). A background thread inserts a table's
buffer when it reaches `batch_rows` or its oldest rows are `flush_ms` old; `flush` inserts whatever
is left and waits for inserts in flight. Inserts go one at a time through one clickhouse-connect
client (`insert_arrow`: Arrow IPC, the same call for a server over HTTP and for chDB).

Failures (all `SinkError`):
- connection errors and transient server errors are retried with exponential backoff (up to
  `max_retries` per flush); the rows stay buffered, `should_pause` turns true once the buffer holds
  `max_buffer_rows`, and `flush` raises `SinkUnavailable` when retries run out. Nothing is dropped;
- errors no retry can fix but that are not about the rows (authentication, permissions, missing
  table: run the migration) raise `SinkMisconfigured` at once; the rows stay buffered too;
- a batch whose own data the server refuses (a value that does not convert, an unknown column) is
  taken out of the buffer and raised as `SinkRejected` carrying the rows, so the caller can
  dead-letter them instead of retrying forever.

Retries and redelivery can insert a row twice (an insert whose reply was lost did land). The tables
make that harmless: every table is a ReplacingMergeTree keyed on the event id or window + key, so
queries with FINAL or argMax see each row once. We deliberately do not use `insert_deduplication_token`:
on a non-replicated MergeTree the deduplication log is local, best-effort state, while replacing
merges are exact.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from clickhouse_connect.driver.client import Client

from models.settings import Settings
from sinks.client import connect, is_embedded
from sinks.dsn import redact_dsn
from sinks.retry import backoff_delay, classify

log = logging.getLogger(__name__)

# optimize_on_insert (on by default) makes a ReplacingMergeTree deduplicate every inserted block on
# its own, a sort-and-merge pass that halves insert throughput here (~0.5M vs ~1.2M rows/s into
# raw_network, chDB, 100k-row batches). Deduplication across blocks happens at merges and in FINAL
# anyway, which every reader relies on; within-block duplicates only wait for the same merge.
INSERT_SETTINGS = {"optimize_on_insert": "0"}


class SinkError(RuntimeError):
    """Base of the sink's failures."""


class SinkUnavailable(SinkError):
    """ClickHouse stayed unreachable through every retry; the rows are still buffered."""


class SinkMisconfigured(SinkError):
    """A failure no retry fixes and no data causes (credentials, grants, schema); rows still buffered."""


class SinkRejected(SinkError):
    """ClickHouse refused a batch for a reason retrying cannot fix; the rows left the buffer."""

    def __init__(self, table: str, data: pa.Table, cause: BaseException):
        super().__init__(f"{table}: {data.num_rows} rows rejected: {cause}")
        self.table = table
        self.data = data


@dataclass
class _Batch:
    table: str
    data: pa.Table


@dataclass
class WriterStats:
    rows_inserted: int = 0
    inserts: int = 0
    retries: int = 0
    rows_rejected: int = 0
    buffered_rows: int = 0
    insert_seconds: float = 0.0  # summed over successful inserts (mean = insert_seconds / inserts)
    insert_last_s: float = 0.0
    insert_max_s: float = 0.0
    last_error: str = ""
    per_table: dict[str, int] = field(default_factory=dict)


class ClickHouseWriter:
    def __init__(
        self,
        dsn: str,
        settings: Settings,
        *,
        database: str | None = None,
        batch_rows: int | None = None,
        flush_ms: int | None = None,
        max_buffer_rows: int | None = None,
        max_retries: int | None = None,
        background: bool = True,
        backoff_base_s: float = 0.1,
        backoff_max_s: float = 5.0,
        client_factory: Callable[[], Client] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.batch_rows = max(1, batch_rows or settings.sink_batch_rows)
        self.flush_s = (flush_ms if flush_ms is not None else settings.sink_flush_ms) / 1000
        self.max_buffer_rows = max_buffer_rows or settings.sink_max_buffer_rows
        self.max_retries = settings.sink_max_retries if max_retries is None else max_retries
        # Above this a buffered table is cut into several inserts (bounded request size after an outage).
        self.max_insert_rows = 4 * self.batch_rows
        self._dsn = dsn
        self._backoff = (backoff_base_s, backoff_max_s)
        self._sleep = sleep
        self._client_factory = client_factory or (lambda: connect(dsn, settings, database=database))
        self._client: Client | None = None

        self._lock = threading.Lock()  # guards the buffers and counters below (held briefly, no I/O)
        self._io = threading.Lock()  # one insert at a time on the one client
        self._open: dict[str, list[pa.Table]] = {}
        self._open_rows: dict[str, int] = {}
        self._oldest: dict[str, float] = {}
        self._pending: deque[_Batch] = deque()  # cut from the open buffers, not yet inserted
        self._buffered = 0
        self._stats = WriterStats()
        self._deferred: SinkRejected | None = None  # a rejection seen by the background thread

        self._closed = False
        self._resume_at = 0.0  # background attempts wait until then after a failed flush
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="clickhouse-writer", daemon=True)
            self._thread.start()

    # ------------------------------------------------------------------ public API

    @property
    def should_pause(self) -> bool:
        """True while the buffer holds at least `max_buffer_rows`: the caller should stop consuming."""
        return self._buffered >= self.max_buffer_rows

    @property
    def buffered_rows(self) -> int:
        return self._buffered

    def add(self, table: str, data: pa.Table | pa.RecordBatch) -> bool:
        """Buffer rows for `table` (never drops, never blocks on I/O when the background thread runs).

        Returns `should_pause`. Without a background thread a full batch is inserted right here.
        """
        if self._closed:
            raise RuntimeError("writer is closed")
        if isinstance(data, pa.RecordBatch):
            data = pa.Table.from_batches([data])
        if data.num_rows == 0:
            return self.should_pause
        with self._lock:
            self._open.setdefault(table, []).append(data)
            rows = self._open_rows.get(table, 0) + data.num_rows
            self._open_rows[table] = rows
            self._oldest.setdefault(table, time.monotonic())
            self._buffered += data.num_rows
        if rows >= self.batch_rows:
            if self._thread is not None:
                self._wake.set()
            else:
                self._insert_due(force=False, raise_unavailable=False)
        return self.should_pause

    def add_many(self, tables: Iterable[tuple[str, pa.Table]]) -> bool:
        for name, data in tables:
            self.add(name, data)
        return self.should_pause

    def flush(self) -> int:
        """Insert everything buffered before this call; return the rows inserted by this call.

        Blocks until the rows are in ClickHouse (an insert that returned is durable on the server),
        so the caller may commit the consumed offsets afterwards. Raises `SinkUnavailable` (rows kept)
        or `SinkRejected` (rows handed back).
        """
        with self._lock:
            deferred, self._deferred = self._deferred, None
        if deferred is not None:
            raise deferred
        return self._insert_due(force=True, raise_unavailable=True)

    def poll(self) -> int:
        """Insert the tables that are due (size or age); for callers running without the background thread."""
        return self._insert_due(force=False, raise_unavailable=False)

    def stats(self) -> WriterStats:
        with self._lock:
            snapshot = WriterStats(**{**self._stats.__dict__, "per_table": dict(self._stats.per_table)})
            snapshot.buffered_rows = self._buffered
        return snapshot

    def close(self) -> None:
        """Stop the background thread, flush what is left, close the client (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        try:
            self.flush()
        finally:
            with self._io:
                if self._client is not None:
                    self._client.close()
                    self._client = None

    def __enter__(self) -> ClickHouseWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _run(self) -> None:
        tick = max(0.005, min(self.flush_s / 2, 0.1)) if self.flush_s > 0 else 0.05
        while not self._closed:
            self._wake.wait(tick)
            self._wake.clear()
            if self._closed:
                break
            if time.monotonic() < self._resume_at:
                continue
            try:
                self._insert_due(force=False, raise_unavailable=True)
            except SinkRejected as exc:
                log.error("clickhouse sink rejected a batch: %s", exc)
                with self._lock:
                    self._deferred = exc
            except SinkError as exc:  # rows kept; cool down instead of retrying every tick
                log.error("clickhouse sink: %s", exc)
                self._resume_at = time.monotonic() + self._backoff[1]
            except Exception:  # keep the thread alive: flush() will surface persistent problems
                log.exception("clickhouse sink background flush failed")
                self._resume_at = time.monotonic() + self._backoff[1]

    def _cut(self, force: bool) -> None:
        """Move due open buffers to the pending queue (under the buffer lock)."""
        now = time.monotonic()
        with self._lock:
            for table in list(self._open):
                due = force or self._open_rows[table] >= self.batch_rows or now - self._oldest[table] >= self.flush_s
                if not due:
                    continue
                parts = self._open.pop(table)
                del self._open_rows[table], self._oldest[table]
                for data in _combine(parts):
                    for start in range(0, data.num_rows, self.max_insert_rows):
                        self._pending.append(_Batch(table, data.slice(start, self.max_insert_rows)))

    def _insert_due(self, force: bool, raise_unavailable: bool) -> int:
        inserted = 0
        with self._io:
            self._cut(force)
            while self._pending:
                batch = self._pending[0]
                began = time.perf_counter()
                try:
                    self._insert(batch)
                except (SinkUnavailable, SinkMisconfigured):
                    if raise_unavailable:
                        raise
                    return inserted
                except SinkRejected:
                    with self._lock:
                        self._pending.popleft()
                        self._buffered -= batch.data.num_rows
                        self._stats.rows_rejected += batch.data.num_rows
                    raise
                with self._lock:
                    self._pending.popleft()
                    self._buffered -= batch.data.num_rows
                    self._stats.rows_inserted += batch.data.num_rows
                    self._stats.inserts += 1
                    took = time.perf_counter() - began
                    self._stats.insert_seconds += took
                    self._stats.insert_last_s = took
                    self._stats.insert_max_s = max(self._stats.insert_max_s, took)
                    self._stats.per_table[batch.table] = self._stats.per_table.get(batch.table, 0) + batch.data.num_rows
                inserted += batch.data.num_rows
        return inserted

    def _insert(self, batch: _Batch) -> None:
        """One insert with retries (called with the I/O lock held)."""
        attempt = 0
        while True:
            try:
                if self._client is None:
                    self._client = self._client_factory()
                self._client.insert_arrow(batch.table, batch.data, settings=INSERT_SETTINGS)
                return
            except Exception as exc:
                kind = classify(exc)
                self._stats.last_error = f"{type(exc).__name__}: {exc}"
                if kind == "reject":
                    raise SinkRejected(batch.table, batch.data, exc) from exc
                if kind == "fatal":
                    self._reset_client()  # reconnect once the configuration is fixed
                    raise SinkMisconfigured(
                        f"{redact_dsn(self._dsn)}: insert into {batch.table} failed: {exc}; "
                        f"{self._buffered} rows kept in the buffer"
                    ) from exc
                attempt += 1
                self._stats.retries += 1
                self._reset_client()
                if attempt > self.max_retries:
                    raise SinkUnavailable(
                        f"{redact_dsn(self._dsn)}: insert into {batch.table} failed {attempt} times; "
                        f"{self._buffered} rows kept in the buffer"
                    ) from exc
                delay = backoff_delay(attempt, *self._backoff)
                log.warning(
                    "clickhouse insert into %s failed (%s), retry %d/%d in %.2fs",
                    batch.table, type(exc).__name__, attempt, self.max_retries, delay,
                )
                self._sleep(delay)

    def _reset_client(self) -> None:
        """Drop an HTTP client after a connection failure: its pooled sockets may be dead and the
        server may have restarted. A chDB client stays: its engine lives in this process."""
        if self._client is not None and not is_embedded(self._client):
            try:
                self._client.close()
            except Exception:
                log.debug("closing a failed clickhouse client", exc_info=True)
            self._client = None


def _combine(parts: list[pa.Table]) -> list[pa.Table]:
    """Concatenate runs of same-schema tables (zero-copy); a schema change starts a new insert, so
    ClickHouse, not Arrow promotion rules, decides how each column converts."""
    out: list[pa.Table] = []
    run: list[pa.Table] = []
    for part in parts:
        if run and not part.schema.equals(run[0].schema):
            out.append(pa.concat_tables(run))
            run = []
        run.append(part)
    if run:
        out.append(pa.concat_tables(run))
    return out
