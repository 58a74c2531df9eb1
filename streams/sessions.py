"""Gap-based outage sessions (runs of "down" samples per key), in event time, with late updates.

Definition, over the *accepted* samples of one key in event-time order (an "up" sample at the same
millisecond as a "down" sample counts as after it):
- a session is a maximal run of down samples in which consecutive ones are at most `gap_ms` apart
  and no up sample lies between them;
- `start` is its first down sample, `samples` the number of down samples;
- it is closed by the first up sample after its last down sample if that comes within `gap_ms`
  (then `end` = that up sample's time), otherwise by the gap timeout (`end` = last down sample);
- `duration_s` = (end - start) / 1000.

Emission (idempotent on (key, start), highest `version` wins):
- first emitted once the watermark passes its closing point (the closing up sample, or last down +
  gap), or on `flush`;
- re-emitted whenever a later-accepted sample changes it (longer, shorter, more or fewer samples);
- if a late sample merges it into an earlier session or removes its first sample's role as a start,
  its (key, start) row is re-emitted as a *tombstone*: samples = 0, end = start (readers keep rows
  with samples > 0 of the latest version);
- final (state freed, never changes again) once no acceptable sample can reach it: every future
  accepted sample has time >= `horizon` (see `WindowEngine`), so a session whose last down sample
  is more than `gap_ms` before the horizon is final.

Versions are content-monotonic: a row's `version` is the number of samples of its key (up and down)
accepted so far, counted in input order, when the row is emitted (the same rule for a tombstone).
A session's rows are a function of the accepted samples of its key alone, and which samples are
accepted does not depend on batch boundaries, so two emissions of a (key, start) row with the same
version have identical content (across batch splits, crashes and replays from a checkpoint). A row
is re-emitted only when it changed, which takes a newly accepted sample of its key, so every
re-emission, tombstones included, has a strictly higher version than any earlier one of that row.
Why not the session's own sample count: it can stay the same while the row changes (the closing up
sample arriving after a flush moves `end`) or even drop (a late up sample splits the session).
Limits: uint32, so 2**32 samples per key over the stream's life (1,300 years at one sample per
10 s); versions are not consecutive; they compare rows computed from the same stream start (a
restored checkpoint continues the counts; a fresh engine started mid-stream counts lower than the
rows already stored). After a crash, a row written between the checkpoint and the crash that
stopped being a start before the replay emitted it (merged away by a late sample, and the replay's
batches never showed it as a start) is not tombstoned: the restored tracker does not know it was
written. (Windows have no such case: the replay emits every row with events again.)

State: the down samples of sessions that are not final (old interior samples of a long outage are
collapsed into one weighted row), and the up samples no older than horizon - gap (only those can
still separate or close a session). Both are bounded by the lateness horizon, not by stream length.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from streams.arrays import unique_sorted

_TIME_BITS = 43  # a (key, time) pair packs as key << 43 | (time - origin): 278 years of ms


@dataclass(frozen=True)
class SessionSpec:
    flag: str  # a mask input of the spec: True marks a "down" sample, False an "up" sample
    gap_ms: int
    key: str = ""  # output name of the key column (default: the spec's single key)


@dataclass
class SessionRows:
    """Sessions to emit, as arrays (one element per row), ordered by (key code, start)."""

    keys: np.ndarray
    start: np.ndarray
    end: np.ndarray
    samples: np.ndarray
    version: np.ndarray

    @classmethod
    def empty(cls) -> SessionRows:
        z = np.zeros(0, dtype=np.int64)
        return cls(z, z, z, z, np.zeros(0, dtype=np.uint32))

    def __len__(self) -> int:
        return len(self.keys)


@dataclass
class _Sessions:
    key: np.ndarray
    start: np.ndarray
    last: np.ndarray
    end: np.ndarray
    close: np.ndarray
    samples: np.ndarray
    first_row: np.ndarray  # row in the sorted down samples where each session begins
    n_rows: np.ndarray


@dataclass
class SessionTracker:
    spec: SessionSpec
    _origin: int | None = None
    # Down samples (unsorted): key, time, weight (samples represented), first time represented.
    _dk: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    _dt: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    _dw: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    _df: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    # Up samples as packed (key, time) codes, unsorted chunks: most batches have no down sample
    # anywhere and then cost one append; they are sorted only for the keys that have downs.
    _up_chunks: list[np.ndarray] = field(default_factory=list)
    _up_n: int = 0
    _up_kept: int = 0  # size after the last prune
    _ups: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # sorted, this emit
    # Emitted, not yet final: (key, start) -> (version, end, samples).
    _emitted: dict[tuple[int, int], tuple[int, int, int]] = field(default_factory=dict)
    # Accepted samples per key code (the version of a row emitted now).
    _seen: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    _horizon: int | None = None  # of the last emit: every later accepted sample has time >= this

    def observe(self, keys: np.ndarray, times: np.ndarray, down: np.ndarray) -> None:
        """Add accepted samples (any order)."""
        if len(times) == 0:
            return
        if self._origin is None:
            self._origin = int(times.min()) - (1 << (_TIME_BITS - 1))
        per_key = np.bincount(keys)
        if len(per_key) > len(self._seen):
            self._seen = np.concatenate((self._seen, np.zeros(len(per_key) - len(self._seen), dtype=np.int64)))
        self._seen[: len(per_key)] += per_key
        down = down.astype(bool, copy=False)
        if down.any():
            self._dk = np.concatenate((self._dk, keys[down]))
            dt = times[down]
            self._dt = np.concatenate((self._dt, dt))
            self._dw = np.concatenate((self._dw, np.ones(len(dt), dtype=np.int64)))
            self._df = np.concatenate((self._df, dt))
        up = ~down
        if up.any():
            self._up_chunks.append(self._pack(keys[up], times[up]))
            self._up_n += len(self._up_chunks[-1])

    def emit(self, watermark: int, horizon: int, force: bool = False) -> SessionRows:
        """Rows to (re-)emit now; frees final sessions. `force` emits open sessions too (flush)."""
        sessions = self._sessions()
        gap = self.spec.gap_ms
        rows: list[tuple[int, int, int, int, int]] = []
        live: set[tuple[int, int]] = set()
        final = sessions.last + gap < horizon
        due = force | (sessions.close <= watermark)
        for i in range(len(sessions.key)):
            key = (int(sessions.key[i]), int(sessions.start[i]))
            live.add(key)
            end, samples = int(sessions.end[i]), int(sessions.samples[i])
            seen = self._emitted.get(key)
            if seen is None and not due[i]:
                continue
            if seen is None or seen[1:] != (end, samples):
                version = int(self._seen[key[0]])
                rows.append((*key, end, samples, version))
                self._emitted[key] = (version, end, samples)
            if final[i]:
                self._emitted.pop(key, None)
        for key, (_version, _end, samples) in list(self._emitted.items()):
            if key in live:
                continue
            if samples:  # tombstone: this (key, start) no longer starts a session
                version = int(self._seen[key[0]])
                rows.append((*key, key[1], 0, version))
                self._emitted[key] = (version, key[1], 0)
            if key[1] + gap < horizon:  # no accepted sample can make it a start again
                del self._emitted[key]
        self._prune(sessions, final, horizon)
        self._horizon = horizon
        return _rows(rows)

    def clear(self) -> None:
        """Forget every sample and session (end of stream); the per-key counts (versions) go on."""
        seen = self._seen
        self.__init__(self.spec)  # type: ignore[misc]
        self._seen = seen

    def __getstate__(self) -> dict:
        """For checkpoints: the up samples without those no sample can need any more (older than
        horizon - gap) and without repeats (only whether an up sample lies between two times, and
        the first one after a time, matter), as narrow (key, time offset) arrays."""
        state = self.__dict__ | {"_ups": np.zeros(0, dtype=np.int64), "_up_chunks": [], "_up_n": 0, "_up_kept": 0,
                                 "_seen": narrow(self._seen)}
        ups = unique_sorted(np.concatenate(self._up_chunks)) if self._up_chunks else np.zeros(0, dtype=np.int64)
        times = ups & ((1 << _TIME_BITS) - 1)
        if self._horizon is not None:
            keep = times + (self._origin or 0) >= self._horizon - self.spec.gap_ms
            ups, times = ups[keep], times[keep]
        first = int(times.min()) if len(times) else 0
        return state | {"_ups_snapshot": (narrow(ups >> _TIME_BITS), first, narrow(times - first))}

    def __setstate__(self, state: dict) -> None:
        ups = state.pop("_ups_snapshot", None)  # absent from trackers pickled by earlier versions
        self.__dict__.update(state)
        if "_seen" in state:
            self._seen = self._seen.astype(np.int64)
        if ups is not None:
            keys, first, times = ups
            packed = (keys.astype(np.int64) << _TIME_BITS) | (times.astype(np.int64) + first)
            self._up_chunks = [packed] if len(packed) else []
            self._up_n = self._up_kept = len(packed)

    def upgrade_v1(self) -> None:
        """State pickled before content versions (emission counts): each key's count starts at the
        highest version it has written, so its next rows replace the ones already written."""
        self._horizon = None
        self._seen = np.zeros(0, dtype=np.int64)
        if self._emitted:
            keys = np.array([k for k, _ in self._emitted], dtype=np.int64)
            versions = np.array([v for v, _, _ in self._emitted.values()], dtype=np.int64)
            self._seen = np.zeros(int(keys.max()) + 1, dtype=np.int64)
            np.maximum.at(self._seen, keys, versions)

    # ------------------------------------------------------------ internals

    def _pack(self, keys: np.ndarray, times: np.ndarray) -> np.ndarray:
        return (keys.astype(np.int64) << _TIME_BITS) | (times - (self._origin or 0))

    def _sort_downs(self) -> None:
        order = np.lexsort((self._dt, self._dk))
        self._dk, self._dt, self._dw, self._df = (a[order] for a in (self._dk, self._dt, self._dw, self._df))

    def _ups_before(self, keys: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Per (key, time): the number of up samples of any key ordered before it (searchsorted)."""
        return np.searchsorted(self._ups, self._pack(keys, times), side="left")

    def _relevant_ups(self) -> np.ndarray:
        """Sorted up samples of the keys that have down samples (the only ones queried)."""
        if not len(self._dk) or not self._up_n:
            return np.zeros(0, dtype=np.int64)
        ups = np.concatenate(self._up_chunks)
        ups_key = ups >> _TIME_BITS
        wanted = np.zeros(int(max(ups_key.max(), self._dk.max())) + 1, dtype=bool)
        wanted[self._dk] = True
        return np.sort(ups[wanted[ups_key]])

    def _sessions(self) -> _Sessions:
        self._ups = self._relevant_ups()
        self._sort_downs()
        k, t, gap = self._dk, self._dt, self.spec.gap_ms
        n = len(k)
        starts_new = np.ones(n, dtype=bool)
        if n > 1:
            before = self._ups_before(k, t)
            same_key = k[1:] == k[:-1]
            close = t[1:] - t[:-1] <= gap
            no_up_between = before[1:] == before[:-1]  # no up in [t[i-1], t[i]) of this key
            starts_new[1:] = ~(same_key & close & no_up_between)
        first = np.flatnonzero(starts_new)
        last = np.append(first[1:], n) - 1 if n else first
        sk, start, tl = k[first], self._df[first], t[last]
        samples = np.add.reduceat(self._dw, first) if n else np.zeros(0, dtype=np.int64)
        # Closing up sample: the first up of the same key at or after the last down sample.
        pos = self._ups_before(sk, tl)
        has = pos < len(self._ups)
        nxt = self._ups[np.minimum(pos, max(len(self._ups) - 1, 0))] if len(self._ups) else np.zeros(len(sk), np.int64)
        up_key = nxt >> _TIME_BITS
        up_time = (nxt & ((1 << _TIME_BITS) - 1)) + (self._origin or 0)
        by_up = has & (up_key == sk) & (up_time - tl <= gap)
        end = np.where(by_up, up_time, tl)
        close_at = np.where(by_up, up_time, tl + gap)
        return _Sessions(sk, start, tl, end, close_at, samples, first, last - first + 1)

    def _prune(self, sessions: _Sessions, final: np.ndarray, horizon: int) -> None:
        gap = self.spec.gap_ms
        self._ups = np.zeros(0, dtype=np.int64)
        if self._up_n > max(2 * self._up_kept, 1 << 16):  # amortized: each sample is pruned O(1) times
            ups = np.concatenate(self._up_chunks)
            ups = ups[(ups & ((1 << _TIME_BITS) - 1)) + (self._origin or 0) >= horizon - gap]
            self._up_chunks, self._up_n, self._up_kept = [ups], len(ups), len(ups)
        if not len(self._dk):
            return
        # Keep down samples of sessions that can still change; collapse each session's samples older
        # than horizon - gap (no accepted sample can land among them any more) into one row that
        # keeps the session's start, the last old time (for the gap test) and the sample count.
        session_of = np.repeat(np.arange(len(sessions.key)), sessions.n_rows)
        keep = ~final[session_of]
        old = keep & (self._dt < horizon - gap)
        if old.any():
            is_last_old = old.copy()
            is_last_old[:-1] &= ~(old[1:] & (session_of[1:] == session_of[:-1]))
            weight = np.bincount(session_of[old], weights=self._dw[old], minlength=len(sessions.key))
            rows = np.flatnonzero(is_last_old)
            self._dw[rows] = weight[session_of[rows]].astype(np.int64)
            self._df[rows] = sessions.start[session_of[rows]]
            keep &= ~old | is_last_old
        self._dk, self._dt, self._dw, self._df = (a[keep] for a in (self._dk, self._dt, self._dw, self._df))


