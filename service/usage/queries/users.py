"""Pages of a tenant's users, ranked by their credits inside a window."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, func, literal, select

from service.db.models import UsageRecord, User
from service.db.session import Reads
from service.db.sql import credit_sum
from service.db.types import Credits
from service.usage.queries._sql import union
from service.usage.queries.models import ZERO, Owner, Page, TimeWindow, UserOrder
from service.usage.queries.windows import rollup_filters, steps_of, tile


async def users_pages(
    session: Reads,
    tenant_ids: Sequence[str],
    window: TimeWindow,
    order: UserOrder,
    first: int,
    offset: int,
) -> dict[str, Page[tuple[str, str]]]:
    """Each tenant's users (with usage in the window, or all when it is open).

    Credits per user come from the user-week rollup for the window's whole
    ISO weeks, the user-day and user-hour rollups for the whole days and hours
    beside them, and the records for the rest (less than an hour at each end).
    """
    tiling = tile(window, steps_of(Owner.USER))
    parts: list[Any] = []
    for step, whole in tiling.each_part():
        table, _, clauses = rollup_filters(
            Owner.USER, [], step, whole, tenants=tenant_ids
        )
        parts.append(
            select(table.c.tenant_id, table.c.user_id, table.c.credits).where(*clauses)
        )
    edge = tiling.raw_filter()
    if edge is not None:
        parts.append(
            select(
                UsageRecord.tenant_id, UsageRecord.user_id, UsageRecord.credits
            ).where(UsageRecord.tenant_id.in_(list(tenant_ids)), edge)
        )
    rows = union(parts).subquery("rows")
    agg = (
        select(
            rows.c.tenant_id.label("tenant_id"),
            rows.c.user_id.label("user_id"),
            credit_sum(rows.c.credits).label("credits"),
        )
        .group_by(rows.c.tenant_id, rows.c.user_id)
        .subquery("agg")
    )
    if window.is_open:
        base = (
            select(
                User.tenant_id.label("tenant_id"),
                User.id.label("user_id"),
                func.coalesce(agg.c.credits, literal(ZERO, Credits())).label("credits"),
            )
            .outerjoin(
                agg, and_(agg.c.tenant_id == User.tenant_id, agg.c.user_id == User.id)
            )
            .where(User.tenant_id.in_(list(tenant_ids)))
            .subquery("base")
        )
    else:
        base = agg
    ordering = [base.c.user_id.asc()]
    if order is UserOrder.CREDITS_DESC:
        ordering.insert(0, base.c.credits.desc())
    ranked = select(
        base.c.tenant_id,
        base.c.user_id,
        func.row_number()
        .over(partition_by=base.c.tenant_id, order_by=ordering)
        .label("rn"),
        func.count().over(partition_by=base.c.tenant_id).label("total"),
    ).subquery("ranked")
    statement = (
        select(ranked.c.tenant_id, ranked.c.user_id, ranked.c.total)
        .where(ranked.c.rn > offset, ranked.c.rn <= offset + first)
        .order_by(ranked.c.tenant_id, ranked.c.rn)
    )
    items: dict[str, list[tuple[str, str]]] = defaultdict(list)
    totals: dict[str, int] = {}
    for row in await session.execute(statement):
        items[row.tenant_id].append((row.tenant_id, row.user_id))
        totals[row.tenant_id] = row.total
    missing = [t for t in tenant_ids if t not in totals]
    if missing and (offset or not first):
        count = (
            select(base.c.tenant_id, func.count())
            .where(base.c.tenant_id.in_(missing))
            .group_by(base.c.tenant_id)
        )
        totals.update({row[0]: row[1] for row in await session.execute(count)})
    return {
        t: Page(items=items.get(t, []), total=totals.get(t, 0), offset=offset)
        for t in tenant_ids
    }
