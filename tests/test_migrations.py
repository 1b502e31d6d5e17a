"""The migrations build exactly the tables the models describe."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import column, insert, select, table

from service.db.base import new_uuid
from service.db.models import (
    Interaction,
    InteractionDayUsage,
    TenantHourUsage,
    UsageRecord,
    UserDayUsage,
    UserHourUsage,
    UserWeekUsage,
)
from service.db.session import Database
from service.db.types import UTCDateTime
from service.migrate import check, upgrade
from tests.fixtures.database import empty_database


@pytest.mark.asyncio
async def test_alembic_check_is_clean(database_url: str) -> None:
    # alembic's env.py runs its own event loop, so it runs in a thread here.
    await asyncio.to_thread(check, database_url)


BEFORE_ROLLUPS = "5b2f0c9d1e7a"
RECORDS = [
    # interaction, owner (None: unregistered), source, credits, created_at
    ("i1", ("t1", "u1"), "STREAM", "0.1", "2026-03-01T23:59:59.999999+00:00"),
    ("i1", ("t1", "u1"), "STREAM", "0.2", "2026-03-02T00:00:00+00:00"),
    (
        "i2",
        ("t1", "u2"),
        "DOCUMENT",
        "999999999999.999999999",
        "2026-03-01T23:10:00+00:00",
    ),
    ("i3", ("t2", "u1"), "TRANSCRIPT", "0.333333333", "2026-03-01T23:20:00+00:00"),
    ("i4", None, "STREAM", "5", "2026-03-01T23:30:00+00:00"),
]


async def _store_records(url: str) -> None:
    db = Database.from_url(url)
    try:
        async with db.write() as session:
            for n, (interaction, owner, source, credits, at) in enumerate(RECORDS):
                created_at = datetime.fromisoformat(at)
                await session.execute(
                    insert(UsageRecord).values(
                        id=new_uuid(),
                        source=source,
                        external_id=f"x{n}",
                        interaction_id=interaction,
                        credits=Decimal(credits),
                        created_at=created_at,
                        received_at=created_at,
                        tenant_id=owner[0] if owner else None,
                        user_id=owner[1] if owner else None,
                    )
                )
    finally:
        await db.dispose()


async def _rollups(url: str) -> list[set[tuple[Any, ...]]]:
    db = Database.from_url(url)
    try:
        async with db.read() as session:
            return [
                {tuple(row) for row in await session.execute(select(model.__table__))}
                for model in (
                    TenantHourUsage,
                    UserDayUsage,
                    UserHourUsage,
                    UserWeekUsage,
                )
            ]
    finally:
        await db.dispose()


def test_rollups_are_filled_from_the_records_already_stored(tmp_path: Path) -> None:
    with empty_database(tmp_path) as url:
        upgrade(url, BEFORE_ROLLUPS)
        asyncio.run(_store_records(url))
        upgrade(url)
        hours, days, user_hours, weeks = asyncio.run(_rollups(url))
    utc = UTC
    h23 = datetime(2026, 3, 1, 23, tzinfo=utc)
    assert hours == {
        ("t1", h23, "STREAM", Decimal("0.1"), 1),
        ("t1", datetime(2026, 3, 2, tzinfo=utc), "STREAM", Decimal("0.2"), 1),
        ("t1", h23, "DOCUMENT", Decimal("999999999999.999999999"), 1),
        ("t2", h23, "TRANSCRIPT", Decimal("0.333333333"), 1),
    }
    march_1, march_2 = (
        datetime(2026, 3, 1, tzinfo=utc),
        datetime(2026, 3, 2, tzinfo=utc),
    )
    assert days == {
        ("t1", march_1, "u1", "STREAM", Decimal("0.1"), 1),
        ("t1", march_2, "u1", "STREAM", Decimal("0.2"), 1),
        ("t1", march_1, "u2", "DOCUMENT", Decimal("999999999999.999999999"), 1),
        ("t2", march_1, "u1", "TRANSCRIPT", Decimal("0.333333333"), 1),
    }
    # usage_user_hours (a later migration) is filled from the same records.
    assert user_hours == {
        ("t1", h23, "u1", "STREAM", Decimal("0.1"), 1),
        ("t1", datetime(2026, 3, 2, tzinfo=utc), "u1", "STREAM", Decimal("0.2"), 1),
        ("t1", h23, "u2", "DOCUMENT", Decimal("999999999999.999999999"), 1),
        ("t2", h23, "u1", "TRANSCRIPT", Decimal("0.333333333"), 1),
    }
    # usage_user_weeks (a later migration) too: 2026-03-01 is a Sunday, in the
    # ISO week from Monday 2026-02-23; 2026-03-02 starts the next one.
    february_23 = datetime(2026, 2, 23, tzinfo=utc)
    assert weeks == {
        ("t1", february_23, "u1", "STREAM", Decimal("0.1"), 1),
        ("t1", march_2, "u1", "STREAM", Decimal("0.2"), 1),
        ("t1", february_23, "u2", "DOCUMENT", Decimal("999999999999.999999999"), 1),
        ("t2", february_23, "u1", "TRANSCRIPT", Decimal("0.333333333"), 1),
    }


async def _register_owners(url: str) -> None:
    """The registered interactions of RECORDS, in the tables as they were then."""
    created = datetime(2026, 3, 1, tzinfo=UTC)

    def at() -> Any:
        return column("created_at", UTCDateTime())

    tenants = table("tenants", column("id"), at())
    users = table("users", column("tenant_id"), column("id"), at())
    interactions = table(
        "interactions",
        column("id"),
        column("tenant_id"),
        column("user_id"),
        at(),
        column("updated_at", UTCDateTime()),
    )
    owners = {(i, owner) for i, owner, *_ in RECORDS if owner is not None}
    db = Database.from_url(url)
    try:
        async with db.write() as session:
            for tenant in sorted({owner[0] for _, owner in owners}):
                await session.execute(
                    insert(tenants).values(id=tenant, created_at=created)
                )
            for tenant, user in sorted({owner for _, owner in owners}):
                await session.execute(
                    insert(users).values(tenant_id=tenant, id=user, created_at=created)
                )
            for interaction, (tenant, user) in sorted(owners):
                await session.execute(
                    insert(interactions).values(
                        id=interaction,
                        tenant_id=tenant,
                        user_id=user,
                        created_at=created,
                        updated_at=created,
                    )
                )
    finally:
        await db.dispose()


async def _interaction_aggregates(
    url: str,
) -> tuple[set[tuple[Any, ...]], dict[str, tuple[datetime | None, datetime | None]]]:
    db = Database.from_url(url)
    try:
        async with db.read() as session:
            days = {
                tuple(row)
                for row in await session.execute(select(InteractionDayUsage.__table__))
            }
            spans = {
                row.id: (row.first_usage_at, row.last_usage_at)
                for row in await session.execute(
                    select(
                        Interaction.id,
                        Interaction.first_usage_at,
                        Interaction.last_usage_at,
                    )
                )
            }
            return days, spans
    finally:
        await db.dispose()


def test_interaction_days_and_spans_are_filled_from_the_records(tmp_path: Path) -> None:
    with empty_database(tmp_path) as url:
        upgrade(url, BEFORE_ROLLUPS)
        asyncio.run(_register_owners(url))
        asyncio.run(_store_records(url))
        upgrade(url)
        days, spans = asyncio.run(_interaction_aggregates(url))
    march_1, march_2 = (
        datetime(2026, 3, 1, tzinfo=UTC),
        datetime(2026, 3, 2, tzinfo=UTC),
    )
    # Every record that names an interaction, registered (i1-i3) or not (i4).
    assert days == {
        ("i1", march_1, "STREAM", Decimal("0.1"), 1),
        ("i1", march_2, "STREAM", Decimal("0.2"), 1),
        ("i2", march_1, "DOCUMENT", Decimal("999999999999.999999999"), 1),
        ("i3", march_1, "TRANSCRIPT", Decimal("0.333333333"), 1),
        ("i4", march_1, "STREAM", Decimal(5), 1),
    }
    assert spans == {
        "i1": (
            datetime.fromisoformat("2026-03-01T23:59:59.999999+00:00"),
            datetime.fromisoformat("2026-03-02T00:00:00+00:00"),
        ),
        "i2": (datetime(2026, 3, 1, 23, 10, tzinfo=UTC),) * 2,
        "i3": (datetime(2026, 3, 1, 23, 20, tzinfo=UTC),) * 2,
    }
