"""Window state: the per-(window, key) arrays and sketch buffers a `WindowEngine` accumulates into.

Per open window a slot of dense per-key arrays (counts, sums, min, max) plus a sketch buffer; slots
are reused once the watermark W passes end + lateness, and capacity is given back once at most a
quarter of the slots is in use (a batch spanning a day of windows does not pin a day of slots).
Memory is O(open windows x keys); the `KeyTable` maps string keys to the dense codes.
A checkpoint holds only what is live (`_Slots.snapshot`; see "Checkpoints" in `streams.window_engine`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from streams import sketch as sk
from streams.sessions import narrow, pack_sorted, unpack_sorted
from streams.window_spec import Count, Max, Min, Quantile, SketchMap, Sum, WindowSpec

NO_TIME = -(1 << 62)  # "no event yet": far below any real time, far from int64 overflow


@dataclass(frozen=True)
class _Plan:
    """What state each input needs, derived once from the spec."""

    masks: tuple[str, ...]  # mask inputs counted
    numbers: tuple[str, ...]  # number inputs with count/sum/min/max state
    sums: frozenset[str]
    mins: frozenset[str]
    maxs: frozenset[str]
    sketches: tuple[str, ...]
    quantiles: Mapping[str, list[float]]  # per sketched input, the quantiles to report

    @classmethod
    def of(cls, spec: WindowSpec) -> _Plan:
        def used(kind: type) -> set[str]:
            return {a.of for a in spec.aggs if isinstance(a, kind)}  # type: ignore[attr-defined]

        counted = {a.where for a in spec.aggs if isinstance(a, Count) and a.where}
        masks = {n for n in counted if spec.inputs[n].kind == "mask"}
        sketches = used(Quantile) | used(SketchMap)
        numbers = (counted - masks) | used(Sum) | used(Min) | used(Max) | sketches
        quantiles: dict[str, list[float]] = {}
        for a in spec.aggs:
            if isinstance(a, Quantile):
                quantiles.setdefault(a.of, []).append(a.q)
        return cls(tuple(sorted(masks)), tuple(sorted(numbers)), frozenset(used(Sum)), frozenset(used(Min)),
                   frozenset(used(Max)), tuple(sorted(sketches)), quantiles)


class _SketchBuffer:
    """One window's sketch for one input, all keys: sorted unique codes key << 15 | bucket + 16384.

    New values are appended raw (one code per value) and folded in by `compact` (one sort, one
    pass) only when the raw part grows large or the window is emitted: the sort cost is paid once
    per value, the memory stays bounded by distinct (key, bucket) pairs plus one raw chunk.
    """

    __slots__ = ("codes", "counts", "raw", "raw_n")
    _MASK = (1 << sk.INDEX_BITS) - 1

    def __init__(self) -> None:
        self.codes = np.zeros(0, dtype=np.int32)  # int64 once keys need more than 15 bits
        self.counts = np.zeros(0, dtype=np.int64)
        self.raw: list[np.ndarray] = []
        self.raw_n = 0

    def add(self, codes: np.ndarray) -> None:
        self.raw.append(codes)
        self.raw_n += len(codes)
        if self.raw_n > max(1 << 21, 2 * len(self.codes)):
            self.compact()

    def _take_raw(self) -> np.ndarray:
        raw = np.concatenate(self.raw) if len(self.raw) > 1 else self.raw[0].copy()
        self.raw, self.raw_n = [], 0
        raw.sort()
        return raw

    def compact(self) -> None:
        if self.raw:
            self._fold(self._take_raw())

    def _fold(self, raw: np.ndarray) -> np.ndarray:
        """Merge sorted raw codes into the sorted unique (codes, counts); returns where each run of
        equal codes starts in `raw` (what a first emission needs to find each key's entries)."""
        if not len(raw):
            return np.zeros(0, dtype=np.int64)
        codes, counts, starts = _runs(raw)
        if len(self.codes):
            codes = np.concatenate((self.codes, codes))
            counts = np.concatenate((self.counts, counts))
            order = np.argsort(codes, kind="stable")  # two sorted runs: a linear merge
            codes, counts = codes[order], counts[order]
            merged = _run_starts(codes)
            codes, counts = codes[merged], np.add.reduceat(counts, merged)
        self.codes, self.counts = codes, counts
        return starts

    def emit(self, keys: np.ndarray, present: np.ndarray, qs: Sequence[float]
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(offsets, bucket index, counts) per sorted key code in `keys`, and their quantiles.

        `present[k]` is the number of values key k has in this window (for every key). While the
        whole window is still raw (the usual first emission, where `keys` are all keys with events),
        the one sort that folds it gives everything else by position: key k's values are the block
        of `present[k]` codes after those of the smaller keys, its q-quantile is the code at rank
        q within that block, and its entries are the runs that start inside the block.
        """
        if self.raw and not len(self.codes):
            raw = self._take_raw()
            block = np.zeros(len(present) + 1, dtype=np.int64)
            np.cumsum(present, out=block[1:])
            starts = self._fold(raw)
            all_keys_asked = np.count_nonzero(present[keys]) == np.count_nonzero(present)  # every key with values
            if block[-1] == len(raw) and all_keys_asked:
                n = present[keys]
                filled = n > 0
                quantiles = np.full((len(keys), len(qs)), np.nan)
                for j, q in enumerate(qs):
                    pos = block[keys[filled]] + sk.rank_index(q, n[filled])
                    quantiles[filled, j] = sk.bucket_value((raw[pos] & self._MASK) - sk.INDEX_OFFSET)
                offsets = np.empty(len(keys) + 1, dtype=np.int64)
                offsets[:-1] = np.searchsorted(starts, block[keys])
                offsets[-1] = len(self.codes)
                return offsets, self._bucket_index(self.codes), self.counts, quantiles
        offsets, index, counts = self.rows(keys)
        return offsets, index, counts, sk.grouped_quantiles(offsets, index, counts, qs)

    @classmethod
    def _bucket_index(cls, codes: np.ndarray) -> np.ndarray:
        """The bucket index (int32, as the serialized sketch holds it) of each code."""
        index = np.bitwise_and(codes, cls._MASK, dtype=np.int32)
        return np.subtract(index, sk.INDEX_OFFSET, out=index)

    def rows(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR (offsets, bucket index, counts) for the sorted key codes `keys`."""
        self.compact()
        # int32 codes hold keys < 2**15, but a key without values here may be larger.
        wide = len(keys) and int(keys[-1]) >= 1 << (30 - sk.INDEX_BITS)
        keys = keys.astype(np.int64 if wide else self.codes.dtype)
        lo = np.searchsorted(self.codes, keys << sk.INDEX_BITS)
        hi = np.searchsorted(self.codes, (keys + 1) << sk.INDEX_BITS)
        offsets = np.zeros(len(keys) + 1, dtype=np.int64)
        np.cumsum(hi - lo, out=offsets[1:])
        if offsets[-1] == len(self.codes):  # every entry is requested: no gather
            codes, counts = self.codes, self.counts
        else:
            take = np.arange(offsets[-1]) - np.repeat(offsets[:-1] - lo, hi - lo)
            codes, counts = self.codes[take], self.counts[take]
        return offsets, self._bucket_index(codes), counts

    def snapshot(self) -> tuple:
        """The raw part folded in, then the sorted codes as narrow differences (a few bits of bucket
        apart) and the counts narrow: ~3 bytes per (key, bucket), less than one raw code per value."""
        self.compact()
        return self.codes.dtype.str, pack_sorted(self.codes), narrow(self.counts)

    @classmethod
    def restore(cls, state: tuple) -> _SketchBuffer:
        dtype, codes, counts = state
        buf = cls()
        buf.codes, buf.counts = unpack_sorted(codes, np.dtype(dtype)), counts.astype(np.int64)
        return buf


def _run_starts(sorted_codes: np.ndarray) -> np.ndarray:
    n = len(sorted_codes)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    flag = np.empty(n, dtype=bool)
    flag[0] = True
    np.not_equal(sorted_codes[1:], sorted_codes[:-1], out=flag[1:])
    return np.flatnonzero(flag)


def _runs(sorted_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run-length encoding of sorted codes: (distinct codes, their counts, where each run starts)."""
    starts = _run_starts(sorted_codes)
    counts = np.empty(len(starts), dtype=np.int64)
    np.subtract(starts[1:], starts[:-1], out=counts[:-1])
    counts[-1:] = len(sorted_codes) - starts[-1:]
    return sorted_codes[starts], counts, starts


class _Slots:
    """Dense per-(window slot, key) state arrays; a slot holds one open window."""

    def __init__(self, plan: _Plan, n_slots: int = 4, n_keys: int = 1024) -> None:
        self.plan = plan
        self.fills: dict[str, float] = {"events": 0, "emitted": 0}
        self.fills |= {f"count:{m}": 0 for m in plan.masks}
        # Number inputs count their *absent* values: usually none, so usually no work per event.
        self.fills |= {f"absent:{n}": 0 for n in plan.numbers}
        self.fills |= {f"sum:{n}": 0.0 for n in plan.sums}
        self.fills |= {f"min:{n}": np.inf for n in plan.mins}
        self.fills |= {f"max:{n}": -np.inf for n in plan.maxs}
        self.n_slots, self.n_keys = n_slots, n_keys
        self.arrays = {name: self._new(name, n_slots, n_keys) for name in self.fills}
        self.window = np.full(n_slots, NO_TIME, dtype=np.int64)  # window index per slot
        self.slot_of: dict[int, int] = {}
        self.emitted_once = np.zeros(n_slots, dtype=bool)
        self.touched = np.zeros(n_slots, dtype=bool)
        self.sketches: dict[str, list[_SketchBuffer]] = {
            n: [_SketchBuffer() for _ in range(n_slots)] for n in plan.sketches
        }

    def _new(self, name: str, n_slots: int, n_keys: int) -> np.ndarray:
        # Counts fit 32 bits (the output is UInt32): half the memory of int64 per (window, key).
        dtype = np.int32 if name in ("events", "emitted") or name.startswith(("count:", "absent:")) else np.float64
        return np.full((n_slots, n_keys), self.fills[name], dtype=dtype)

    def flat(self, name: str) -> np.ndarray:
        return self.arrays[name].reshape(-1)

    def state(self, name: str, slot: int | None) -> np.ndarray:
        """What cell indices address: one slot's row (indexed by key), or all slots (slot * n_keys + key)."""
        return self.flat(name) if slot is None else self.arrays[name][slot]

    def ensure_keys(self, n_keys: int) -> None:
        if n_keys <= self.n_keys:
            return
        grown = max(n_keys, 2 * self.n_keys)
        for name, old in self.arrays.items():
            new = self._new(name, self.n_slots, grown)
            new[:, : self.n_keys] = old
            self.arrays[name] = new
        self.n_keys = grown

    def slot(self, window: int) -> int:
        slot = self.slot_of.get(window)
        if slot is None:
            free = np.flatnonzero(self.window == NO_TIME)
            if not len(free):
                self._grow_slots()
                free = np.flatnonzero(self.window == NO_TIME)
            slot = int(free[0])
            self.window[slot] = window
            self.slot_of[window] = slot
        return slot

    def _grow_slots(self) -> None:
        grown = 2 * self.n_slots
        for name, old in self.arrays.items():
            new = self._new(name, grown, self.n_keys)
            new[: self.n_slots] = old
            self.arrays[name] = new
        self.window = np.concatenate((self.window, np.full(self.n_slots, NO_TIME, dtype=np.int64)))
        self.emitted_once = np.concatenate((self.emitted_once, np.zeros(self.n_slots, dtype=bool)))
        self.touched = np.concatenate((self.touched, np.zeros(self.n_slots, dtype=bool)))
        for bufs in self.sketches.values():
            bufs.extend(_SketchBuffer() for _ in range(self.n_slots))
        self.n_slots = grown

    def free(self, slot: int) -> None:
        del self.slot_of[int(self.window[slot])]
        self.window[slot] = NO_TIME
        for name, arr in self.arrays.items():
            arr[slot] = self.fills[name]
        self.emitted_once[slot] = self.touched[slot] = False
        for bufs in self.sketches.values():
            bufs[slot] = _SketchBuffer()

    def open_slots(self) -> list[int]:
        """Slots holding a window, oldest window first."""
        return sorted(self.slot_of.values(), key=lambda s: int(self.window[s]))

    def shrink(self) -> None:
        """Give back capacity once at most a quarter of the slots is in use (after a batch that spanned
        many windows), keeping twice what is in use: growing and shrinking cannot alternate."""
        if self.n_slots > 8 and 4 * len(self.slot_of) <= self.n_slots:
            self.repack(max(8, 2 * len(self.slot_of)))

    def repack(self, n_slots: int) -> None:
        """Open windows to slots 0..k-1 (oldest first) of `n_slots` >= k slots. Slot numbers are
        internal: results do not depend on which slot holds a window."""
        order = np.array(self.open_slots(), dtype=np.intp)
        k = len(order)
        for name, old in self.arrays.items():
            new = self._new(name, n_slots, self.n_keys)
            new[:k] = old[order]
            self.arrays[name] = new
        self.window = np.concatenate((self.window[order], np.full(n_slots - k, NO_TIME, dtype=np.int64)))
        self.emitted_once = np.concatenate((self.emitted_once[order], np.zeros(n_slots - k, dtype=bool)))
        self.touched = np.concatenate((self.touched[order], np.zeros(n_slots - k, dtype=bool)))
        for name, bufs in self.sketches.items():
            self.sketches[name] = [bufs[i] for i in order] + [_SketchBuffer() for _ in range(n_slots - k)]
        self.slot_of = {int(w): i for i, w in enumerate(self.window[:k])}
        self.n_slots = n_slots

    def snapshot(self, n_keys: int) -> dict:
        """The open windows' state for a checkpoint: per window, only the cells (keys) that have
        events (any other cell holds the fill values), over the first `n_keys` keys (those in use)."""
        order = np.array(self.open_slots(), dtype=np.intp)
        grid = min(n_keys, self.n_keys)
        cells = np.flatnonzero(self.arrays["events"][order, :grid])  # row-major in (window, key)
        values = {}
        for name, arr in self.arrays.items():
            v = arr[order, :grid].reshape(-1)[cells]
            values[name] = narrow(v) if v.dtype.kind == "i" else v  # counters are >= 0; floats stay exact
        return {
            "n_keys": n_keys, "grid": grid, "window": self.window[order],
            "emitted_once": self.emitted_once[order], "touched": self.touched[order],
            "cells": pack_sorted(cells), "values": values,
            "sketches": {name: [bufs[i].snapshot() for i in order] for name, bufs in self.sketches.items()},
        }

    @classmethod
    def restore(cls, plan: _Plan, state: dict) -> _Slots:
        windows = state["window"]
        k = len(windows)
        slots = cls(plan, n_slots=max(4, k), n_keys=max(1, state["n_keys"]))
        row, key = np.divmod(unpack_sorted(state["cells"], np.int64), max(1, state["grid"]))
        cells = row * slots.n_keys + key
        for name, values in state["values"].items():
            slots.flat(name)[cells] = values
        slots.window[:k] = windows
        slots.emitted_once[:k], slots.touched[:k] = state["emitted_once"], state["touched"]
        slots.slot_of = {int(w): i for i, w in enumerate(windows)}
        for name, bufs in state["sketches"].items():
            slots.sketches[name][:k] = [_SketchBuffer.restore(b) for b in bufs]
        return slots


@dataclass
class _Late:
    rows: list[np.ndarray] = field(default_factory=list)  # positions in the (guarded) batch
    window_start: list[np.ndarray] = field(default_factory=list)

    def add(self, rows: np.ndarray, window_start: np.ndarray | int) -> None:
        self.rows.append(rows)
        self.window_start.append(np.broadcast_to(np.asarray(window_start, dtype=np.int64), rows.shape))
