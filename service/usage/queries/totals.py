"""Credit totals and time buckets per owner, one statement per batch of owners.

Tenants read whole UTC hours from `usage_tenant_hours`; users whole ISO weeks
(from Monday 00:00 UTC) from `usage_user_weeks`, the whole UTC days beside
them from `usage_user_days` and whole hours from `usage_user_hours`; only what
is left of a window (less than an hour at each end) comes from the records.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Hashable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Select,
    Text,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    true,
)

from service.db.models import Interaction, InteractionDayUsage, UsageRecord
from service.db.session import Reads, dialect_of
from service.db.sql import EdgeParameters, bucket_start, credit_sum
from service.db.timebuckets import edges, zone
from service.usage import rollups
from service.usage.queries._sql import (
    key_of,
    owner_columns,
    owner_filter,
    raw_sums,
    union,
)
from service.usage.queries.models import (
    Bucket,
    Owner,
    Summary,
    TimeWindow,
    time_range,
)
from service.usage.queries.windows import (
    aligned,
    rollup_filters,
    rollup_of,
    split,
    steps_of,
    tile,
)

MAX_CUT_HOURS = 400


async def credit_summaries(
    session: Reads,
    owner: Owner,
    keys: Sequence[Hashable],
    window: TimeWindow,
    *,
    tenant: str | None = None,
) -> dict[Hashable, Summary]:
    """Credits per source for each owner within the window.

    Tenants: whole UTC hours from their rollup; users: whole ISO weeks, then
    whole UTC days and hours beside them; interactions: whole UTC days; the rest of the
    window (less than an hour, or a day for interactions, at each end) from
    the records, in one statement.
    Interactions only of `tenant`, if set.
    """
    if owner is Owner.INTERACTION:
        postgresql = dialect_of(session) == "postgresql"
        statement: Any = _interaction_sums(keys, window, tenant, postgresql)
    else:
        tiling = tile(window, steps_of(owner))
        parts: list[Any] = []
        for step, whole in tiling.each_part():
            table, columns, clauses = rollup_filters(owner, keys, step, whole)
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
        edge = tiling.raw_filter()
        if edge is not None:
            parts.append(raw_sums(owner, keys, [edge]))
        statement = union(parts)
    result: dict[Hashable, Summary] = defaultdict(Summary)
    width = 2 if owner is Owner.USER else 1
    for row in await session.execute(statement):
        result[key_of(owner, row)].add(row[width], row[width + 1], row[width + 2])
    return result


def _interaction_sums(
    keys: Sequence[Hashable],
    window: TimeWindow,
    tenant: str | None,
    postgresql: bool,
) -> Any:
    """Whole UTC days from usage_interaction_days, each ragged end of the
    window from the records: a part of its own, an index range per
    interaction on (interaction_id, created_at), so it reads only the
    records of those interactions inside that end (on PostgreSQL a LATERAL
    per interaction: given an IN list, the planner would rather scan every
    record of the end by time)."""
    cut = split(window, rollups.DAY)
    parts: list[Any] = []
    if cut.inner is not None:
        table = InteractionDayUsage.__table__
        clauses = [
            table.c.interaction_id.in_(list(keys)),
            *time_range(table.c.day, cut.inner),
        ]
        if tenant is not None:
            # The rollup counts every record naming the interaction; the
            # records of a registered one all carry its owner.
            clauses.append(
                table.c.interaction_id.in_(
                    select(Interaction.id).where(
                        Interaction.id.in_(list(keys)), Interaction.tenant_id == tenant
                    )
                )
            )
        parts.append(
            select(
                table.c.interaction_id,
                table.c.source,
                credit_sum(table.c.credits),
                cast(func.sum(table.c.records), BigInteger),
            )
            .where(*clauses)
            .group_by(table.c.interaction_id, table.c.source)
        )
    for n, edge in enumerate(cut.edges):
        where = edge.filters()
        if tenant is not None:
            where.append(UsageRecord.tenant_id == tenant)
        if not postgresql:
            parts.append(raw_sums(Owner.INTERACTION, keys, where))
            continue
        ids = (
            func.unnest(bindparam(f"edge_ids_{n}", list(keys), ARRAY(Text)))
            .table_valued("id")
            .render_derived(name=f"edge_keys_{n}")
        )
        sums = (
            select(
                UsageRecord.source.label("source"),
                credit_sum(UsageRecord.credits).label("credits"),
                func.count().label("records"),
            )
            .where(UsageRecord.interaction_id == ids.c.id, *where)
            .group_by(UsageRecord.source)
            .lateral(f"edge_{n}")
        )
        parts.append(
            select(ids.c.id, sums.c.source, sums.c.credits, sums.c.records)
            .select_from(ids)
            .join(sums, true())
        )
    return union(parts)


async def usage_buckets(
    session: Reads,
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
    parameters = EdgeParameters(boundaries)
    # Grouped by the output column's name: SQLite computes the bucket once
    # per row (the same expression written twice has parameters of its own).
    by_bucket: ColumnElement[Any] = literal_column("bucket")

    def raw(where: list[ColumnElement[bool]]) -> Select[Any]:
        bucket = bucket_start(UsageRecord.created_at, parameters, unit, zone_name)
        return (
            select(
                *columns,
                bucket.label("bucket"),
                UsageRecord.source,
                credit_sum(UsageRecord.credits),
                func.count(),
            )
            .where(owner_filter(owner, keys), *where)
            .group_by(*columns, by_bucket, UsageRecord.source)
        )

    # Whole UTC hours (users: days, then hours) from the rollups where no
    # bucket boundary cuts a rollup row (days only when every bucket starts
    # at UTC midnight; hours in every zone whose offset is a whole hour), the
    # window's ends from the records. Where the offset is not a whole hour,
    # buckets of a day or longer take the hours from the rollup but the one
    # each boundary cuts, which is read from the records (up to
    # MAX_CUT_HOURS of them: SQLite parses an OR of ranges as a tree at most
    # 1,000 deep); hour buckets there are read from the records alone.
    interior = boundaries[1:-1]
    steps = [step for step in steps_of(owner) if aligned(interior, step)]
    cuts: list[datetime] = []
    if not steps and unit != "hour" and len(interior) <= MAX_CUT_HOURS:
        steps, cuts = [rollups.HOUR], interior
    tiling = tile(window, steps, cuts)
    parts: list[Any] = []
    for step, whole in tiling.each_part():
        table, rollup_columns, clauses = rollup_filters(
            owner, keys, step, whole, holes=tiling.holes.get(step, ())
        )
        _, time = rollup_of(owner, step)
        rollup_bucket = bucket_start(time, parameters, unit, zone_name)
        parts.append(
            select(
                *rollup_columns,
                rollup_bucket.label("bucket"),
                table.c.source,
                credit_sum(table.c.credits),
                cast(func.sum(table.c.records), BigInteger),
            )
            .where(*clauses)
            .group_by(*rollup_columns, by_bucket, table.c.source)
        )
    edge = tiling.raw_filter()
    if edge is not None:
        parts.append(raw([edge]))
    statement = union(parts)
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
