"""Rollups of usage_records: per tenant per UTC hour, per user per UTC day.

`usage_tenant_hours` and `usage_user_days` hold, per source, the exact credit
sum and the number of records of the registered usage in each hour or day.
They are written only here, by `UsageService`, in the transaction that
inserts the records or moves an interaction, under the same per-interaction
lock as the owner copied onto each record, so they never drift from the
records (tests/usage/test_totals_property.py recomputes every figure).

Readers (service.usage.queries) take whole hours or days of a range from them
and the ragged ends of the range from the records themselves.

PostgreSQL adds deltas with `INSERT ... ON CONFLICT DO UPDATE`, keys in one
sorted order so concurrent writers cannot deadlock. SQLite, whose writers are
serialised, reads the rows, adds in Python and writes the sums back (its
credits are padded text, see service.db.types).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, select, text, tuple_
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import TenantHourUsage, UsageRecord, UserDayUsage

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
LOOKUP_CHUNK = 300

TenantHourKey = tuple[str, datetime, str]  # tenant, hour, source
UserDayKey = tuple[str, datetime, str, str]  # tenant, day, user, source


def hour_of(instant: datetime) -> datetime:
    """The UTC hour holding `instant`."""
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def day_of(instant: datetime) -> datetime:
    """The UTC day holding `instant`."""
    return instant.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


class Deltas:
    """Changes to both rollups, summed per key."""

    def __init__(self) -> None:
        self.tenant_hours: dict[TenantHourKey, list[Any]] = defaultdict(
            lambda: [Decimal(0), 0]
        )
        self.user_days: dict[UserDayKey, list[Any]] = defaultdict(
            lambda: [Decimal(0), 0]
        )

    def add(
        self,
        tenant_id: str,
        user_id: str,
        created_at: datetime,
        source: str,
        credits: Decimal,
        sign: int = 1,
    ) -> None:
        """Count one record in (sign 1) or out (sign -1) of its owner's rollups."""
        for entry in (
            self.tenant_hours[(tenant_id, hour_of(created_at), source)],
            self.user_days[(tenant_id, day_of(created_at), user_id, source)],
        ):
            entry[0] += credits * sign
            entry[1] += sign

    def __bool__(self) -> bool:
        return bool(self.tenant_hours or self.user_days)


async def apply(session: AsyncSession, deltas: Deltas) -> None:
    """Add the deltas to the rollup rows (creating missing ones)."""
    if not deltas:
        return
    if session.get_bind().dialect.name == "postgresql":
        await _apply_postgresql(session, deltas)
    else:
        await _apply_sqlite(session, deltas)


async def _apply_postgresql(session: AsyncSession, deltas: Deltas) -> None:
    # Tenant hours first, then user days, each in key order: every writer
    # takes the row locks in the same order.
    hours = sorted(deltas.tenant_hours.items())
    await session.execute(
        text(
            "INSERT INTO usage_tenant_hours (tenant_id, hour, source, credits, records)"
            " SELECT * FROM unnest(CAST(:tenants AS text[]),"
            " CAST(:hours AS timestamptz[]), CAST(:sources AS text[]),"
            " CAST(:credits AS numeric[]), CAST(:records AS bigint[]))"
            " ORDER BY 1, 2, 3"
            " ON CONFLICT (tenant_id, hour, source) DO UPDATE SET"
            " credits = usage_tenant_hours.credits + excluded.credits,"
            " records = usage_tenant_hours.records + excluded.records"
        ),
        {
            "tenants": [key[0] for key, _ in hours],
            "hours": [key[1] for key, _ in hours],
            "sources": [key[2] for key, _ in hours],
            "credits": [value[0] for _, value in hours],
            "records": [value[1] for _, value in hours],
        },
    )
    days = sorted(deltas.user_days.items())
    await session.execute(
        text(
            "INSERT INTO usage_user_days"
            " (tenant_id, day, user_id, source, credits, records)"
            " SELECT * FROM unnest(CAST(:tenants AS text[]),"
            " CAST(:days AS timestamptz[]), CAST(:users AS text[]),"
            " CAST(:sources AS text[]), CAST(:credits AS numeric[]),"
            " CAST(:records AS bigint[]))"
            " ORDER BY 1, 2, 3, 4"
            " ON CONFLICT (tenant_id, day, user_id, source) DO UPDATE SET"
            " credits = usage_user_days.credits + excluded.credits,"
            " records = usage_user_days.records + excluded.records"
        ),
        {
            "tenants": [key[0] for key, _ in days],
            "days": [key[1] for key, _ in days],
            "users": [key[2] for key, _ in days],
            "sources": [key[3] for key, _ in days],
            "credits": [value[0] for _, value in days],
            "records": [value[1] for _, value in days],
        },
    )


