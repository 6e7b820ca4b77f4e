"""Daily quotas reset at midnight US Pacific time, DST included."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from app.keys.quota_time import _USPacific, next_pacific_midnight

UTC = dt.timezone.utc
LA = ZoneInfo("America/Los_Angeles")


def ts(*args: int) -> float:
    return dt.datetime(*args, tzinfo=UTC).timestamp()


@pytest.mark.parametrize("now,expected", [
    # Winter (PST, UTC-8): midnight is 08:00 UTC.
    (ts(2025, 1, 15, 12, 0), ts(2025, 1, 16, 8, 0)),
    (ts(2025, 1, 15, 7, 59, 59), ts(2025, 1, 15, 8, 0)),
    # Exactly midnight: the *next* one.
    (ts(2025, 1, 15, 8, 0), ts(2025, 1, 16, 8, 0)),
    # Summer (PDT, UTC-7): midnight is 07:00 UTC.
    (ts(2025, 7, 4, 20, 0), ts(2025, 7, 5, 7, 0)),
    # Spring forward on Sun 2025-03-09 02:00 PST: that day is 23 h long.
    (ts(2025, 3, 9, 9, 0), ts(2025, 3, 10, 7, 0)),   # 01:00 PST on the 9th
    (ts(2025, 3, 8, 20, 0), ts(2025, 3, 9, 8, 0)),   # 12:00 PST on the 8th: still a PST midnight
    # Fall back on Sun 2025-11-02 02:00 PDT: that day is 25 h long.
    (ts(2025, 11, 2, 8, 30), ts(2025, 11, 3, 8, 0)),  # 01:30 PDT (first pass)
    (ts(2025, 11, 2, 9, 30), ts(2025, 11, 3, 8, 0)),  # 01:30 PST (second pass)
    (ts(2025, 11, 1, 12, 0), ts(2025, 11, 2, 7, 0)),  # Saturday: next midnight is still PDT
    # Year end.
    (ts(2025, 12, 31, 23, 0), ts(2026, 1, 1, 8, 0)),
])
def test_next_pacific_midnight(now: float, expected: float) -> None:
    assert next_pacific_midnight(now) == expected
    local = dt.datetime.fromtimestamp(expected, LA)
    assert (local.hour, local.minute, local.second) == (0, 0, 0)


def test_fallback_rule_matches_zoneinfo_hourly_over_two_years() -> None:
    fallback = _USPacific()
    start = ts(2024, 1, 1)
    for hour in range(0, 2 * 366 * 24, 1):
        now = start + hour * 3600 + 1234
        assert next_pacific_midnight(now, fallback) == next_pacific_midnight(now, LA), now


def test_fallback_offsets_around_transitions() -> None:
    fallback = _USPacific()
    for now in (ts(2025, 3, 9, 9, 59), ts(2025, 3, 9, 10, 0), ts(2025, 11, 2, 8, 59), ts(2025, 11, 2, 9, 0)):
        assert dt.datetime.fromtimestamp(now, fallback).utcoffset() == dt.datetime.fromtimestamp(now, LA).utcoffset()
