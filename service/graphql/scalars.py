"""The DateTime and Decimal scalars of docs/contract.md.

A DateTime must carry an offset (`Z` or `+02:00`): billing data read in the
wrong zone is silently wrong, so a time without one is refused, not guessed.
Decimals travel as JSON strings; JSON numbers are accepted on input and are
read exactly (the view parses request bodies with `parse_float=Decimal`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import strawberry
from graphql import FloatValueNode, IntValueNode, StringValueNode, ValueNode
from strawberry.types.scalar import ScalarDefinition

from service.db.types import credits_text
from service.validation import DECIMAL_SYNTAX


def serialize_datetime(value: datetime) -> str:
    """ISO-8601 in UTC with a `Z`."""
    if value.tzinfo is UTC:  # what the database types return: no conversion
        return value.replace(tzinfo=None).isoformat() + "Z"
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_datetime(value: Any) -> datetime:
    """An aware datetime from ISO-8601 text with an offset."""
    if not isinstance(value, str):
        raise TypeError("DateTime must be an ISO-8601 string")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO-8601 date-time") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"{value!r} has no UTC offset (add Z or +HH:MM)")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"{value!r} is out of range (years 1 to 9999 in UTC)"
        ) from None


def _parse_datetime_literal(node: ValueNode, _variables: Any = None) -> datetime:
    if not isinstance(node, StringValueNode):
        raise TypeError("DateTime must be an ISO-8601 string")
    return parse_datetime(node.value)


def serialize_decimal(value: Decimal) -> str:
    """Plain decimal text: "0.3", never "3E-1"."""
    return credits_text(value)


def parse_decimal(value: Any) -> Decimal:
    """An exact Decimal from a string, an integer or an exactly-parsed number."""
    if isinstance(value, bool):
        raise TypeError("Decimal must be a number or a numeric string")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        # Only reachable when a caller bypasses the view's exact JSON decoding.
        return Decimal(repr(value))
    if isinstance(value, str):
        text = value.strip()
        special = text.lower().lstrip("+-") in {"nan", "snan", "inf", "infinity"}
        if not special and not DECIMAL_SYNTAX.fullmatch(
            text
        ):  # checked as finite later
            raise ValueError(
                f"{value[:40]!r} is not a decimal number (ASCII digits, one point, "
                "an optional exponent)"
            )
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number") from None
    raise TypeError("Decimal must be a number or a numeric string")


def _parse_decimal_literal(node: ValueNode, _variables: Any = None) -> Decimal:
    if isinstance(node, StringValueNode | IntValueNode | FloatValueNode):
        return parse_decimal(node.value)
    raise TypeError("Decimal must be a number or a numeric string")


DATETIME: ScalarDefinition = strawberry.scalar(
    name="DateTime",
    description=(
        "An instant, ISO-8601 with an offset, e.g. 2025-10-23T10:15:30Z. "
        "Output is always UTC. Input without an offset is refused."
    ),
    serialize=serialize_datetime,
    parse_value=parse_datetime,
    parse_literal=_parse_datetime_literal,
)

DECIMAL: ScalarDefinition = strawberry.scalar(
    name="Decimal",
    description=(
        'An exact decimal number, serialized as a JSON string ("0.1"). '
        "Input accepts a string or a JSON number."
    ),
    serialize=serialize_decimal,
    parse_value=parse_decimal,
    parse_literal=_parse_decimal_literal,
)

SCALAR_MAP: dict[object, ScalarDefinition] = {datetime: DATETIME, Decimal: DECIMAL}
