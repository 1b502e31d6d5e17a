"""Read-side SQL: every function answers for many owners in one statement.

These back the GraphQL DataLoaders, so a nested selection costs one statement
per level whatever the number of rows. Owners are tenants (`tenant_id`),
users (`(tenant_id, user_id)`) or interactions (`interaction_id`).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Select,
    Text,
    and_,
    bindparam,
    cast,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import (
    Interaction,
    Job,
    Tenant,
    TenantHourUsage,
    UsageRecord,
    User,
    UserDayUsage,
)
from service.db.sql import bucket_start, credit_sum
from service.db.timebuckets import edges, zone
from service.db.types import Credits
from service.usage import rollups
from service.usage.records import Source

T = TypeVar("T")
ZERO = Decimal(0)


class Owner(StrEnum):
    """What a set of usage records is grouped by."""

    TENANT = "tenant"
    USER = "user"
    INTERACTION = "interaction"


@dataclass(frozen=True)
class TimeWindow:
    """A half-open [start, end) filter on usage `created_at`; None is open."""

    start: datetime | None = None
    end: datetime | None = None

    @property
    def is_open(self) -> bool:
        """True when neither end is set."""
        return self.start is None and self.end is None

    def filters(self) -> list[ColumnElement[bool]]:
        """WHERE clauses for usage_records."""
        return _time_range(UsageRecord.created_at, self)


@dataclass
class Summary:
    """Credits per source, their exact total and the number of records."""

    by_source: dict[str, Decimal] = field(default_factory=dict)
    records: int = 0

    def add(self, source: str, credits: Decimal, count: int) -> None:
        """Fold one (source, sum, count) row in."""
        self.by_source[source] = self.by_source.get(source, ZERO) + credits
        self.records += count

    def of(self, source: Source) -> Decimal:
        """Credits from one source."""
        return self.by_source.get(source.value, ZERO)

    @property
    def total(self) -> Decimal:
        """Credits from every source."""
        return sum(self.by_source.values(), ZERO)


@dataclass(frozen=True, slots=True)
class InteractionRow:
    """A listed interaction: plain columns, no ORM instance (lists are long)."""

    id: str
    tenant_id: str
    user_id: str
    created_at: datetime

    def key(self, owner: Owner) -> Hashable:
        """The key of its tenant or user, as the page loaders use it."""
        return (self.tenant_id, self.user_id) if owner is Owner.USER else self.tenant_id


INTERACTION_COLUMNS = (
    Interaction.id,
    Interaction.tenant_id,
    Interaction.user_id,
    Interaction.created_at,
)


@dataclass(frozen=True)
class Bucket:
    """One time bucket [start, end) and its credits."""

    start: datetime
    end: datetime
    credits: Summary


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, with the size of the whole list when it was counted.

    A page read without counting (total None) knows from one extra row
    whether rows follow it (`more`).
    """

    items: list[T]
    total: int | None
    offset: int
    more: bool = False

    @property
    def counted(self) -> int:
        """The size of the whole list, for pages read with counting."""
        if self.total is None:
            raise ValueError("this page was read without counting its list")
        return self.total

    @property
    def has_next(self) -> bool:
        """Whether rows follow this page."""
        if self.total is None:
            return self.more
        return self.offset + len(self.items) < self.total


def _owner_columns(owner: Owner) -> list[Any]:
    """Usage-record columns naming the owner (the copies kept on each record)."""
    if owner is Owner.TENANT:
        return [UsageRecord.tenant_id]
    if owner is Owner.USER:
        return [UsageRecord.tenant_id, UsageRecord.user_id]
    return [UsageRecord.interaction_id]


def _interaction_owner_columns(owner: Owner) -> list[Any]:
    if owner is Owner.USER:
        return [Interaction.tenant_id, Interaction.user_id]
    return [Interaction.tenant_id]


def _in(columns: list[Any], keys: Sequence[Hashable]) -> ColumnElement[bool]:
    """Rows of the given owners, or a superset of them for (tenant, user) keys.

    For users, `tenant IN (...) AND user IN (...)` lets PostgreSQL read the
    (tenant_id, user_id, created_at) index directly (a row-value IN list turns
    into a bitmap OR over the heap). It is exact for one tenant; with several,
    callers drop the groups of owners they did not ask for.
    """
    if len(columns) > 1:
        tenants = sorted({key[0] for key in keys})  # type: ignore[index]
        users = sorted({key[1] for key in keys})  # type: ignore[index]
        return and_(columns[0].in_(tenants), columns[1].in_(users))
    condition: ColumnElement[bool] = columns[0].in_(list(keys))
    return condition


