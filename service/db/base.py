"""Declarative base with stable constraint names."""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """The current instant, aware, in UTC."""
    return datetime.now(UTC)


def new_uuid() -> uuid.UUID:
    """A time-ordered primary key: a version 7 UUID (RFC 9562).

    48 bits of Unix milliseconds, then 74 random bits. New rows land at the
    right edge of the primary-key index instead of on a random page of it,
    which keeps inserts into a large usage_records table cheap (bench/).
    """
    millis = time.time_ns() // 1_000_000
    random = int.from_bytes(os.urandom(10))
    rand_a = random >> 68  # 12 bits
    rand_b = random & ((1 << 62) - 1)
    return uuid.UUID(
        int=(millis << 80) | (7 << 76) | (rand_a << 64) | (2 << 62) | rand_b
    )


class Base(DeclarativeBase):
    """Base for every table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
