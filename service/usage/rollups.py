"""Rollups of usage_records: per tenant per UTC hour, per user per UTC hour,
day and ISO week (from Monday 00:00 UTC), per interaction per UTC day.

`usage_tenant_hours`, `usage_user_hours`, `usage_user_days` and
`usage_user_weeks` hold, per source, the exact credit sum and the number of
records of the registered usage in each hour, day or week;
`usage_interaction_days` the same for every record naming an interaction
(registered or not: it is keyed by the interaction, so a re-registration
moves nothing in it). They are written only here, by `UsageService`, in the
transaction that inserts the records or moves an interaction, under the same
per-interaction lock as the owner copied onto each record, so they never
drift from the records (tests/usage/test_totals_property.py recomputes every
figure).

Readers (service.usage.queries) take whole hours or days of a range from them
and the ragged ends of the range from the records themselves.

PostgreSQL adds deltas with `INSERT ... ON CONFLICT DO UPDATE`, keys in one
sorted order so concurrent writers cannot deadlock. SQLite, whose writers are
serialised, reads the rows, adds in Python and writes the sums back (its
credits are padded text, see service.db.types).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, select, text, tuple_
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.direct import Direct
from service.db.models import (
    InteractionDayUsage,
    TenantHourUsage,
    UsageRecord,
    UserDayUsage,
    UserHourUsage,
    UserWeekUsage,
)
from service.usage.records import LOOKUP_CHUNK, chunks

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WEEK = timedelta(days=7)

TenantHourKey = tuple[str, datetime, str]  # tenant, hour, source
UserDayKey = tuple[str, datetime, str, str]  # tenant, day, user, source
UserWeekKey = tuple[str, datetime, str, str]  # tenant, week, user, source
UserHourKey = tuple[str, datetime, str, str]  # tenant, hour, user, source
InteractionDayKey = tuple[str, datetime, str]  # interaction, day, source


def hour_of(instant: datetime) -> datetime:
    """The UTC hour holding `instant`."""
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def day_of(instant: datetime) -> datetime:
    """The UTC day holding `instant`."""
    return instant.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def week_of(instant: datetime) -> datetime:
    """The ISO week holding `instant`: from Monday 00:00 UTC (PostgreSQL's
    date_trunc('week', ..., 'UTC'))."""
    day = day_of(instant)
    return day - timedelta(days=day.weekday())


def floor_of(step: timedelta) -> Callable[[datetime], datetime]:
    """The start of the rollup step (hour, day or week) holding an instant."""
    if step == HOUR:
        return hour_of
    if step == DAY:
        return day_of
    assert step == WEEK
    return week_of


class Deltas:
    """Changes to both rollups, summed per key."""

    def __init__(self) -> None:
        self.tenant_hours: dict[TenantHourKey, list[Any]] = defaultdict(
            lambda: [Decimal(0), 0]
        )
        self.user_days: dict[UserDayKey, list[Any]] = defaultdict(
            lambda: [Decimal(0), 0]
        )
        self.user_hours: dict[UserHourKey, list[Any]] = defaultdict(
            lambda: [Decimal(0), 0]
        )
        self.user_weeks: dict[UserWeekKey, list[Any]] = defaultdict(
            lambda: [Decimal(0), 0]
        )
        self.interaction_days: dict[InteractionDayKey, list[Any]] = defaultdict(
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
        hour = hour_of(created_at)
        for entry in (
            self.tenant_hours[(tenant_id, hour, source)],
            self.user_days[(tenant_id, day_of(created_at), user_id, source)],
            self.user_hours[(tenant_id, hour, user_id, source)],
            self.user_weeks[(tenant_id, week_of(created_at), user_id, source)],
        ):
            entry[0] += credits * sign
            entry[1] += sign

    def add_interaction(
        self, interaction_id: str, created_at: datetime, source: str, credits: Decimal
    ) -> None:
        """Count one new record in its interaction's day rollup."""
        entry = self.interaction_days[(interaction_id, day_of(created_at), source)]
        entry[0] += credits
        entry[1] += 1

    def __bool__(self) -> bool:
        return bool(
            self.tenant_hours
            or self.user_days
            or self.user_hours
            or self.user_weeks
            or self.interaction_days
        )


