"""The duplicate check: event ids seen recently, per partition, and the lookups that make it O(batch).

Kafka delivers at least once and producers retry, so the same event can arrive twice; the worker
counts it once (the exactly-once effect of DESIGN.md) by remembering the ids of the last minutes
of event time (`SeenIds`). A batch is checked against them by hash: each bucket of ids keeps a bit
filter that most new ids fail and sorted runs of hashes for the rest, whose strings are then compared,
so a colliding hash can cost time but never a false duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from streams.arrays import HashFilter, string_hashes, unique_sorted


@dataclass
class SeenIds:
    """Event ids seen recently, bucketed by event time so memory stays bounded.

    An id older than the oldest kept bucket cannot be told from a new one, but such an event is
    beyond the allowed lateness anyway: it goes to the late table, which is keyed by event id.

    Checkpoints store only the ids added since the last one (`unsaved`, then `mark_saved`): a
    bucket only grows, so `saved[b]` ids of it are already stored. Whole buckets every time made
    the checkpoint insert grow with minutes of ids (0.15 -> 1.0 s at 22k events/s).
    """

    bucket_ms: int = 60_000
    keep_ms: int = 300_000
    buckets: dict[int, pa.Array] = field(default_factory=dict)
    max_time_ms: int = 0
    saved: dict[int, int] = field(default_factory=dict)  # bucket -> how many of its ids are in a checkpoint
    # Per bucket, lookups derived from its ids (`_sync_index` rebuilds what is missing or stale),
    # never pickled.
    index: dict[int, HashIndex] = field(default_factory=dict, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "index"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Checkpoints written before the ids went apart hold ids and no `saved`: all of them unsaved.
        self.__dict__.update({"saved": {}} | state | {"index": {}})

    @property
    def oldest_bucket(self) -> int:
        """Buckets before this one are forgotten."""
        return (self.max_time_ms - self.keep_ms) // self.bucket_ms

    def without_ids(self) -> SeenIds:
        """The settings and clock alone: what a checkpoint's state blob keeps (the ids go apart)."""
        return SeenIds(self.bucket_ms, self.keep_ms, {}, self.max_time_ms)

    def unsaved(self) -> dict[int, pa.Array]:
        """{bucket: ids} added since the last `mark_saved`."""
        return {b: ids.slice(self.saved.get(b, 0)) for b, ids in self.buckets.items()
                if len(ids) > self.saved.get(b, 0)}

    def mark_saved(self, upto: dict[int, int]) -> None:
        """The first `upto[b]` ids of bucket b are stored (lengths taken when the delta was cut)."""
        for b, n in upto.items():
            if b in self.buckets:
                self.saved[b] = max(self.saved.get(b, 0), n)

    def restore_saved(self, bucket_ids: dict[int, pa.Array]) -> None:
        """Ids loaded from the checkpoints of this state: known, and already stored."""
        for b, ids in bucket_ids.items():
            if b >= self.oldest_bucket and len(ids):
                old = self.buckets.get(b)
                self.buckets[b] = pa.concat_arrays([old, ids]) if old is not None else ids
                self.saved[b] = len(self.buckets[b])

    def first_sightings(self, ids: pa.Array, times_ms: np.ndarray) -> np.ndarray:
        """Mask of ids not seen before (in earlier batches or earlier in this one); records them."""
        n = len(ids)
        if n == 0:
            return np.zeros(0, dtype=bool)
        hashes = string_hashes(ids)
        fresh = np.ones(n, dtype=bool)
        if self.buckets:
            # A bit filter over the kept ids' hashes, then the few ids it passes looked up in the
            # buckets' sorted hashes and compared as strings: O(batch) per batch. Probing the kept ids
            # with `pc.index_in` hashed all of them for every batch, i.e. minutes of a partition's ids
            # per 10k-event fetch: half the Arrow path's CPU.
            self._sync_index()
            passed = np.zeros(n, dtype=bool)
            known = []
            for b, index in self.index.items():
                maybe = index.filter.may_contain(hashes)
                if maybe.any():
                    passed |= maybe
                    known.append(self.buckets[b].take(pa.array(index.rows_of(hashes[maybe]))))
            if known:
                maybe = np.flatnonzero(passed)
                value_set = pa.chunked_array(known, type=pa.string()).combine_chunks()
                dup = pc.is_in(ids.take(pa.array(maybe)), value_set=value_set).to_numpy(zero_copy_only=False)
                fresh[maybe[dup]] = False
        fresh &= first_occurrences(ids, hashes)  # within the batch, only the first occurrence counts
        self._remember(ids.filter(pa.array(fresh)), times_ms[fresh], hashes[fresh])
        return fresh

    @property
    def nbytes(self) -> int:
        """Bytes held: the ids, their sorted hashes and filters."""
        return (sum(ids.nbytes for ids in self.buckets.values())
                + sum(index.nbytes for index in self.index.values()))

    def _sync_index(self) -> None:
        """Bring the derived lookups up to the ids: after a restore, a rolled back batch
        (streams.pipeline) or forgotten buckets."""
        for b in [b for b in self.index if b not in self.buckets]:
            del self.index[b]
        for b, ids in self.buckets.items():
            index = self.index.get(b)
            if index is None or index.count > len(ids):
                index = self.index[b] = HashIndex.empty()
            if index.count < len(ids):
                index.add(string_hashes(ids.slice(index.count)))

    def _remember(self, ids: pa.Array, times_ms: np.ndarray, hashes: np.ndarray) -> None:
        if len(ids) == 0:
            return
        self.max_time_ms = max(self.max_time_ms, int(times_ms.max()))
        bucket_of = times_ms // self.bucket_ms
        for b in unique_sorted(bucket_of):
            mine = bucket_of == b
            old = self.buckets.get(int(b))
            index = self.index.get(int(b))
            if (index.count if index else 0) == (len(old) if old is not None else 0):
                # in step with the ids: extend the lookups now, with the hashes at hand
                self.index.setdefault(int(b), HashIndex.empty()).add(hashes[mine])
            new = ids.filter(pa.array(mine))
            self.buckets[int(b)] = pa.concat_arrays([old, new]) if old is not None else new
        for b in [b for b in self.buckets if b < self.oldest_bucket]:
            del self.buckets[b]
            self.saved.pop(b, None)


