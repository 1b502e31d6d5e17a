"""Lookups by id: tenants (and their page), users, interactions, records."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import Interaction, Tenant, UsageRecord, User
from service.usage.queries.models import Page


async def tenants_page(
    session: AsyncSession, only: str | None, first: int, offset: int
) -> Page[str]:
    """Tenant ids in id order; `only` restricts to one tenant."""
    statement = select(Tenant.id, func.count().over().label("total"))
    if only is not None:
        statement = statement.where(Tenant.id == only)
    rows = (
        await session.execute(statement.order_by(Tenant.id).offset(offset).limit(first))
    ).all()
    if rows:
        total = rows[0].total
    else:
        count = select(func.count()).select_from(Tenant)
        if only is not None:
            count = count.where(Tenant.id == only)
        # An empty page is an empty list unless it was skipped past or first=0.
        empty = not offset and first > 0
        total = 0 if empty else (await session.execute(count)).scalar_one()
    return Page(items=[row.id for row in rows], total=total, offset=offset)


async def existing_tenants(session: AsyncSession, ids: Sequence[str]) -> set[str]:
    """Which of `ids` are known tenants."""
    rows = await session.execute(select(Tenant.id).where(Tenant.id.in_(list(ids))))
    return set(rows.scalars())


async def existing_users(
    session: AsyncSession, keys: Sequence[tuple[str, str]]
) -> set[tuple[str, str]]:
    """Which (tenant_id, user_id) pairs are known users."""
    rows = await session.execute(
        select(User.tenant_id, User.id).where(
            tuple_(User.tenant_id, User.id).in_(list(keys))
        )
    )
    return {(row[0], row[1]) for row in rows}


async def interactions_by_id(
    session: AsyncSession, ids: Sequence[str]
) -> dict[str, Interaction]:
    """Registered interactions by Corti id."""
    rows = await session.execute(
        select(Interaction).where(Interaction.id.in_(list(ids)))
    )
    return {row.id: row for row in rows.scalars()}


async def records_of(
    session: AsyncSession,
    interaction_ids: Sequence[str],
    source: str | None,
    *,
    tenant: str | None = None,
) -> dict[str, list[UsageRecord]]:
    """Usage records of each interaction, oldest first (only `tenant`'s, if set)."""
    statement = select(UsageRecord).where(
        UsageRecord.interaction_id.in_(list(interaction_ids))
    )
    if tenant is not None:
        statement = statement.where(UsageRecord.tenant_id == tenant)
    if source is not None:
        statement = statement.where(UsageRecord.source == source)
    statement = statement.order_by(UsageRecord.created_at, UsageRecord.external_id)
    result: dict[str, list[UsageRecord]] = defaultdict(list)
    for record in (await session.execute(statement)).scalars():
        assert record.interaction_id is not None  # matched an interaction id
        result[record.interaction_id].append(record)
    return result
