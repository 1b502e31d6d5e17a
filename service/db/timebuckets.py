"""Calendar arithmetic for usage buckets in an IANA time zone.

Buckets start at local hour, local midnight, Monday midnight or the first of
the month, so a DST day is 23 or 25 hours long. `edges` lists every bucket
boundary; SQL assigns rows to them (PostgreSQL by looking each timestamp up
among the edges, SQLite through this module's `truncate`, registered as a
function), so the database's own time zone data plays no part.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

UNITS = ("hour", "day", "week", "month")


# Names of the host's zone, not IANA zones: the API and database hosts may differ.
_HOST_ZONES = frozenset({"localtime", "posixrules"})


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return (frozenset(available_timezones()) | {"UTC"}) - _HOST_ZONES


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The zone for an IANA name; `KeyError` if it is not one."""
    if name not in _known_zones():
        raise KeyError(name)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise KeyError(name) from exc


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _offset(instant: datetime, tz: ZoneInfo) -> timedelta | None:
    return instant.astimezone(tz).utcoffset()


def _offset_change(before: datetime, after: datetime, tz: ZoneInfo) -> datetime:
    """The instant in (before, after] from which `after`'s UTC offset applies."""
    target = _offset(after, tz)
    # Transitions fall on whole seconds; bisect over seconds since the epoch.
    low, high = math.floor(before.timestamp()), math.ceil(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(datetime.fromtimestamp(middle, UTC), tz) == target:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _hour_start(instant: datetime, tz: ZoneInfo) -> datetime:
    """Local hh:00 before `instant` in its own offset, or a later offset change.

    An hour bucket is a local clock hour at one UTC offset: a whole-hour DST
    shift makes a day of 23 or 25 one-hour buckets, and Lord Howe's 30-minute
    shift makes one bucket 30 minutes long.
    """
    local = instant.astimezone(tz)
    into_hour = timedelta(
        minutes=local.minute, seconds=local.second, microseconds=local.microsecond
    )
    start = instant.astimezone(UTC) - into_hour
    if _offset(start, tz) != local.utcoffset():
        return _offset_change(start, instant, tz)
    return start


def truncate(instant: datetime, unit: str, tz: ZoneInfo) -> datetime:
    """The UTC start of the bucket holding `instant`."""
    if unit == "hour":
        return _hour_start(instant, tz)
    local = instant.astimezone(tz)
    day = local.date()
    if unit == "week":
        day -= timedelta(days=day.weekday())
    elif unit == "month":
        day = day.replace(day=1)
    return _local_midnight(day, tz)


def next_edge(start: datetime, unit: str, tz: ZoneInfo) -> datetime:
    """The UTC start of the bucket after the one starting at `start`."""
    if unit == "hour":
        local = start.astimezone(tz)
        into_hour = timedelta(
            minutes=local.minute, seconds=local.second, microseconds=local.microsecond
        )
        top = start - into_hour + timedelta(hours=1)
        if _offset(top, tz) != local.utcoffset():
            return _offset_change(start, top, tz)
        return top
    day = start.astimezone(tz).date()
    if unit == "day":
        return _local_midnight(day + timedelta(days=1), tz)
    if unit == "week":
        return _local_midnight(day + timedelta(days=7), tz)
    month = day.replace(day=1)
    following = (month + timedelta(days=32)).replace(day=1)
    return _local_midnight(following, tz)


class TooManyBuckets(OverflowError):
    """The range needs more buckets than allowed."""


def edges(
    start: datetime, end: datetime, unit: str, tz: ZoneInfo, limit: int
) -> list[datetime]:
    """Boundaries b0 < b1 < ... with b0 <= start and the last >= end.

    An empty range (start >= end) has no buckets, so no boundaries. Raises
    `TooManyBuckets` when more than `limit` buckets would be needed, and
    `ValueError` when a bucket would reach past the years 1 to 9999.
    """
    if start >= end:
        return []
    current = _checked(truncate, start, unit, tz)
    result = [current]
    while current < end:
        if len(result) > limit:
            raise TooManyBuckets(limit)
        current = _checked(next_edge, current, unit, tz)
        result.append(current)
    return result


def _checked(
    step: Callable[[datetime, str, ZoneInfo], datetime],
    instant: datetime,
    unit: str,
    tz: ZoneInfo,
) -> datetime:
    try:
        return step(instant, unit, tz)
    except OverflowError:  # date arithmetic past year 1 or 9999
        raise ValueError("a bucket reaches past the supported dates") from None


def sqlite_truncate(stored: str | None, unit: str, zone_name: str) -> str | None:
    """SQLite function body: stored naive-UTC text in, bucket start text out."""
    if stored is None:
        return None
    instant = datetime.fromisoformat(stored).replace(tzinfo=UTC)
    start = truncate(instant, unit, zone(zone_name))
    return start.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
