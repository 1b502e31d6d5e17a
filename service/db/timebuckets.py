"""Calendar arithmetic for usage buckets in an IANA time zone.

Buckets start at local hour, local midnight, Monday midnight or the first of
the month, so a DST day is 23 or 25 hours long. The same truncation runs in
SQL (PostgreSQL's `date_trunc(unit, ts, zone)`, or this module's `truncate`
registered as a SQLite function), and `edges` lists every bucket boundary.
"""

from __future__ import annotations

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


def truncate(instant: datetime, unit: str, tz: ZoneInfo) -> datetime:
    """The UTC start of the bucket holding `instant`."""
    local = instant.astimezone(tz)
    if unit == "hour":
        return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    day = local.date()
    if unit == "week":
        day -= timedelta(days=day.weekday())
    elif unit == "month":
        day = day.replace(day=1)
    return _local_midnight(day, tz)


def next_edge(start: datetime, unit: str, tz: ZoneInfo) -> datetime:
    """The UTC start of the bucket after the one starting at `start`."""
    if unit == "hour":
        return truncate(start + timedelta(hours=1), unit, tz)
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