async def _apply_sqlite(session: AsyncSession, deltas: Deltas) -> None:
    await _read_add_write(
        session,
        TenantHourUsage,
        ["tenant_id", "hour", "source"],
        deltas.tenant_hours,
    )
    await _read_add_write(
        session,
        UserDayUsage,
        ["tenant_id", "day", "user_id", "source"],
        deltas.user_days,
    )


async def _read_add_write(
    session: AsyncSession,
    model: type[TenantHourUsage | UserDayUsage],
    names: list[str],
    deltas: dict[Any, list[Any]],
) -> None:
    table = model.__table__
    assert isinstance(table, Table)
    columns = [table.c[name] for name in names]
    keys = sorted(deltas)
    current: dict[Any, tuple[Decimal, int]] = {}
    for chunk in _chunks(keys, LOOKUP_CHUNK):
        rows = await session.execute(
            select(*columns, table.c.credits, table.c.records).where(
                tuple_(*columns).in_(list(chunk))
            )
        )
        current.update({tuple(row[:-2]): (row[-2], row[-1]) for row in rows})
    values = []
    for key in keys:
        credits, records = current.get(key, (Decimal(0), 0))
        delta = deltas[key]
        values.append(
            {
                **dict(zip(names, key, strict=True)),
                "credits": credits + delta[0],
                "records": records + delta[1],
            }
        )
    statement = sqlite.insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=columns,
        set_={
            "credits": statement.excluded.credits,
            "records": statement.excluded.records,
        },
    )
    connection = await session.connection()
    await connection.execute(statement, values)


# PostgreSQL: sums of the records matching {where}, added to the rollups.
_ADD_TENANT_HOURS = (
    "INSERT INTO usage_tenant_hours (tenant_id, hour, source, credits, records)"
    " SELECT tenant_id, date_trunc('hour', created_at, 'UTC'), source,"
    " sum(credits), count(*) FROM usage_records WHERE tenant_id IS NOT NULL"
    " AND {where} GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
    " ON CONFLICT (tenant_id, hour, source) DO UPDATE SET"
    " credits = usage_tenant_hours.credits + excluded.credits,"
    " records = usage_tenant_hours.records + excluded.records"
)
_ADD_USER_DAYS = (
    "INSERT INTO usage_user_days (tenant_id, day, user_id, source, credits, records)"
    " SELECT tenant_id, date_trunc('day', created_at, 'UTC'), user_id, source,"
    " sum(credits), count(*) FROM usage_records WHERE tenant_id IS NOT NULL"
    " AND {where} GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
    " ON CONFLICT (tenant_id, day, user_id, source) DO UPDATE SET"
    " credits = usage_user_days.credits + excluded.credits,"
    " records = usage_user_days.records + excluded.records"
)


async def add_inserted(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Count records this transaction inserted into their owners' rollups.

    On PostgreSQL the sums are taken from the inserted rows by the database
    (by primary key), which keeps the work off the API process's one core.
    """
    registered = [row for row in rows if row["tenant_id"] is not None]
    if not registered:
        return
    if session.get_bind().dialect.name == "postgresql":
        where = "id = ANY(CAST(:ids AS uuid[]))"
        ids = {"ids": [row["id"] for row in registered]}
        await session.execute(text(_ADD_TENANT_HOURS.format(where=where)), ids)
        await session.execute(text(_ADD_USER_DAYS.format(where=where)), ids)
        return
    deltas = Deltas()
    for row in registered:
        deltas.add(
            row["tenant_id"],
            row["user_id"],
            row["created_at"],
            row["source"],
            row["credits"],
        )
    await apply(session, deltas)


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def rebuild(session: AsyncSession) -> None:
    """Recompute both rollups from the records (after a bulk load)."""
    await session.execute(TenantHourUsage.__table__.delete())  # type: ignore[attr-defined]
    await session.execute(UserDayUsage.__table__.delete())  # type: ignore[attr-defined]
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text(_ADD_TENANT_HOURS.format(where="true")))
        await session.execute(text(_ADD_USER_DAYS.format(where="true")))
        return
    deltas = Deltas()
    rows = await session.stream(
        select(
            UsageRecord.tenant_id,
            UsageRecord.user_id,
            UsageRecord.created_at,
            UsageRecord.source,
            UsageRecord.credits,
        ).where(UsageRecord.tenant_id.is_not(None))
    )
    async for tenant_id, user_id, created_at, source, credits in rows:
        assert tenant_id is not None
        assert user_id is not None
        deltas.add(tenant_id, user_id, created_at, source, credits)
    await apply(session, deltas)