def _owner_filter(owner: Owner, keys: Sequence[Hashable]) -> ColumnElement[bool]:
    return _in(_owner_columns(owner), keys)


def _usage_from(_owner: Owner, statement: Select[Any]) -> Select[Any]:
    return statement.select_from(UsageRecord)


def _key(owner: Owner, row: Any) -> Hashable:
    return (row[0], row[1]) if owner is Owner.USER else row[0]


@dataclass(frozen=True)
class Split:
    """A window cut into whole rollup steps (`inner`) and raw ends (`edges`)."""

    inner: TimeWindow | None
    edges: list[TimeWindow]

    def edge_filter(self) -> ColumnElement[bool] | None:
        """Records inside the edges (None: there are none)."""
        ranges = [and_(*edge.filters()) for edge in self.edges]
        if not ranges:
            return None
        return ranges[0] if len(ranges) == 1 else or_(*ranges)


def split(window: TimeWindow, step: timedelta) -> Split:
    """Whole UTC hours or days of `window` (from a rollup) and the rest."""
    floor = rollups.hour_of if step == rollups.HOUR else rollups.day_of

    def ceil(instant: datetime) -> datetime:
        start = floor(instant)
        return start if start == instant else start + step

    inner_start = None if window.start is None else ceil(window.start)
    inner_end = None if window.end is None else floor(window.end)
    if inner_start is not None and inner_end is not None and inner_start >= inner_end:
        return Split(inner=None, edges=[window])
    edges = []
    if window.start is not None and inner_start != window.start:
        edges.append(TimeWindow(window.start, inner_start))
    if window.end is not None and inner_end != window.end:
        edges.append(TimeWindow(inner_end, window.end))
    return Split(inner=TimeWindow(inner_start, inner_end), edges=edges)


def _rollup_of(owner: Owner) -> tuple[Any, Any, timedelta]:
    """The rollup table for tenants or users, its time column and step."""
    if owner is Owner.TENANT:
        table = TenantHourUsage.__table__
        return table, table.c.hour, rollups.HOUR
    table = UserDayUsage.__table__
    return table, table.c.day, rollups.DAY


def _rollup_filters(
    owner: Owner, keys: Sequence[Hashable], inner: TimeWindow
) -> tuple[Any, list[Any], list[ColumnElement[bool]]]:
    """The rollup, its owner columns, and WHERE clauses for `inner`."""
    table, time, _ = _rollup_of(owner)
    names = ["tenant_id", "user_id"] if owner is Owner.USER else ["tenant_id"]
    columns = [table.c[name] for name in names]
    clauses = [_in(columns, keys), table.c.records > 0, *_time_range(time, inner)]
    return table, columns, clauses


def _union(parts: list[Any]) -> Any:
    """One SELECT, or the UNION ALL of several."""
    first, *rest = parts
    return union_all(first, *rest) if rest else first


def _time_range(column: Any, window: TimeWindow) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if window.start is not None:
        clauses.append(column >= window.start)
    if window.end is not None:
        clauses.append(column < window.end)
    return clauses


def _raw_sums(
    owner: Owner, keys: Sequence[Hashable], where: list[ColumnElement[bool]]
) -> Select[Any]:
    columns = _owner_columns(owner)
    return (
        select(
            *columns,
            UsageRecord.source,
            credit_sum(UsageRecord.credits),
            func.count(),
        )
        .where(_owner_filter(owner, keys), *where)
        .group_by(*columns, UsageRecord.source)
    )


