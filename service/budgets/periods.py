"""Calendar periods of a budget in its IANA time zone.

A DAY starts at local midnight, a WEEK at Monday's local midnight, a MONTH at
local midnight of the 1st, so DST days are 23 or 25 hours long. The same
calendar code as `usage(granularity:)` buckets (service.db.timebuckets), so a
budget's period equals the bucket a client would read for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from service.db.timebuckets import next_edge, truncate, zone


class Period(StrEnum):
    """Budget periods; values match the GraphQL enum."""

    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"

    @property
    def unit(self) -> str:
        """The time-bucket unit of the same length."""
        return self.value.lower()


@dataclass(frozen=True)
class Window:
    """One period [start, end) in UTC."""

    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        """end - start (23 to 25 hours for a day across DST)."""
        return self.end - self.start


def period_of(at: datetime, period: Period, tz: ZoneInfo | str) -> Window:
    """The period that contains `at`."""
    tz = zone(tz) if isinstance(tz, str) else tz
    start = truncate(at, period.unit, tz)
    return Window(start, next_edge(start, period.unit, tz))


def previous(window: Window, period: Period, tz: ZoneInfo | str) -> Window:
    """The period just before `window`."""
    return period_of(window.start - timedelta(microseconds=1), period, tz)


def latest(
    at: datetime, period: Period, tz: ZoneInfo | str, count: int
) -> list[Window]:
    """`count` periods ending with the one containing `at`, newest first."""
    result: list[Window] = []
    if count <= 0:
        return result
    current = period_of(at, period, tz)
    result.append(current)
    while len(result) < count:
        current = previous(current, period, tz)
        result.append(current)
    return result


def overlapping(
    start: datetime, end: datetime, period: Period, tz: ZoneInfo | str
) -> list[Window]:
    """Every period that overlaps [start, end), oldest first."""
    result: list[Window] = []
    if start >= end:
        return result
    current = period_of(start, period, tz)
    while current.start < end:
        result.append(current)
        current = period_of(current.end, period, tz)
    return result
