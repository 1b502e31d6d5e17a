"""Pages of a tenant's or user's interactions, newest usage first, and counts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import Any

from sqlalchemy import ARRAY, Text, bindparam, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import Interaction, UsageRecord
from service.usage.queries._sql import (
    INTERACTION_COLUMNS,
    in_,
    interaction_owner_columns,
    key_of,
    owner_columns,
    owner_filter,
)
from service.usage.queries.models import InteractionRow, Owner, Page, TimeWindow


async def interactions_pages(
    session: AsyncSession,
    owner: Owner,
    keys: Sequence[Hashable],
    window: TimeWindow,
    first: int,
    offset: int,
) -> dict[Hashable, Page[InteractionRow]]:
    """Each owner's interactions, newest usage first (see docs/contract.md).

    On PostgreSQL a page of a range is read per owner (LATERAL, LIMIT), which
    stops at the page instead of ranking every interaction of the owner; its
    total is then left to `interaction_counts`, read only when asked for.
    """
    if not window.is_open and session.get_bind().dialect.name == "postgresql":
        return await _interaction_pages_lateral(
            session, owner, keys, window, first, offset
        )
    columns = interaction_owner_columns(owner)
    if window.is_open:
        # last_usage_at is kept on the interaction, so no records are read.
        base = (
            select(
                Interaction.id.label("id"),
                *[c.label(c.key) for c in columns],
                func.coalesce(Interaction.last_usage_at, Interaction.created_at).label(
                    "sort_key"
                ),
            )
            .where(in_(columns, keys))
            .subquery("base")
        )
    else:
        agg = (
            select(
                UsageRecord.interaction_id.label("interaction_id"),
                func.max(UsageRecord.created_at).label("last_usage"),
            )
            .where(owner_filter(owner, keys), *window.filters())
            .group_by(UsageRecord.interaction_id)
            .subquery("agg")
        )
        base = (
            select(
                Interaction.id.label("id"),
                *[c.label(c.key) for c in columns],
                agg.c.last_usage.label("sort_key"),
            )
            .join(agg, agg.c.interaction_id == Interaction.id)
            .where(in_(columns, keys))
            .subquery("base")
        )
    partition = [base.c[c.key] for c in columns]
    ranked = select(
        base.c.id,
        func.row_number()
        .over(
            partition_by=partition, order_by=[base.c.sort_key.desc(), base.c.id.desc()]
        )
        .label("rn"),
        func.count().over(partition_by=partition).label("total"),
    ).subquery("ranked")
    statement = (
        select(*INTERACTION_COLUMNS, ranked.c.total)
        .join(ranked, ranked.c.id == Interaction.id)
        .where(ranked.c.rn > offset, ranked.c.rn <= offset + first)
        .order_by(ranked.c.rn)
    )
    items: dict[Hashable, list[InteractionRow]] = defaultdict(list)
    totals: dict[Hashable, int] = {}
    for *columns, total in await session.execute(statement):
        interaction = InteractionRow(*columns)
        key = interaction.key(owner)
        items[key].append(interaction)
        totals[key] = total
    missing = [k for k in keys if k not in totals]
    if missing and (offset or not first):
        count = select(*partition, func.count()).group_by(*partition)
        totals.update(
            {key_of(owner, row): row[-1] for row in await session.execute(count)}
        )
    return {
        k: Page(items=items.get(k, []), total=totals.get(k, 0), offset=offset)
        for k in keys
    }


def _owner_keys(owner: Owner, keys: Sequence[Hashable]) -> Any:
    """The owners as a table (unnest of one array per key column), PostgreSQL."""
    columns: tuple[str, ...]
    if owner is Owner.USER:
        columns = ("tenant_id", "user_id")
        arrays = [
            [key[0] for key in keys],  # type: ignore[index]
            [key[1] for key in keys],  # type: ignore[index]
        ]
    else:
        columns, arrays = ("tenant_id",), [list(keys)]
    unnest = func.unnest(
        *[
            bindparam(f"owner_{column}s", array, ARRAY(Text))
            for column, array in zip(columns, arrays, strict=True)
        ]
    )
    return unnest.table_valued(*columns).render_derived(name="owner")


async def _interaction_pages_lateral(
    session: AsyncSession,
    owner: Owner,
    keys: Sequence[Hashable],
    window: TimeWindow,
    first: int,
    offset: int,
) -> dict[Hashable, Page[InteractionRow]]:
    owners = _owner_keys(owner, keys)
    matches = [UsageRecord.tenant_id == owners.c.tenant_id]
    if owner is Owner.USER:
        matches.append(UsageRecord.user_id == owners.c.user_id)
    last_usage = func.max(UsageRecord.created_at)
    page = (
        select(UsageRecord.interaction_id, last_usage.label("last_usage"))
        .where(*matches, *window.filters())
        .group_by(UsageRecord.interaction_id)
        .order_by(last_usage.desc(), UsageRecord.interaction_id.desc())
        .offset(offset)
        .limit(first + 1)
        .lateral("page")
    )
    statement = (
        select(*INTERACTION_COLUMNS)
        .select_from(owners)
        .join(page, true())
        .join(Interaction, Interaction.id == page.c.interaction_id)
        # The page's own order (the database's collation for equal times).
        .order_by(page.c.last_usage.desc(), page.c.interaction_id.desc())
    )
    found: dict[Hashable, list[InteractionRow]] = defaultdict(list)
    for row in await session.execute(statement):
        interaction = InteractionRow(*row)
        found[interaction.key(owner)].append(interaction)
    pages: dict[Hashable, Page[InteractionRow]] = {}
    for key in keys:
        rows = found.get(key, [])
        pages[key] = Page(
            items=rows[:first],
            total=None,
            offset=offset,
            more=len(rows) > first,
        )
    return pages


async def interaction_counts(
    session: AsyncSession, owner: Owner, keys: Sequence[Hashable], window: TimeWindow
) -> dict[Hashable, int]:
    """How many interactions each owner has (with usage in the window, if set)."""
    if window.is_open:
        columns = interaction_owner_columns(owner)
        statement = (
            select(*columns, func.count()).where(in_(columns, keys)).group_by(*columns)
        )
    else:
        columns = owner_columns(owner)
        statement = (
            select(*columns, func.count(UsageRecord.interaction_id.distinct()))
            .where(owner_filter(owner, keys), *window.filters())
            .group_by(*columns)
        )
    wanted = set(keys)
    counts = {key_of(owner, row): row[-1] for row in await session.execute(statement)}
    return {key: count for key, count in counts.items() if key in wanted}
