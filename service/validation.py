"""Generic input checks (ids, credits, time zones, ranges), shared by every domain.

Neutral on purpose: auth, usage, jobs, GraphQL and exports all import it, and it
imports nothing above `service.db` and `service.errors`, so no domain depends on
another for a syntax check.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from service.db.models import ID_LENGTH
from service.db.timebuckets import zone
from service.db.types import CREDIT_INTEGER_DIGITS, CREDIT_SCALE
from service.errors import BadUserInput

MAX_CREDITS = Decimal(10) ** CREDIT_INTEGER_DIGITS
_CONTROL = re.compile(r"[\x00-\x1f]")


def check_id(field: str, value: Any) -> str:
    """A non-empty id of at most 128 characters, without surrounding spaces."""
    text = str(value) if value is not None else ""
    if not text.strip():
        raise BadUserInput(field, "must not be empty")
    if len(text) > ID_LENGTH:
        raise BadUserInput(field, f"must be at most {ID_LENGTH} characters")
    if text != text.strip():
        raise BadUserInput(field, "must not start or end with white space")
    if _CONTROL.search(text):
        raise BadUserInput(field, "must not contain control characters")
    return text


def check_credits(field: str, value: Any) -> Decimal:
    """A finite, non-negative decimal with at most 12 + 9 digits."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise BadUserInput(field, "must be a decimal number")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise BadUserInput(field, "must be a decimal number") from None
    if not number.is_finite():
        raise BadUserInput(field, "must be a finite number")
    if number < 0:
        raise BadUserInput(field, "must not be negative")
    exponent = number.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -CREDIT_SCALE:
        raise BadUserInput(field, f"has more than {CREDIT_SCALE} decimal places")
    if number >= MAX_CREDITS:
        raise BadUserInput(
            field, f"has more than {CREDIT_INTEGER_DIGITS} integer digits"
        )
    return number + 0  # turns -0 into 0


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
