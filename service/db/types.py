"""Column types that behave the same on SQLite and PostgreSQL.

Credits are NUMERIC(21, 9) on PostgreSQL. SQLite has no exact decimal type (its
NUMERIC affinity turns 0.1 into a binary float), so there credits are stored as
fixed-width, zero-padded decimal text: lexicographic order is numeric order, and
the `credit_sum` aggregate (see `service.db.sqlite`) adds them exactly with
Python's `Decimal`. Times are stored as UTC: timestamptz on PostgreSQL, naive
UTC text on SQLite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, Dialect, Numeric, String
from sqlalchemy.types import TypeDecorator, TypeEngine

CREDIT_INTEGER_DIGITS = 12
CREDIT_SCALE = 9
CREDIT_QUANTUM = Decimal(1).scaleb(-CREDIT_SCALE)
# Sums may exceed a single value's 12 integer digits, so the text form is wider.
SQLITE_CREDIT_WIDTH = 40


def encode_sqlite_credits(value: Decimal) -> str:
    """Fixed-width text whose string order equals numeric order (non-negative)."""
    return format(
        value.quantize(CREDIT_QUANTUM), f"0{SQLITE_CREDIT_WIDTH}.{CREDIT_SCALE}f"
    )


def decode_credits(value: Any) -> Decimal:
    """A `Decimal` from whatever the driver returned, without float rounding."""
    if isinstance(value, Decimal):
        return value
    if isinstance(
        value, float
    ):  # never produced by our columns; refuse silently wrong data
        raise TypeError("credits must not pass through float")
    return Decimal(str(value))


def credits_text(value: Decimal) -> str:
    """Plain decimal text without exponent or trailing zeros ("0.3", "12")."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


class Credits(TypeDecorator[Decimal]):
    """An exact credit amount: NUMERIC(21, 9), or padded decimal text on SQLite."""

    impl = Numeric(CREDIT_INTEGER_DIGITS + CREDIT_SCALE, CREDIT_SCALE)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(SQLITE_CREDIT_WIDTH))
        return dialect.type_descriptor(
            Numeric(CREDIT_INTEGER_DIGITS + CREDIT_SCALE, CREDIT_SCALE, asdecimal=True)
        )

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return encode_sqlite_credits(value)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return decode_credits(value)


class CreditTotal(Credits):
    """A sum of credits: NUMERIC without a limit (sums outgrow one record's
    12 integer digits), or the same padded decimal text on SQLite."""

    impl = Numeric(asdecimal=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(SQLITE_CREDIT_WIDTH))
        return dialect.type_descriptor(Numeric(asdecimal=True))


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC instant; naive input is a programming error."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        instant = datetime.fromisoformat(value) if isinstance(value, str) else value
        if not isinstance(instant, datetime):
            raise TypeError(f"unexpected stored time {value!r}")
        if instant.tzinfo is None:
            return instant.replace(tzinfo=UTC)
        return instant.astimezone(UTC)
