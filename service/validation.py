"""Generic input checks (ids, credits, time zones, ranges), shared by every domain.

Neutral on purpose: auth, usage, jobs, GraphQL and exports all import it, and it
imports nothing above `service.db` and `service.errors`, so no domain depends on
another for a syntax check.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from service.db.models import ID_LENGTH
from service.db.timebuckets import zone
from service.db.types import CREDIT_INTEGER_DIGITS, CREDIT_SCALE
from service.errors import BadUserInput

MAX_CREDITS = Decimal(10) ** CREDIT_INTEGER_DIGITS
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Invisible or unprintable: control, format (bidi, zero-width), surrogate,
# private use, unassigned, line and paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# Credits as text: ASCII digits, one optional point, an optional exponent.
DECIMAL_SYNTAX = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def check_id(field: str, value: Any) -> str:
    """A non-empty id of at most 128 characters, without surrounding spaces."""
    text = str(value) if value is not None else ""
    if not text.strip():
        raise BadUserInput(field, "must not be empty")
    if len(text) > ID_LENGTH:
        raise BadUserInput(field, f"must be at most {ID_LENGTH} characters")
    if text != text.strip():
        raise BadUserInput(field, "must not start or end with white space")
    if text.isascii():
        if _CONTROL.search(text):
            raise BadUserInput(field, "must not contain control characters")
    elif any(unicodedata.category(c) in _REFUSED_CATEGORIES for c in text):
        raise BadUserInput(
            field,
            "must not contain control, format (bidi, zero-width), surrogate, "
            "private-use, unassigned or line/paragraph separator characters",
        )
    return text


def check_credits(field: str, value: Any) -> Decimal:
    """A finite, non-negative decimal with at most 12 + 9 digits."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise BadUserInput(field, "must be a decimal number")
    if isinstance(value, str) and not DECIMAL_SYNTAX.fullmatch(value.strip()):
        raise BadUserInput(field, "must be a decimal number (ASCII digits)")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise BadUserInput(field, "must be a decimal number") from None
    if not number.is_finite():
        raise BadUserInput(field, "must be a finite number")
    # Judged from the digits and exponent alone: arithmetic on 1e999999999 or
    # 1e-999999999 would overflow or round to 0 in the decimal context.
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    if not any(digits):
        return Decimal(0)
    if sign:
        raise BadUserInput(field, "must not be negative")
    trailing = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    if exponent + trailing < -CREDIT_SCALE:
        raise BadUserInput(field, f"has more than {CREDIT_SCALE} decimal places")
    if exponent + len(digits) > CREDIT_INTEGER_DIGITS:
        raise BadUserInput(
            field, f"has more than {CREDIT_INTEGER_DIGITS} integer digits"
        )
    return number


def check_time_zone(field: str, name: str) -> str:
    """A known IANA time zone name."""
    try:
        zone(name)
    except KeyError:
        raise BadUserInput(field, f"unknown time zone {name!r}") from None
    return name


def check_range(
    field: str, start: datetime | None, end: datetime | None, *, required: bool = False
) -> tuple[datetime | None, datetime | None]:
    """A half-open [start, end) range; both ends needed when `required`."""
    if required and (start is None or end is None):
        raise BadUserInput(field, "needs both from and to")
    if start is not None and end is not None and start > end:
        raise BadUserInput(field, "from must not be after to")
    return start, end


# Usage and interactions are dated between Corti's era and a day from now: a
# record of year 1 or 9999 is a sender's bug, and would widen every report
# that spans it (a day's bucket per day in between).
EARLIEST_CREATED_AT = datetime(2000, 1, 1, tzinfo=UTC)
MAX_FUTURE = timedelta(days=1)


def check_created_at(field: str, value: datetime, now: datetime) -> datetime:
    """`value` if it lies in [2000-01-01T00:00Z, now + 1 day]."""
    if value < EARLIEST_CREATED_AT:
        raise BadUserInput(field, "must not be before 2000-01-01T00:00:00Z")
    if value > now + MAX_FUTURE:
        raise BadUserInput(field, "must not be more than one day in the future")
    return value