def narrow(a: np.ndarray) -> np.ndarray:
    """Non-negative integers in the smallest unsigned dtype that holds them (compact snapshots)."""
    if len(a) and int(a.min()) < 0:
        return a
    top = int(a.max()) if len(a) else 0
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return a.astype(dtype)
    return a


def pack_sorted(a: np.ndarray) -> tuple[int | None, np.ndarray]:
    """A sorted integer array as (first value, narrow differences) (compact snapshots)."""
    return (int(a[0]), narrow(np.diff(a))) if len(a) else (None, np.zeros(0, dtype=np.uint8))


def unpack_sorted(packed: tuple[int | None, np.ndarray], dtype: np.dtype | type) -> np.ndarray:
    first, diffs = packed
    if first is None:
        return np.zeros(0, dtype=dtype)
    out = np.empty(len(diffs) + 1, dtype=np.int64)
    out[0] = first
    np.cumsum(diffs, dtype=np.int64, out=out[1:])
    out[1:] += first
    return out.astype(dtype, copy=False)


def _rows(rows: list[tuple[int, int, int, int, int]]) -> SessionRows:
    if not rows:
        return SessionRows.empty()
    rows.sort()
    arr = np.array(rows, dtype=np.int64)
    return SessionRows(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], arr[:, 4].astype(np.uint32))
