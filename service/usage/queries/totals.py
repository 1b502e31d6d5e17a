"""Credit totals and time buckets per owner, one statement per batch of owners.

Tenants read whole UTC hours from `usage_tenant_hours`, users whole UTC days
from `usage_user_days`, and only a window's ragged ends from the records.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Hashable, Sequence
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Select, cast, func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import UsageRecord
from service.db.sql import bucket_start, credit_sum
from service.db.timebuckets import edges, zone
from service.usage import rollups
from service.usage.queries._sql import (
    key_of,
    owner_columns,
    owner_filter,
    raw_sums,
    union,
)
from service.usage.queries.models import Bucket, Owner, Summary, TimeWindow
from service.usage.queries.windows import rollup_filters, rollup_of, split


async def credit_summaries(
    session: AsyncSession,
    owner: Owner,
    keys: Sequence[Hashable],
    window: TimeWindow,
    *,
    tenant: str | None = None,
) -> dict[Hashable, Summary]:
    """Credits per source for each owner within the window.

    Tenants and users: whole hours (days) from the rollups, the ragged ends of
    the window from the records, in one statement. Interactions: their records
    (only those of `tenant`, if set: the owner copy each record keeps).
    """
    if owner is Owner.INTERACTION:
        where = window.filters()
        if tenant is not None:
            where.append(UsageRecord.tenant_id == tenant)
        statement: Any = raw_sums(owner, keys, where)
    else:
        cut = split(window, rollup_of(owner)[2])
        parts: list[Any] = []
        if cut.inner is not None:
            table, columns, clauses = rollup_filters(owner, keys, cut.inner)
            parts.append(
                select(
                    *columns,
                    table.c.source,
                    credit_sum(table.c.credits),
                    cast(func.sum(table.c.records), BigInteger),
                )
                .where(*clauses)
                .group_by(*columns, table.c.source)
            )
        edge = cut.edge_filter()
        if edge is not None:
            parts.append(raw_sums(owner, keys, [edge]))
        statement = union(parts)
    result: dict[Hashable, Summary] = defaultdict(Summary)
    width = 2 if owner is Owner.USER else 1
    for row in await session.execute(statement):
        result[key_of(owner, row)].add(row[width], row[width + 1], row[width + 2])
    return result


async def usage_buckets(
    session: AsyncSession,
    owner: Owner,
    keys: Sequence[Hashable],
    window: TimeWindow,
    unit: str,
    zone_name: str,
    limit: int,
) -> dict[Hashable, list[Bucket]]:
    """Every bucket of the window for each owner, empty ones included."""
    assert window.start is not None
    assert window.end is not None
    boundaries = edges(window.start, window.end, unit, zone(zone_name), limit)
    if not boundaries:
        return {key: [] for key in keys}
    columns = owner_columns(owner)
    bucket = bucket_start(UsageRecord.created_at, boundaries, unit, zone_name)

    def raw(where: list[ColumnElement[bool]]) -> Select[Any]:
        return (
            select(
                *columns,
                bucket,
                UsageRecord.source,
                credit_sum(UsageRecord.credits),
                func.count(),
            )
            .where(owner_filter(owner, keys), *where)
            .group_by(*columns, bucket, UsageRecord.source)
        )

    statement: Any = raw(window.filters())
    # Tenants: whole hours from the rollup when no bucket boundary cuts an
    # hour (every zone with a whole-hour offset), the window's ends from the
    # records. Otherwise, and for users, from the records alone.
    cut = split(window, rollups.HOUR)
    if (
        owner is Owner.TENANT
        and cut.inner is not None
        and all(rollups.hour_of(b) == b for b in boundaries[1:-1])
    ):
        table, rollup_columns, clauses = rollup_filters(owner, keys, cut.inner)
        hour_bucket = bucket_start(table.c.hour, boundaries, unit, zone_name)
        statement = (
            select(
                *rollup_columns,
                hour_bucket,
                table.c.source,
                credit_sum(table.c.credits),
                cast(func.sum(table.c.records), BigInteger),
            )
            .where(*clauses)
            .group_by(*rollup_columns, hour_bucket, table.c.source)
        )
        edge = cut.edge_filter()
        if edge is not None:
            statement = union_all(statement, raw([edge]))
    sums: dict[Hashable, list[Summary]] = {
        key: [Summary() for _ in boundaries[:-1]] for key in keys
    }
    width = len(columns)
    for row in await session.execute(statement):
        index = bisect.bisect_right(boundaries, row[width]) - 1
        per_bucket = sums.get(key_of(owner, row))
        if per_bucket is not None:  # not a superset row (see _in)
            per_bucket[index].add(row[width + 1], row[width + 2], row[width + 3])
    return {
        key: [
            Bucket(start=boundaries[i], end=boundaries[i + 1], credits=summary)
            for i, summary in enumerate(per_bucket)
        ]
        for key, per_bucket in sums.items()
    }
