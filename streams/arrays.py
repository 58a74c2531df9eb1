"""Small numpy helpers shared by the stream stages."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa


def unique_sorted(values: np.ndarray) -> np.ndarray:
    """The distinct values, ascending: what `np.unique(values)` returns for numbers without NaN, by one sort.

    Why not `np.unique`: numpy 2.4 finds distinct values of a plain call with a hash table, which
    is ~80x slower than sorting when most values are distinct (1M distinct int64: 1.3 s against
    16 ms here). A checkpoint of the outage tracker spent 150 ms per partition in it, with the
    event loop blocked.
    """
    values = np.sort(np.ravel(values))
    if len(values) < 2:
        return values
    keep = np.empty(len(values), dtype=bool)
    keep[0] = True
    np.not_equal(values[1:], values[:-1], out=keep[1:])
    return values[keep]


_MIX = (np.uint64(0xFF51AFD7ED558CCD), np.uint64(0xC4CEB9FE1A85EC53))
_SHIFT = np.uint64(33)


def _fmix(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer, in place: every input bit moves every output bit."""
    h ^= h >> _SHIFT
    h *= _MIX[0]
    h ^= h >> _SHIFT
    h *= _MIX[1]
    h ^= h >> _SHIFT
    return h


def string_hashes(strings: pa.Array) -> np.ndarray:
    """A 64-bit hash of each string, from the Arrow buffers, 8 bytes of every string per vectorized
    pass (two passes for the simulator's ids). Equal strings hash equal; different ones rarely, so
    callers that need exactness compare the strings of equal hashes."""
    if not pa.types.is_string(strings.type):
        strings = strings.cast(pa.string())
    n = len(strings)
    _, offsets_buf, data_buf = strings.buffers()
    if n == 0 or offsets_buf is None:
        return np.zeros(n, dtype=np.uint64)
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[strings.offset:strings.offset + n + 1].astype(np.int64)
    lo, hi = int(offsets[0]), int(offsets[-1])
    padded = np.zeros(hi - lo + 8, dtype=np.uint8)  # 8 spare bytes: a word read at the last byte stays inside
    if data_buf is not None and hi > lo:
        padded[:hi - lo] = np.frombuffer(data_buf, dtype=np.uint8)[lo:hi]
    words = np.ndarray((hi - lo + 1,), dtype="<u8", buffer=padded, strides=(1,))  # words[p]: bytes p..p+7
    starts, lengths = offsets[:-1] - lo, np.diff(offsets)
    hashes = lengths.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
    rows: np.ndarray | None = None  # the strings longer than k bytes (None: all of them)
    for k in range(0, int(lengths.max(initial=0)) + 1, 8):
        rest = (lengths if rows is None else lengths[rows]) - k  # bytes of each string from its k-th on
        word = words[(starts if rows is None else starts[rows]) + k]
        short = rest < 8  # keep only the string's own bytes of its last word
        word[short] &= (np.uint64(1) << (8 * rest[short]).astype(np.uint64)) - np.uint64(1)
        if rows is None:
            _fmix(np.bitwise_xor(hashes, word, out=hashes))
            rows = np.flatnonzero(rest > 8)
        else:
            hashes[rows] = _fmix(hashes[rows] ^ word)
            rows = rows[rest > 8]
        if not len(rows):
            break
    return hashes


@dataclass
class HashFilter:
    """Hashes that may have been added: one bit per hash, at `hash mod bits` (a one-hash Bloom
    filter). No false negatives; false positives at about count / bits."""

    words: np.ndarray  # uint64 bitset
    count: int = 0  # hashes added (with repeats)

    @classmethod
    def sized(cls, capacity: int) -> HashFilter:
        """Room for `capacity` hashes at 16 bits each (then ~6% false positives)."""
        bits = 1 << max(12, int(max(capacity, 1) * 16 - 1).bit_length())
        return cls(np.zeros(bits // 64, dtype=np.uint64))

    @property
    def capacity(self) -> int:
        return len(self.words) * 4

    def _slots(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        word = (hashes >> np.uint64(6)) & np.uint64(len(self.words) - 1)
        return word.astype(np.intp), np.left_shift(np.uint64(1), hashes & np.uint64(63))

    def add(self, hashes: np.ndarray) -> None:
        word, bit = self._slots(hashes)
        # A scatter keeps one of several writes to the same word: repeat for the bits that did not
        # land (each pass lands one per word, and few words repeat). `np.bitwise_or.at` does it in
        # one pass but at ~70 ns a hash, a sort by word at ~50.
        while len(word):
            self.words[word] |= bit
            missing = (self.words[word] & bit) == 0
            word, bit = word[missing], bit[missing]
        self.count += len(hashes)

    def may_contain(self, hashes: np.ndarray) -> np.ndarray:
        word, bit = self._slots(hashes)
        return (self.words[word] & bit) != 0
