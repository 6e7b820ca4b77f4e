"""When Gemini's daily quotas reset: midnight US Pacific time.

A key that hit a ``…PerDay…`` quota is useless for that model until then, so the pool cools it until exactly
that instant. Pacific time observes DST, so the reset is 08:00 UTC in winter and 07:00 UTC in summer; the
day of a change is 23 or 25 hours long. zoneinfo handles that. Slim container images sometimes ship without
the tz database, so a hand-coded copy of the current US rule (since 2007: PDT from the second Sunday of March
02:00 to the first Sunday of November 02:00) stands in when ``America/Los_Angeles`` cannot be loaded.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["PACIFIC", "next_pacific_midnight"]

_UTC = dt.timezone.utc
_PST = dt.timezone(dt.timedelta(hours=-8), "PST")
_PDT = dt.timezone(dt.timedelta(hours=-7), "PDT")


def _nth_sunday(year: int, month: int, n: int) -> dt.date:
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(6 - first.weekday()) % 7 + 7 * (n - 1))


class _USPacific(dt.tzinfo):
    """US Pacific time by the 2007 rule; only used when the tz database is missing."""

    def utcoffset(self, d: dt.datetime | None) -> dt.timedelta:
        return self._zone(d).utcoffset(None)

    def dst(self, d: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(hours=1) if self._zone(d) is _PDT else dt.timedelta(0)

    def tzname(self, d: dt.datetime | None) -> str:
        return self._zone(d).tzname(None)

    def fromutc(self, d: dt.datetime) -> dt.datetime:
        naive = d.replace(tzinfo=None)
        start = dt.datetime.combine(_nth_sunday(d.year, 3, 2), dt.time(10))  # 02:00 PST == 10:00 UTC
        end = dt.datetime.combine(_nth_sunday(d.year, 11, 1), dt.time(9))  # 02:00 PDT == 09:00 UTC
        offset = _PDT if start <= naive < end else _PST
        # The hour after the fall-back change repeats local 01:00-02:00: mark it as the second pass.
        fold = 1 if end <= naive < end + dt.timedelta(hours=1) else 0
        return (naive + offset.utcoffset(None)).replace(tzinfo=self, fold=fold)

    @staticmethod
    def _zone(d: dt.datetime | None) -> dt.timezone:
        if d is None:
            return _PST
        naive = d.replace(tzinfo=None)
        start = dt.datetime.combine(_nth_sunday(d.year, 3, 2), dt.time(2))
        end = dt.datetime.combine(_nth_sunday(d.year, 11, 1), dt.time(2 if d.fold == 0 else 1))
        return _PDT if start <= naive < end else _PST


def _load_pacific() -> dt.tzinfo:
    try:
        return ZoneInfo("America/Los_Angeles")
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return _USPacific()


PACIFIC: dt.tzinfo = _load_pacific()


def next_pacific_midnight(now: float, tz: dt.tzinfo | None = None) -> float:
    """Return the epoch time of the first Pacific midnight strictly after ``now`` (epoch seconds).

    ``tz`` exists so tests can check the fallback rule against zoneinfo.
    """
    zone = tz or PACIFIC
    local = dt.datetime.fromtimestamp(now, zone)
    tomorrow = local.date() + dt.timedelta(days=1)
    # Midnight never falls in a Pacific DST gap or overlap (changes happen at 02:00), so this is unambiguous.
    return dt.datetime.combine(tomorrow, dt.time(0), tzinfo=zone).timestamp()