@dataclass(frozen=True)
class _Rollup:
    """One rollup table: its key columns (PostgreSQL array types) and how a
    record's key is computed in SQL from usage_records."""

    model: type[
        TenantHourUsage
        | UserDayUsage
        | UserHourUsage
        | UserWeekUsage
        | InteractionDayUsage
    ]
    keys: tuple[tuple[str, str], ...]
    from_record: str
    counted: str  # which records it counts (SQL condition on usage_records)

    @property
    def table(self) -> str:
        return self.model.__tablename__

    def upsert(self, select_sql: str) -> str:
        """Add the (key..., credits, records) rows of `select_sql` (PostgreSQL)."""
        keys = ", ".join(name for name, _ in self.keys)
        return (
            f"INSERT INTO {self.table} ({keys}, credits, records) {select_sql}"
            f" ON CONFLICT ({keys}) DO UPDATE SET"
            f" credits = {self.table}.credits + excluded.credits,"
            f" records = {self.table}.records + excluded.records"
        )

    def from_records(self, where: str) -> str:
        """Upsert of the sums of the registered records matching `where`."""
        order = ", ".join(str(n + 1) for n in range(len(self.keys)))
        return self.upsert(
            f"SELECT {self.from_record}, sum(credits), count(*) FROM usage_records"
            f" WHERE {self.counted} AND {where}"
            f" GROUP BY {order} ORDER BY {order}"
        )


# Always in this order, keys sorted within each: every writer takes the row
# locks in the same order.
_ROLLUPS = (
    _Rollup(
        TenantHourUsage,
        (("tenant_id", "text"), ("hour", "timestamptz"), ("source", "text")),
        "tenant_id, date_trunc('hour', created_at, 'UTC'), source",
        "tenant_id IS NOT NULL",
    ),
    _Rollup(
        UserDayUsage,
        (
            ("tenant_id", "text"),
            ("day", "timestamptz"),
            ("user_id", "text"),
            ("source", "text"),
        ),
        "tenant_id, date_trunc('day', created_at, 'UTC'), user_id, source",
        "tenant_id IS NOT NULL",
    ),
    _Rollup(
        UserHourUsage,
        (
            ("tenant_id", "text"),
            ("hour", "timestamptz"),
            ("user_id", "text"),
            ("source", "text"),
        ),
        "tenant_id, date_trunc('hour', created_at, 'UTC'), user_id, source",
        "tenant_id IS NOT NULL",
    ),
    _Rollup(
        UserWeekUsage,
        (
            ("tenant_id", "text"),
            ("week", "timestamptz"),
            ("user_id", "text"),
            ("source", "text"),
        ),
        "tenant_id, date_trunc('week', created_at, 'UTC'), user_id, source",
        "tenant_id IS NOT NULL",
    ),
    _Rollup(
        InteractionDayUsage,
        (("interaction_id", "text"), ("day", "timestamptz"), ("source", "text")),
        "interaction_id, date_trunc('day', created_at, 'UTC'), source",
        "interaction_id IS NOT NULL",
    ),
)
# The rollup tables, in that order (rebuild and service.usage.statistics
# analyze them).
TABLES = tuple(rollup.table for rollup in _ROLLUPS)


async def apply(session: AsyncSession, deltas: Deltas) -> None:
    """Add the deltas to the rollup rows (creating missing ones)."""
    if not deltas:
        return
    postgresql = session.get_bind().dialect.name == "postgresql"
    changes_per_rollup: tuple[dict[Any, list[Any]], ...] = (
        deltas.tenant_hours,
        deltas.user_days,
        deltas.user_hours,
        deltas.user_weeks,
        deltas.interaction_days,
    )
    for rollup, changes in zip(_ROLLUPS, changes_per_rollup, strict=True):
        if not changes:
            continue
        if postgresql:
            await _add_postgresql(session, rollup, changes)
        else:
            await _read_add_write(session, rollup, changes)


