"""Pages of a tenant's or user's interactions, newest usage first, and counts.

A page of a range reads interactions, not records: each interaction keeps
the times of its first and last usage (`first_usage_at`, `last_usage_at`),
so one whose last usage falls inside the range is ranked by it exactly, from
the (tenant, user, last_usage_at, id) index. Only interactions that straddle
the range's end (used before it and at or after it) have their newest usage
inside the range read from their records, one index probe each; those whose
first usage is at or after the end, or last before the start, have none in
the range. The work grows with the page and the interactions straddling the
end, not with the records behind an owner.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import Any

from sqlalchemy import (
    bindparam,
    func,
    select,
    text,
)
from sqlalchemy.orm import aliased

from service.db.models import Interaction, UsageRecord
from service.db.session import Reads, dialect_of
from service.db.types import UTCDateTime
from service.usage.queries._sql import (
    INTERACTION_COLUMNS,
    in_,
    interaction_owner_columns,
    key_of,
    union,
)
from service.usage.queries.models import (
    InteractionRow,
    Owner,
    Page,
    TimeWindow,
    time_range,
)


def _candidates(owner: Owner, keys: Sequence[Hashable], window: TimeWindow) -> Any:
    """(id, tenant_id, user_id, k) of the owners' interactions with usage in
    the (not open) window, k their newest usage in it (a superset of owners
    for user keys, see `in_`)."""
    columns = interaction_owner_columns(owner)
    parts: list[Any] = [
        select(
            Interaction.id.label("id"),
            Interaction.tenant_id.label("tenant_id"),
            Interaction.user_id.label("user_id"),
            Interaction.last_usage_at.label("k"),
        ).where(in_(columns, keys), *time_range(Interaction.last_usage_at, window))
    ]
    if window.end is not None:
        straddling = aliased(Interaction, name="straddling")
        newest = (
            select(func.max(UsageRecord.created_at))
            .where(UsageRecord.interaction_id == straddling.id, *window.filters())
            .correlate(straddling)
            .scalar_subquery()
        )
        names = ["tenant_id", "user_id"] if owner is Owner.USER else ["tenant_id"]
        parts.append(
            select(
                straddling.id,
                straddling.tenant_id,
                straddling.user_id,
                newest.label("k"),
            ).where(
                in_([getattr(straddling, name) for name in names], keys),
                straddling.last_usage_at >= window.end,
                straddling.first_usage_at < window.end,
            )
        )
    found = union(parts).subquery("found")
    return select(found).where(found.c.k.is_not(None)).subquery("candidates")


async def interactions_pages(
    session: Reads,
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
    if not window.is_open and dialect_of(session) == "postgresql":
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
        candidates = _candidates(owner, keys, window)
        base = select(
            candidates.c.id,
            *[candidates.c[c.key] for c in columns],
            candidates.c.k.label("sort_key"),
        ).subquery("base")
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


def _lateral_sql(owner: Owner, window: TimeWindow) -> str:
    """The page per owner (PostgreSQL): the interactions whose last usage is
    inside the window, by the index, stopping at the page; beside them those
    straddling the window's end, ranked by their newest record inside it."""
    match = "tenant_id = o.tenant_id"
    owners = "unnest(CAST(:tenants AS text[])) AS o(tenant_id)"
    if owner is Owner.USER:
        match += " AND user_id = o.user_id"
        owners = (
            "unnest(CAST(:tenants AS text[]), CAST(:users AS text[]))"
            " AS o(tenant_id, user_id)"
        )
    inside, records = "", ""
    if window.start is not None:
        inside += " AND last_usage_at >= :start"
        records += " AND r.created_at >= :start"
    if window.end is not None:
        inside += " AND last_usage_at < :end"
        records += " AND r.created_at < :end"
    newest_inside = (
        "(SELECT id, tenant_id, user_id, created_at, last_usage_at AS k"
        f" FROM interactions WHERE {match}{inside}"
        " ORDER BY last_usage_at DESC, id DESC LIMIT :depth)"
    )
    parts = [newest_inside]
    if window.end is not None:
        parts.append(
            "(SELECT id, tenant_id, user_id, created_at,"
            " (SELECT max(r.created_at) FROM usage_records AS r"
            f" WHERE r.interaction_id = interactions.id{records}) AS k"
            f" FROM interactions WHERE {match}"
            " AND last_usage_at >= :end AND first_usage_at < :end)"
        )
    # Index-only: the indexes include every column the page returns.
    return (
        "SELECT page.id, page.tenant_id, page.user_id, page.created_at"
        f" FROM {owners} CROSS JOIN LATERAL ("
        f"SELECT c.* FROM ({' UNION ALL '.join(parts)}) AS c"
        " WHERE c.k IS NOT NULL ORDER BY c.k DESC, c.id DESC"
        " OFFSET :offset LIMIT :limit) AS page"
        # The page's own order (the database's collation for equal times).
        " ORDER BY page.k DESC, page.id DESC"
    )


async def _interaction_pages_lateral(
    session: Reads,
    owner: Owner,
    keys: Sequence[Hashable],
    window: TimeWindow,
    first: int,
    offset: int,
) -> dict[Hashable, Page[InteractionRow]]:
    params: dict[str, Any] = {
        "depth": offset + first + 1,
        "offset": offset,
        "limit": first + 1,
    }
    if owner is Owner.USER:
        params["tenants"] = [key[0] for key in keys]  # type: ignore[index]
        params["users"] = [key[1] for key in keys]  # type: ignore[index]
    else:
        params["tenants"] = list(keys)
    binds = []
    for name in ("start", "end"):
        value = getattr(window, name)
        if value is not None:
            params[name] = value
            binds.append(bindparam(name, type_=UTCDateTime()))
    statement = text(_lateral_sql(owner, window)).bindparams(*binds)
    found: dict[Hashable, list[InteractionRow]] = defaultdict(list)
    for row in await session.execute(statement, params):
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
    session: Reads, owner: Owner, keys: Sequence[Hashable], window: TimeWindow
) -> dict[Hashable, int]:
    """How many interactions each owner has (with usage in the window, if set)."""
    if window.is_open:
        columns = interaction_owner_columns(owner)
        statement = (
            select(*columns, func.count()).where(in_(columns, keys)).group_by(*columns)
        )
    else:
        # The candidates of a page (see the module's docstring), not records.
        candidates = _candidates(owner, keys, window)
        columns = [candidates.c[c.key] for c in interaction_owner_columns(owner)]
        statement = select(*columns, func.count()).group_by(*columns)
    wanted = set(keys)
    counts = {key_of(owner, row): row[-1] for row in await session.execute(statement)}
    return {key: count for key, count in counts.items() if key in wanted}
