"""When people show up: daily shapes and a vectorized non-homogeneous Poisson process.

Tickets at a counter and filings on the portal are both arrivals whose rate follows the clock
(office hours, lunch, Monday mornings, nights). Rates live on a grid of time bins: a matrix
`rate[stream, bin]` of expected arrivals; `poisson_arrivals` draws all of them in one call.
Shapes are relative per-minute rates; `per_bin_rate` scales a shape so that an ordinary working
day (not a Monday) adds up to the scenario's daily volume.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simulators.clock import MS_MIN, Calendar, LocalTimes

Shape = Callable[[LocalTimes], np.ndarray]


@dataclass(frozen=True)
class Grid:
    """Time bins [start, start + bin_ms) covering [t0, t1), with their local view at mid-bin."""

    start_ms: np.ndarray
    bin_ms: int
    local: LocalTimes

    @classmethod
    def build(cls, calendar: Calendar, t0_ms: int, t1_ms: int, bin_ms: int) -> Grid:
        starts = np.arange(t0_ms, t1_ms, bin_ms, dtype=np.int64)
        return cls(starts, bin_ms, calendar.decompose(starts + bin_ms // 2))

    def __len__(self) -> int:
        return len(self.start_ms)

    def window(self, start_ms: int, end_ms: int) -> np.ndarray:
        """Bins whose midpoint falls in [start, end): where an incident applies."""
        mid = self.start_ms + self.bin_ms // 2
        return (mid >= start_ms) & (mid < end_ms)


def in_person_shape(calendar: Calendar) -> Shape:
    """Counters: a hump in each session (people come mid-morning and mid-afternoon), nothing
    outside office hours, and the Monday-morning rush after the weekend."""
    sessions = calendar.sessions
    peak = calendar.hours.monday_morning_peak

    def shape(lt: LocalTimes) -> np.ndarray:
        s = np.clip(lt.session, 0, None)
        start, end = sessions[s, 0], sessions[s, 1]
        frac = np.clip((lt.minute - start) / (end - start), 0.0, 1.0)
        rate = (0.7 + 0.6 * np.sin(np.pi * frac)) * lt.in_office
        return rate * np.where((lt.weekday == 0) & (lt.session == 0), peak, 1.0)

    return shape


def online_shape(calendar: Calendar, after_hours: float, weekend: float) -> Shape:
    """The portal never closes: office hours like the counters, a lower rate in the evening,
    little at night, a trickle on days off."""
    counters = in_person_shape(calendar)

    def shape(lt: LocalTimes) -> np.ndarray:
        awake = (lt.minute >= 6 * 60) & (lt.minute < 23 * 60)
        off_hours = np.where(awake, 1.0, 0.15)  # 00:00-06:00 and after 23:00: a few night owls
        return np.where(lt.in_office, counters(lt),
                        np.where(lt.working, after_hours, weekend) * off_hours)

    return shape


def per_bin_rate(calendar: Calendar, shape: Shape, grid: Grid, per_day: float) -> np.ndarray:
    """Expected arrivals in each bin such that an ordinary working day totals `per_day`."""
    per_minute_day = shape(calendar.typical_day()).sum()
    if per_minute_day <= 0:
        return np.zeros(len(grid))
    return per_day * shape(grid.local) * (grid.bin_ms / MS_MIN) / per_minute_day


@dataclass(frozen=True)
class Arrivals:
    """Arrival instants sorted by (stream, time)."""

    stream: np.ndarray
    bin: np.ndarray
    time_ms: np.ndarray

    def __len__(self) -> int:
        return len(self.time_ms)


def poisson_arrivals(rng: np.random.Generator, rate: np.ndarray, grid: Grid) -> Arrivals:
    """Poisson counts per (stream, bin), spread uniformly inside each bin. `rate` is (streams, bins)."""
    counts = rng.poisson(rate)
    flat = np.repeat(np.arange(counts.size), counts.ravel())
    stream, bins = np.divmod(flat, counts.shape[1])
    times = grid.start_ms[bins] + (rng.random(len(flat)) * grid.bin_ms).astype(np.int64)
    order = np.lexsort((times, stream))
    return Arrivals(stream[order], bins[order], times[order])
