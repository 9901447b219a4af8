"""Time as chatd stores it (UTC microseconds since the Unix epoch) and shows it."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


class BadTimeError(ValueError):
    """A date or time given by a user could not be read."""


def now_us() -> int:
    """The current time in UTC microseconds."""
    return time.time_ns() // 1000


class StampFormatter:
    """Formats stored timestamps as "YYYY-MM-DD HH:MM:SS", in local time or UTC.

    Exports format millions of stamps, in order (logs) or hopping through
    months (a user's history), so nothing here calls strftime per stamp. The
    UTC offset is looked up once per quarter hour of time (every time zone
    changes its offset on a quarter hour) and remembered; dates are
    remembered per day; hours, minutes and seconds are plain arithmetic.
    """

    __slots__ = ("_days", "_offsets", "_utc")

    _TWO_DIGITS = tuple(f"{n:02d}" for n in range(100))
    _QUARTER = 900  # seconds
    _REMEMBER = 100_000  # quarters and days kept, at most

    def __init__(self, *, utc: bool = False) -> None:
        self._utc = utc
        self._offsets: dict[int, int | None] = {}  # quarter -> UTC offset in seconds
        self._days: dict[int, str] = {}  # local day number -> "YYYY-MM-DD "

    def __call__(self, stamp_us: int) -> str:
        second = stamp_us // 1_000_000
        offset = 0 if self._utc else self._offset(second // self._QUARTER)
        if offset is None:  # the offset changes inside this quarter (never, in practice)
            return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        local = second + offset
        day, of_day = divmod(local, 86_400)
        date = self._days.get(day)
        if date is None:
            if len(self._days) > self._REMEMBER:
                self._days.clear()
            date = self._days[day] = time.strftime("%Y-%m-%d ", time.gmtime(day * 86_400))
        hours, rest = divmod(of_day, 3600)
        minutes, seconds = divmod(rest, 60)
        two = self._TWO_DIGITS
        return f"{date}{two[hours]}:{two[minutes]}:{two[seconds]}"

    def _offset(self, quarter: int) -> int | None:
        try:
            return self._offsets[quarter]
        except KeyError:
            pass
        if len(self._offsets) > self._REMEMBER:
            self._offsets.clear()
        start = time.localtime(quarter * self._QUARTER).tm_gmtoff
        end = time.localtime(quarter * self._QUARTER + self._QUARTER - 1).tm_gmtoff
        offset = self._offsets[quarter] = start if start == end else None
        return offset


def iso_time(stamp_us: int, *, utc: bool = False) -> str:
    """A stored timestamp as ISO 8601 with its offset, for JSON output."""
    seconds, micros = divmod(stamp_us, 1_000_000)
    moment = datetime.fromtimestamp(seconds, UTC).replace(microsecond=micros)
    return (moment if utc else moment.astimezone()).isoformat()


def parse_when(text: str, *, utc: bool = False, end_of_day: bool = False) -> int:
    """Read a user's date or date-time ("2026-11-23", "2026-11-23 14:05") as UTC microseconds.

    Without a zone the time is local (or UTC when `utc`). A bare date means the
    start of that day, or the start of the next one when `end_of_day`, so
    `--until 2026-11-23` includes all of the 23rd.
    """
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day)
            if end_of_day:
                moment += timedelta(days=1)
        else:
            moment = datetime.fromisoformat(text.replace(" ", "T", 1))
    except ValueError:
        raise BadTimeError(
            f"cannot read {text!r} as a date: use YYYY-MM-DD or 'YYYY-MM-DD HH:MM[:SS]'"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC) if utc else moment.astimezone()
    return (moment - _EPOCH) // _ONE_US


def day_bounds(day_text: str, *, utc: bool = False) -> tuple[int, int]:
    """The [start, end) of one calendar day in UTC microseconds."""
    return parse_when(day_text, utc=utc), parse_when(day_text, utc=utc, end_of_day=True)