def first_occurrences(ids: pa.Array, hashes: np.ndarray) -> np.ndarray:
    """Mask of the first occurrence of each distinct id, found by sorting the hashes; only when two
    ids of one hash differ as strings (a collision) does it fall back to a dictionary of the strings."""
    n = len(ids)
    order = np.argsort(hashes)
    sorted_hashes = hashes[order]
    same = sorted_hashes[1:] == sorted_hashes[:-1]
    once = np.ones(n, dtype=bool)
    if not same.any():
        return once
    run = np.cumsum(np.concatenate(([True], ~same))) - 1  # per sorted position: its run of equal hashes
    repeated = np.zeros(n, dtype=bool)
    repeated[1:] |= same
    repeated[:-1] |= same
    members, runs = order[repeated], run[repeated]
    first = np.full(int(run[-1]) + 1, n)
    np.minimum.at(first, runs, members)  # the earliest message of each run
    later = members[members != first[runs]]
    earliest = first[runs][members != first[runs]]
    if not pc.all(pc.equal(ids.take(pa.array(later)), ids.take(pa.array(earliest)))).as_py():
        codes = pc.dictionary_encode(ids).indices.to_numpy(zero_copy_only=False)
        _, first_rows = np.unique(codes, return_index=True)
        once[:] = False
        once[first_rows] = True
        return once
    once[later] = False
    return once


@dataclass
class HashIndex:
    """A bucket's id hashes: a filter that most new ids fail, and sorted runs of (hash, position among
    the bucket's ids) to find the ids the rest must be compared with.

    Runs, not one sorted array: merging every batch into one cost O(bucket) a batch (a memmove and a
    search of the whole batch). Runs merge like a binary counter, so a hash is merged O(log) times."""

    filter: HashFilter
    runs: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # (uint64 ascending, int32)
    count: int = 0  # ids of the bucket covered (its first `count`)

    @classmethod
    def empty(cls) -> HashIndex:
        return cls(HashFilter.sized(1024))

    @property
    def nbytes(self) -> int:
        return self.filter.words.nbytes + sum(h.nbytes + r.nbytes for h, r in self.runs)

    def add(self, hashes: np.ndarray) -> None:
        """The bucket's next ids, by hash."""
        order = np.argsort(hashes)
        self.runs.append((hashes[order], (order + self.count).astype(np.int32)))  # a bucket holds < 2**31 ids
        while len(self.runs) > 1 and len(self.runs[-2][0]) <= 2 * len(self.runs[-1][0]):
            (h1, r1), (h2, r2) = self.runs.pop(), self.runs.pop()
            h, r = np.concatenate((h2, h1)), np.concatenate((r2, r1))
            merged = np.argsort(h)
            self.runs.append((h[merged], r[merged]))
        self.count += len(hashes)
        if self.count > self.filter.capacity:  # doubling: O(1) a hash over the bucket's life
            self.filter = HashFilter.sized(2 * self.count)
            for h, _ in self.runs:
                self.filter.add(h)
        else:
            self.filter.add(hashes)

    def rows_of(self, hashes: np.ndarray) -> np.ndarray:
        """Bucket positions of every id whose hash is one of `hashes`."""
        found = []
        for run, rows in self.runs:
            lo = np.searchsorted(run, hashes, side="left")
            spans = np.searchsorted(run, hashes, side="right") - lo  # mostly 0 (filter false positives) or 1
            first = np.repeat(lo - np.cumsum(spans) + spans, spans)
            found.append(rows[first + np.arange(int(spans.sum()))])
        return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