async def _add_postgresql(
    session: AsyncSession, rollup: _Rollup, changes: dict[Any, list[Any]]
) -> None:
    items = sorted(changes.items())
    arrays = [f"CAST(:k{n} AS {kind}[])" for n, (_, kind) in enumerate(rollup.keys)]
    arrays += ["CAST(:credits AS numeric[])", "CAST(:records AS bigint[])"]
    order = ", ".join(str(n + 1) for n in range(len(rollup.keys)))
    params: dict[str, list[Any]] = {
        f"k{n}": [key[n] for key, _ in items] for n in range(len(rollup.keys))
    }
    params["credits"] = [value[0] for _, value in items]
    params["records"] = [value[1] for _, value in items]
    select_sql = f"SELECT * FROM unnest({', '.join(arrays)}) ORDER BY {order}"
    await session.execute(text(rollup.upsert(select_sql)), params)


async def _read_add_write(
    session: AsyncSession, rollup: _Rollup, changes: dict[Any, list[Any]]
) -> None:
    """SQLite: read the rows, add exactly in Python, write the sums back."""
    table = rollup.model.__table__
    assert isinstance(table, Table)
    names = [name for name, _ in rollup.keys]
    columns = [table.c[name] for name in names]
    keys = sorted(changes)
    current: dict[Any, tuple[Decimal, int]] = {}
    for chunk in chunks(keys, LOOKUP_CHUNK):
        rows = await session.execute(
            select(*columns, table.c.credits, table.c.records).where(
                tuple_(*columns).in_(list(chunk))
            )
        )
        current.update({tuple(row[:-2]): (row[-2], row[-1]) for row in rows})
    values = []
    for key in keys:
        credits, records = current.get(key, (Decimal(0), 0))
        delta = changes[key]
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


def _all_from_inserted() -> Direct:
    """The usage spans of the interactions `:span_ids` widened to `:firsts`
    and `:lasts`, and every rollup's upsert of the sums of the records whose
    ids are `:ids`, in one statement: one round trip, not five.

    Each part is a data-modifying CTE; the outer SELECT reads them in order
    (its scalar subqueries run in target-list order, each reading its CTE to
    the end), so the row locks are taken in the order of separate statements:
    interactions first (as by re-registration), then `_ROLLUPS` as by `apply`.
    A batch's interaction rows are already locked in id order by then
    (UsageRepository.touch_usage_span).
    """
    where = "id = ANY(CAST(:ids AS uuid[]))"
    span = (
        "UPDATE interactions AS i"
        " SET last_usage_at = GREATEST(i.last_usage_at, v.last),"
        " first_usage_at = LEAST(i.first_usage_at, v.first)"
        " FROM unnest(CAST(:span_ids AS text[]), CAST(:lasts AS timestamptz[]),"
        " CAST(:firsts AS timestamptz[])) AS v(id, last, first)"
        " WHERE i.id = v.id AND (i.last_usage_at IS NULL"
        " OR i.last_usage_at < v.last OR i.first_usage_at IS NULL"
        " OR i.first_usage_at > v.first)"
    )
    parts = [f"span AS ({span} RETURNING 1)"] + [
        f"r{n} AS ({rollup.from_records(where)} RETURNING 1)"
        for n, rollup in enumerate(_ROLLUPS)
    ]
    names = ["span"] + [f"r{n}" for n in range(len(_ROLLUPS))]
    counts = ", ".join(f"(SELECT count(*) FROM {name})" for name in names)
    return Direct(text(f"WITH {', '.join(parts)} SELECT {counts}"))


_ALL_FROM_INSERTED = _all_from_inserted()


