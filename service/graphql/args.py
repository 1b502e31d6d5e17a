"""Argument parsing shared by resolvers: ranges, pages, cursors, buckets."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from service.db.timebuckets import TooManyBuckets, edges, zone
from service.errors import BadUserInput
from service.usage.queries import TimeWindow
from service.validation import check_id, check_range, check_time_zone

MAX_PAGE = 100
# Interaction.records: `first` defaults to a page that holds every record of
# an ordinary interaction (a stream, a transcript, some documents), so calls
# from before it had arguments still get them all and still fit the cost
# limit when nested under pages of interactions; up to the cap when asked.
RECORDS_PAGE = 100
MAX_RECORDS_PAGE = 1000
MAX_BUCKETS = 1000
# Far past any list this service holds, and inside both databases' 64-bit OFFSET.
MAX_OFFSET = 2**31
_CURSOR_PREFIX = "offset:"


def lookup_id(value: object) -> str | None:
    """The id to look up, or None for one that no stored row can have."""
    try:
        return check_id("id", value)
    except BadUserInput:
        return None


def window(field: str, start: datetime | None, end: datetime | None) -> TimeWindow:
    """A validated optional range."""
    start, end = check_range(field, start, end)
    return TimeWindow(start=start, end=end)


def encode_cursor(offset: int) -> str:
    """Opaque cursor for the row at `offset` (0-based)."""
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{offset}".encode()).decode()


def page(first: int, after: str | None, maximum: int = MAX_PAGE) -> tuple[int, int]:
    """(limit, offset) from Relay-style `first` (0 to `maximum`) and `after`."""
    if first < 0 or first > maximum:
        raise BadUserInput("first", f"must be between 0 and {maximum}")
    if after is None:
        return first, 0
    try:
        text = base64.urlsafe_b64decode(after.encode()).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        text = ""
    digits = text.removeprefix(_CURSOR_PREFIX)
    # Only the exact form encode_cursor makes: no sign, spaces, "_" or non-ASCII.
    valid = text.startswith(_CURSOR_PREFIX) and digits.isascii() and digits.isdigit()
    # Length first: int() refuses (ValueError) text of over 4,300 digits.
    if not valid or len(digits) > 12 or int(digits) >= MAX_OFFSET:
        raise BadUserInput("after", "is not a cursor returned by this API")
    return first, int(digits) + 1


def buckets(
    start: datetime | None, end: datetime | None, unit: str, time_zone: str
) -> TimeWindow:
    """A validated bucket request: both ends, a known zone, at most 1,000 buckets."""
    check_range("range", start, end, required=True)
    check_time_zone("timeZone", time_zone)
    assert start is not None
    assert end is not None
    try:
        edges(start, end, unit, zone(time_zone), MAX_BUCKETS)
    except TooManyBuckets:
        raise BadUserInput(
            "range", f"spans more than {MAX_BUCKETS} buckets; use a coarser granularity"
        ) from None
    except ValueError:
        raise BadUserInput(
            "range", "buckets would reach past the supported dates (years 1 to 9999)"
        ) from None
    return TimeWindow(start=start, end=end)