async def credit_summaries(
    session: AsyncSession, owner: Owner, keys: Sequence[Hashable], window: TimeWindow
) -> dict[Hashable, Summary]:
    """Credits per source for each owner within the window.

    Tenants and users: whole hours (days) from the rollups, the ragged ends of
    the window from the records, in one statement.
    """
    if owner is Owner.INTERACTION:
        statement: Any = _raw_sums(owner, keys, window.filters())
    else:
        cut = split(window, _rollup_of(owner)[2])
        parts: list[Any] = []
        if cut.inner is not None:
            table, columns, clauses = _rollup_filters(owner, keys, cut.inner)
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
            parts.append(_raw_sums(owner, keys, [edge]))
        statement = _union(parts)
    result: dict[Hashable, Summary] = defaultdict(Summary)
    width = 2 if owner is Owner.USER else 1
    for row in await session.execute(statement):
        result[_key(owner, row)].add(row[width], row[width + 1], row[width + 2])
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
    columns = _owner_columns(owner)
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
            .where(_owner_filter(owner, keys), *where)
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
        table, rollup_columns, clauses = _rollup_filters(owner, keys, cut.inner)
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
        per_bucket = sums.get(_key(owner, row))
        if per_bucket is not None:  # not a superset row (see _in)
            per_bucket[index].add(row[width + 1], row[width + 2], row[width + 3])
    return {
        key: [
            Bucket(start=boundaries[i], end=boundaries[i + 1], credits=summary)
            for i, summary in enumerate(per_bucket)
        ]
        for key, per_bucket in sums.items()
    }


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
    session: AsyncSession, interaction_ids: Sequence[str], source: str | None
) -> dict[str, list[UsageRecord]]:
    """Usage records of each interaction, oldest first."""
    statement = select(UsageRecord).where(
        UsageRecord.interaction_id.in_(list(interaction_ids))
    )
    if source is not None:
        statement = statement.where(UsageRecord.source == source)
    statement = statement.order_by(UsageRecord.created_at, UsageRecord.external_id)
    result: dict[str, list[UsageRecord]] = defaultdict(list)
    for record in (await session.execute(statement)).scalars():
        result[record.interaction_id].append(record)
    return result


class UserOrder(StrEnum):
    """How a tenant's users are listed."""

    CREDITS_DESC = "CREDITS_DESC"
    ID_ASC = "ID_ASC"


async def users_pages(
    session: AsyncSession,
    tenant_ids: Sequence[str],
    window: TimeWindow,
    order: UserOrder,
    first: int,
    offset: int,
) -> dict[str, Page[tuple[str, str]]]:
    """Each tenant's users (with usage in the window, or all when it is open).

    Credits per user come from the user-day rollup for the window's whole
    days and from the records for its ragged ends.
    """
    cut = split(window, rollups.DAY)
    parts: list[Any] = []
    if cut.inner is not None:
        table = UserDayUsage.__table__
        clauses = [
            table.c.tenant_id.in_(list(tenant_ids)),
            table.c.records > 0,
            *_time_range(table.c.day, cut.inner),
        ]
        parts.append(
            select(table.c.tenant_id, table.c.user_id, table.c.credits).where(*clauses)
        )
    edge = cut.edge_filter()
    if edge is not None:
        parts.append(
            select(
                UsageRecord.tenant_id, UsageRecord.user_id, UsageRecord.credits
            ).where(UsageRecord.tenant_id.in_(list(tenant_ids)), edge)
        )
    rows = _union(parts).subquery("rows")
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


async def interactions_pages(
    session: AsyncSession,
    owner: Owner,
    keys: Sequence[Hashable],
    window: TimeWindow,
    first: int,
    offset: int,
) -> dict[Hashable, Page[InteractionRow]]:
    """Each owner's interactions, newest usage first (see contract.md).

    On PostgreSQL a page of a range is read per owner (LATERAL, LIMIT), which
    stops at the page instead of ranking every interaction of the owner; its
    total is then left to `interaction_counts`, read only when asked for.
    """
    if not window.is_open and session.get_bind().dialect.name == "postgresql":
        return await _interaction_pages_lateral(
            session, owner, keys, window, first, offset
        )
    columns = _interaction_owner_columns(owner)
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
            .where(_in(columns, keys))
            .subquery("base")
        )
    else:
        agg = (
            select(
                UsageRecord.interaction_id.label("interaction_id"),
                func.max(UsageRecord.created_at).label("last_usage"),
            )
            .where(_owner_filter(owner, keys), *window.filters())
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
            .where(_in(columns, keys))
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
            {_key(owner, row): row[-1] for row in await session.execute(count)}
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
        columns = _interaction_owner_columns(owner)
        statement = (
            select(*columns, func.count()).where(_in(columns, keys)).group_by(*columns)
        )
    else:
        columns = _owner_columns(owner)
        statement = (
            select(*columns, func.count(UsageRecord.interaction_id.distinct()))
            .where(_owner_filter(owner, keys), *window.filters())
            .group_by(*columns)
        )
    wanted = set(keys)
    counts = {_key(owner, row): row[-1] for row in await session.execute(statement)}
    return {key: count for key, count in counts.items() if key in wanted}


async def jobs_by_id(session: AsyncSession, ids: Sequence[Any]) -> dict[Any, Job]:
    """Jobs by id."""
    rows = await session.execute(select(Job).where(Job.id.in_(list(ids))))
    return {row.id: row for row in rows.scalars()}