async def add_inserted(
    session: AsyncSession,
    rows: Sequence[dict[str, Any]],
    earliest: dict[str, datetime],
    latest: dict[str, datetime],
) -> None:
    """Count records this transaction inserted into their owners' and
    interactions' rollups.

    On PostgreSQL the sums are taken from the inserted rows by the database
    (by primary key), which keeps the work off the API process's one core, and
    the same statement widens the usage spans of the interactions in `latest`
    to `earliest` and `latest` (on SQLite, UsageRepository.touch_usage_span
    does that, and ignores them here).
    """
    if session.get_bind().dialect.name == "postgresql":
        # Each rollup counts only its own rows of these (`counted`).
        ids = [
            row["id"]
            for row in rows
            if row["tenant_id"] is not None or row["interaction_id"] is not None
        ]
        if ids:
            spans = sorted(latest)
            await _ALL_FROM_INSERTED.run(
                session,
                {
                    "ids": ids,
                    "span_ids": spans,
                    "lasts": [latest[i] for i in spans],
                    "firsts": [earliest[i] for i in spans],
                },
            )
        return
    registered = [row for row in rows if row["tenant_id"] is not None]
    named = [row for row in rows if row["interaction_id"] is not None]
    deltas = Deltas()
    for row in registered:
        deltas.add(
            row["tenant_id"],
            row["user_id"],
            row["created_at"],
            row["source"],
            row["credits"],
        )
    for row in named:
        deltas.add_interaction(
            row["interaction_id"], row["created_at"], row["source"], row["credits"]
        )
    await apply(session, deltas)


# An interaction's first and last usage times, from its records (records are
# never deleted, so an interaction without records keeps NULL). PostgreSQL:
# one pass over the records instead of two probes per interaction.
_USAGE_SPAN_POSTGRESQL = (
    "UPDATE interactions AS i SET first_usage_at = s.f, last_usage_at = s.l"
    " FROM (SELECT interaction_id, min(created_at) AS f, max(created_at) AS l"
    " FROM usage_records WHERE interaction_id IS NOT NULL GROUP BY 1) AS s"
    " WHERE i.id = s.interaction_id AND (i.first_usage_at IS DISTINCT FROM s.f"
    " OR i.last_usage_at IS DISTINCT FROM s.l)"
)
_USAGE_SPAN = (
    "UPDATE interactions SET"
    " first_usage_at = (SELECT min(r.created_at) FROM usage_records AS r"
    " WHERE r.interaction_id = interactions.id),"
    " last_usage_at = (SELECT max(r.created_at) FROM usage_records AS r"
    " WHERE r.interaction_id = interactions.id)"
)


async def rebuild(session: AsyncSession) -> None:
    """Recompute every rollup, and the interactions' first and last usage
    times, from the records (after a bulk load).

    PostgreSQL: then ANALYZE the tables it rewrote. The dashboard's plans rest
    on the rollups' statistics: without them (autovacuum not round yet) the
    largest tenant's user ranking at 10M records sorted its 100k user-days on
    disk instead of hashing them, 47 -> 119 ms (bench, EXPLAIN ANALYZE).
    """
    for rollup in _ROLLUPS:
        await session.execute(text(f"DELETE FROM {rollup.table}"))
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text(_USAGE_SPAN_POSTGRESQL))
        for rollup in _ROLLUPS:
            await session.execute(text(rollup.from_records("true")))
        rewritten = ", ".join(["interactions", *TABLES])
        await session.execute(text(f"ANALYZE {rewritten}"))
        return
    await session.execute(text(_USAGE_SPAN))
    deltas = Deltas()
    rows = await session.stream(
        select(
            UsageRecord.tenant_id,
            UsageRecord.user_id,
            UsageRecord.created_at,
            UsageRecord.source,
            UsageRecord.credits,
            UsageRecord.interaction_id,
        )
    )
    async for tenant_id, user_id, created_at, source, credits, interaction in rows:
        if tenant_id is not None:
            assert user_id is not None
            deltas.add(tenant_id, user_id, created_at, source, credits)
        if interaction is not None:
            deltas.add_interaction(interaction, created_at, source, credits)
    await apply(session, deltas)
