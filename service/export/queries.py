"""The SQL behind the exports: one row per usage record, or per day and user.

Both statements are meant for `AsyncSession.stream()`: PostgreSQL answers them
through a server-side cursor and SQLite through a stepping cursor, so the rows
travel in fixed-size batches and memory stays flat whatever the row count.

Local days are the GraphQL buckets' days: `bucket_start` over the edges that
service/db/timebuckets.py computes with Python's zone data (never the
database's), so daily.csv and `usage(granularity: DAY)` cannot disagree.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import UsageRecord
from service.db.sql import bucket_start, credit_sum
from service.db.timebuckets import edges, zone
from service.usage.queries import TimeWindow
from service.usage.records import Source

RowsSelect = Select[*tuple[Any, ...]]
# A statement that needs the session first (to read the data's time bounds).
Plan = Callable[[AsyncSession], Awaitable[RowsSelect]]
# Records outside [EARLIEST_LOCAL, LATEST_LOCAL) may have a local day in year 0
# or 10000, which Python cannot hold: daily.csv groups them by UTC day.
EARLIEST_LOCAL = datetime(1, 1, 3, tzinfo=UTC)
LATEST_LOCAL = datetime(9999, 12, 29, tzinfo=UTC)
EDGE_UTC_DAYS = [
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(1, 1, 2, tzinfo=UTC),
    EARLIEST_LOCAL,
    LATEST_LOCAL,
    datetime(9999, 12, 30, tzinfo=UTC),
    datetime(9999, 12, 31, tzinfo=UTC),
]


@dataclass(frozen=True)
class ExportFilter:
    """Which usage records an export covers (already scoped to the caller)."""

    tenant_id: str | None = None
    user_id: str | None = None
    interaction_id: str | None = None
    source: Source | None = None
    window: TimeWindow = field(default_factory=TimeWindow)

    @property
    def attributed_only(self) -> bool:
        """Whether only records of registered interactions can match."""
        return self.tenant_id is not None or self.user_id is not None

    def clauses(self) -> list[ColumnElement[bool]]:
        """WHERE clauses over usage_records (owner from its owner columns)."""
        clauses = self.window.filters()
        if self.tenant_id is not None:
            clauses.append(UsageRecord.tenant_id == self.tenant_id)
        if self.user_id is not None:
            clauses.append(UsageRecord.user_id == self.user_id)
        if self.interaction_id is not None:
            clauses.append(UsageRecord.interaction_id == self.interaction_id)
        if self.source is not None:
            clauses.append(UsageRecord.source == self.source.value)
        return clauses


def _joined(statement: RowsSelect, where: ExportFilter) -> RowsSelect:
    """From usage_records, with its owner (the copy of its interaction's, or
    the tenant and user it was attributed to directly; NULL while unknown)."""
    return statement.select_from(UsageRecord).where(*where.clauses())


def usage_records(where: ExportFilter) -> RowsSelect:
    """One row per usage record, oldest first; tenant and user NULL if unknown."""
    statement = select(
        UsageRecord.interaction_id,
        UsageRecord.user_id,
        UsageRecord.tenant_id,
        UsageRecord.source,
        UsageRecord.external_id,
        UsageRecord.credits,
        UsageRecord.created_at,
    )
    return _joined(statement, where).order_by(
        UsageRecord.created_at, UsageRecord.source, UsageRecord.external_id
    )


async def day_edges(
    session: AsyncSession, window: TimeWindow, zone_name: str
) -> list[datetime]:
    """Local midnights in `zone_name` around every record inside the window.

    PostgreSQL places each record among them (`bucket_start`); SQLite runs the
    same Python truncation row by row, so it needs none.
    """
    if session.get_bind().dialect.name != "postgresql":
        return []
    # One snapshot for the bounds and the export, so no record committed in
    # between falls outside the edges.
    await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
    created = UsageRecord.created_at
    where = [*window.filters(), created >= EARLIEST_LOCAL, created < LATEST_LOCAL]
    # Two index lookups (ix_usage_records_created), whatever the row count.
    low = select(func.min(created)).where(*where).scalar_subquery()
    high = select(func.max(created)).where(*where).scalar_subquery()
    first, last = (await session.execute(select(low, high))).one()
    if first is None:
        return []
    end = last + timedelta(microseconds=1)
    limit = (end - first).days + 3  # DST shifts never add a day
    return edges(first, end, "day", zone(zone_name), limit)


def daily_totals(where: ExportFilter, zone_name: str) -> Plan:
    """Credits and record counts per local day, tenant, user and source.

    Records within two days of year 1's first or year 9999's last instant are
    grouped by UTC day (EARLIEST_LOCAL), so any stored date exports.
    """

    async def plan(session: AsyncSession) -> RowsSelect:
        boundaries = await day_edges(session, where.window, zone_name)
        created = UsageRecord.created_at
        day: ColumnElement[Any] = case(
            (
                or_(created < EARLIEST_LOCAL, created >= LATEST_LOCAL),
                bucket_start(created, EDGE_UTC_DAYS, "day", "UTC"),
            ),
            else_=bucket_start(created, boundaries, "day", zone_name),
        )
        statement = select(
            day.label("day"),
            UsageRecord.tenant_id,
            UsageRecord.user_id,
            UsageRecord.source,
            credit_sum(UsageRecord.credits).label("credits"),
            func.count().label("records"),
        )
        keys = (day, UsageRecord.tenant_id, UsageRecord.user_id, UsageRecord.source)
        return _joined(statement, where).group_by(*keys).order_by(*keys)

    return plan
