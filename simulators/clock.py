"""Local time, working days and office hours, vectorized over arrays of UTC milliseconds.

Events carry UTC; people live in local time (Asia/Ho_Chi_Minh). Everything the generators need
to know about a moment (which local day, which minute, a working day or not, inside which office
session) comes from `Calendar.decompose`, so every family uses the same notion of office hours.

The "office clock" (`to_office` / `from_office`) counts only minutes inside office sessions of
working days. Processing deadlines ("N working days") and officials' work are simple sums there:
a dossier processed 30 office minutes after one submitted on Friday at 16:50 lands on Monday
07:50, and nothing is ever processed at night or on a Sunday.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np

from simulators.scenario import OfficeHours, Scenario

MS_MIN = 60_000
MS_HOUR = 3_600_000
MS_DAY = 86_400_000
# Office-clock origin. Any working day works as long as it is the same for both directions.
_EPOCH = np.datetime64("1970-01-01", "D")


@dataclass(frozen=True)
class LocalTimes:
    """Local view of UTC instants; one entry per instant."""

    utc_ms: np.ndarray
    day: np.ndarray  # local calendar day, days since 1970-01-01
    minute: np.ndarray  # local minutes after midnight (fractional)
    weekday: np.ndarray  # 0 = Monday
    working: np.ndarray  # bool: a working day (weekmask and holidays)
    session: np.ndarray  # index of the office session the instant falls in, -1 outside

    @property
    def in_office(self) -> np.ndarray:
        return self.session >= 0


class Calendar:
    def __init__(self, scenario: Scenario) -> None:
        self.tz = scenario.tz
        self.hours: OfficeHours = scenario.office_hours
        self.sessions = np.array(self.hours.sessions, dtype=np.float64).reshape(-1, 2)
        self.holidays = np.array([np.datetime64(d, "D") for d in self.hours.holidays], dtype="datetime64[D]")
        self.office_minutes = float(self.hours.minutes_per_day)
        lengths = self.sessions[:, 1] - self.sessions[:, 0]
        self._session_offsets = np.concatenate([[0.0], np.cumsum(lengths)])  # office minutes before each session

    # ------------------------------------------------------------ zones

    def offset_ms(self, utc_ms: np.ndarray) -> np.ndarray:
        """UTC offset at each instant; looked up once per distinct hour (zones change on hours)."""
        hours, inverse = np.unique(np.asarray(utc_ms, dtype=np.int64) // MS_HOUR, return_inverse=True)
        offsets = np.array(
            [datetime.fromtimestamp(int(h) * 3600, self.tz).utcoffset().total_seconds() * 1000 for h in hours],
            dtype=np.int64,
        )
        return offsets[inverse].reshape(np.shape(utc_ms))

    def to_utc(self, local_ms: np.ndarray) -> np.ndarray:
        local_ms = np.asarray(local_ms, dtype=np.int64)
        guess = local_ms - self.offset_ms(local_ms)
        return local_ms - self.offset_ms(guess)

    def midnight_ms(self, day: date) -> int:
        """UTC ms of local midnight starting `day`."""
        local = (np.datetime64(day, "D") - _EPOCH).astype(np.int64) * MS_DAY
        return int(self.to_utc(np.array([local]))[0])

    # ------------------------------------------------------------ local view

    def is_working(self, day: np.ndarray) -> np.ndarray:
        days = (_EPOCH + np.asarray(day, dtype=np.int64)).astype("datetime64[D]")
        return np.is_busday(days, weekmask=self.hours.weekmask, holidays=self.holidays)

    def decompose(self, utc_ms: np.ndarray) -> LocalTimes:
        utc_ms = np.asarray(utc_ms, dtype=np.int64)
        local = utc_ms + self.offset_ms(utc_ms)
        day = local // MS_DAY
        minute = (local - day * MS_DAY) / MS_MIN
        working = self.is_working(day)
        return LocalTimes(utc_ms, day, minute, (day + 3) % 7, working, self._session_of(minute, working))

    def _session_of(self, minute: np.ndarray, working: np.ndarray) -> np.ndarray:
        session = np.full(minute.shape, -1, dtype=np.int64)
        for i, (start, end) in enumerate(self.sessions):
            session[working & (minute >= start) & (minute < end)] = i
        return session

    def typical_day(self) -> LocalTimes:
        """Minute midpoints of an ordinary working day that is not a Monday: the unit that daily
        volumes in a scenario are expressed in."""
        minute = np.arange(1440) + 0.5
        working = np.ones(1440, dtype=bool)
        return LocalTimes(np.zeros(1440, np.int64), np.zeros(1440, np.int64), minute, np.full(1440, 1),
                          working, self._session_of(minute, working))

    def working_days(self, first: int, last: int) -> np.ndarray:
        """Local working days (days since epoch) in [first, last]."""
        days = np.arange(first, last + 1)
        return days[self.is_working(days)]

    def session_bounds_ms(self, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """UTC start/end of every session of every given local day: arrays shaped (days, sessions)."""
        base = np.asarray(days, dtype=np.int64)[:, None] * MS_DAY
        starts = self.to_utc(base + (self.sessions[:, 0] * MS_MIN).astype(np.int64))
        ends = self.to_utc(base + (self.sessions[:, 1] * MS_MIN).astype(np.int64))
        return starts, ends

    # ------------------------------------------------------------ office clock

    def working_day_index(self, day: np.ndarray) -> np.ndarray:
        """Working days before `day` since the epoch; for a non-working day, the next one's index."""
        days = (_EPOCH + np.asarray(day, dtype=np.int64)).astype("datetime64[D]")
        return np.busday_count(_EPOCH, days, weekmask=self.hours.weekmask, holidays=self.holidays)

    def to_office(self, utc_ms: np.ndarray) -> np.ndarray:
        """Office minutes since the epoch; an instant outside office hours maps to the next opening."""
        lt = self.decompose(utc_ms)
        elapsed = np.zeros(lt.minute.shape)
        for (start, end) in self.sessions:
            elapsed += np.clip(lt.minute - start, 0.0, end - start)
        elapsed = np.where(lt.working, elapsed, 0.0)
        return self.working_day_index(lt.day) * self.office_minutes + elapsed

    def from_office(self, office_min: np.ndarray) -> np.ndarray:
        """Inverse of `to_office`: UTC ms of an office-clock reading (always inside a session)."""
        office_min = np.asarray(office_min, dtype=np.float64)
        index = np.floor(office_min / self.office_minutes).astype(np.int64)
        within = office_min - index * self.office_minutes
        clock_ms = (self._office_to_clock(within) * MS_MIN).astype(np.int64)
        return self.to_utc(self._day_of_index(index) * MS_DAY + clock_ms)

    def end_of_working_day_ms(self, index: np.ndarray) -> np.ndarray:
        """UTC ms when the last session of the `index`-th working day ends (a due time)."""
        return self.to_utc(self._day_of_index(index) * MS_DAY + int(self.sessions[-1, 1] * MS_MIN))

    def _day_of_index(self, index: np.ndarray) -> np.ndarray:
        days = np.busday_offset(_EPOCH, index, roll="forward", weekmask=self.hours.weekmask, holidays=self.holidays)
        return (days - _EPOCH).astype(np.int64)

    def _office_to_clock(self, within: np.ndarray) -> np.ndarray:
        """Office minutes into a working day -> local minute of day."""
        session = np.clip(np.searchsorted(self._session_offsets, within, side="right") - 1, 0, len(self.sessions) - 1)
        return self.sessions[session, 0] + (within - self._session_offsets[session])


def utc_ms(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp() * 1000)
