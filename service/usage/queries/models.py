"""Read models: what the read-side SQL returns (plain data, no ORM, no GraphQL)."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement

from service.db.models import UsageRecord
from service.usage.records import Source

T = TypeVar("T")
ZERO = Decimal(0)


class Owner(StrEnum):
    """What a set of usage records is grouped by."""

    TENANT = "tenant"
    USER = "user"
    INTERACTION = "interaction"


class UserOrder(StrEnum):
    """How a tenant's users are listed."""

    CREDITS_DESC = "CREDITS_DESC"
    ID_ASC = "ID_ASC"


@dataclass(frozen=True)
class TimeWindow:
    """A half-open [start, end) filter on usage `created_at`; None is open."""

    start: datetime | None = None
    end: datetime | None = None

    @property
    def is_open(self) -> bool:
        """True when neither end is set."""
        return self.start is None and self.end is None

    def filters(self) -> list[ColumnElement[bool]]:
        """WHERE clauses for usage_records."""
        return time_range(UsageRecord.created_at, self)


def time_range(column: Any, window: TimeWindow) -> list[ColumnElement[bool]]:
    """WHERE clauses keeping `column` inside the window."""
    clauses: list[ColumnElement[bool]] = []
    if window.start is not None:
        clauses.append(column >= window.start)
    if window.end is not None:
        clauses.append(column < window.end)
    return clauses


@dataclass
class Summary:
    """Credits per source, their exact total and the number of records."""

    by_source: dict[str, Decimal] = field(default_factory=dict)
    records: int = 0

    def add(self, source: str, credits: Decimal, count: int) -> None:
        """Fold one (source, sum, count) row in."""
        self.by_source[source] = self.by_source.get(source, ZERO) + credits
        self.records += count

    def of(self, source: Source) -> Decimal:
        """Credits from one source."""
        return self.by_source.get(source.value, ZERO)

    @property
    def total(self) -> Decimal:
        """Credits from every source."""
        return sum(self.by_source.values(), ZERO)


@dataclass(frozen=True, slots=True)
class InteractionRow:
    """A listed interaction: plain columns, no ORM instance (lists are long)."""

    id: str
    tenant_id: str
    user_id: str
    created_at: datetime

    def key(self, owner: Owner) -> Hashable:
        """The key of its tenant or user, as the page loaders use it."""
        return (self.tenant_id, self.user_id) if owner is Owner.USER else self.tenant_id


@dataclass(frozen=True)
class Bucket:
    """One time bucket [start, end) and its credits."""

    start: datetime
    end: datetime
    credits: Summary


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, with the size of the whole list when it was counted.

    A page read without counting (total None) knows from one extra row
    whether rows follow it (`more`).
    """

    items: list[T]
    total: int | None
    offset: int
    more: bool = False

    @property
    def counted(self) -> int:
        """The size of the whole list, for pages read with counting."""
        if self.total is None:
            raise ValueError("this page was read without counting its list")
        return self.total

    @property
    def has_next(self) -> bool:
        """Whether rows follow this page."""
        if self.total is None:
            return self.more
        return self.offset + len(self.items) < self.total
