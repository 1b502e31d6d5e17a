"""Lookups by id: tenants (and their page), users, interactions, records."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from service.db.models import Interaction, Tenant, UsageRecord, User
from service.db.session import Reads
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


async def existing_tenants(session: Reads, ids: Sequence[str]) -> set[str]:
    """Which of `ids` are known tenants."""
    rows = await session.execute(select(Tenant.id).where(Tenant.id.in_(list(ids))))
    return set(rows.scalars())


async def existing_users(
    session: Reads, keys: Sequence[tuple[str, str]]
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
    first: int,
    offset: int,
    *,
    tenant: str | None = None,
) -> dict[str, list[tuple[UsageRecord, int]]]:
    """A page of each interaction's usage records, oldest first, with each
    record's 0-based position (only `tenant`'s, if set).

    One statement for all interactions: ROW_NUMBER() per interaction, in a
    total order (ties broken by source and id) so pages never overlap.
    """
    if first <= 0 or not interaction_ids:
        return {}
    position = (
        func.row_number()
        .over(
            partition_by=UsageRecord.interaction_id,
            order_by=(
                UsageRecord.created_at,
                UsageRecord.external_id,
                UsageRecord.source,
                UsageRecord.id,
            ),
        )
        .label("position")
    )
    numbered = select(UsageRecord, position).where(
        UsageRecord.interaction_id.in_(list(interaction_ids))
    )
    if tenant is not None:
        numbered = numbered.where(UsageRecord.tenant_id == tenant)
    if source is not None:
        numbered = numbered.where(UsageRecord.source == source)
    inner = numbered.subquery()
    record = aliased(UsageRecord, inner)
    statement = (
        select(record, inner.c.position)
        .where(inner.c.position > offset, inner.c.position <= offset + first)
        .order_by(inner.c.interaction_id, inner.c.position)
    )
    result: dict[str, list[tuple[UsageRecord, int]]] = defaultdict(list)
    for row, number in await session.execute(statement):
        assert row.interaction_id is not None  # matched an interaction id
        result[row.interaction_id].append((row, number - 1))
    return result
