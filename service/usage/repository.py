"""Write-side SQL for the ledger. Only flushes; never commits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    Table,
    Text,
    any_,
    bindparam,
    case,
    func,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.base import utcnow
from service.db.direct import Direct
from service.db.models import Interaction, Tenant, UsageRecord, User
from service.db.sql import text_pairs
from service.usage import rollups
from service.usage.queries.models import InteractionRow
from service.usage.records import LOOKUP_CHUNK, StoredRecord, chunks


@dataclass(frozen=True)
class _Statements:
    """The registration's statements, built once per dialect (Core, not ORM
    units of work: SQLAlchemy caches their compiled form by the statement)."""

    tenant: Direct
    user: Direct
    interaction: Direct
    lock_interaction: Direct


def _statements(module: Any, for_update: bool) -> _Statements:
    tenants, users, interactions = (
        Tenant.__table__,
        User.__table__,
        Interaction.__table__,
    )
    assert isinstance(tenants, Table)
    assert isinstance(users, Table)
    assert isinstance(interactions, Table)
    now = bindparam("now", type_=tenants.c.created_at.type)
    tenant = (
        module.insert(tenants)
        .values(id=bindparam("tenant_id"), created_at=now)
        .on_conflict_do_nothing(index_elements=["id"])
    )
    user = (
        module.insert(users)
        .values(
            tenant_id=bindparam("tenant_id"), id=bindparam("user_id"), created_at=now
        )
        .on_conflict_do_nothing(index_elements=["tenant_id", "id"])
    )
    interaction = (
        module.insert(interactions)
        .values(
            id=bindparam("id"),
            tenant_id=bindparam("tenant_id"),
            user_id=bindparam("user_id"),
            created_at=bindparam("created_at", type_=interactions.c.created_at.type),
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(interactions.c.id)
    )
    lock = select(
        interactions.c.id,
        interactions.c.tenant_id,
        interactions.c.user_id,
        interactions.c.created_at,
    ).where(interactions.c.id == bindparam("id"))
    if for_update:
        lock = lock.with_for_update()
    return _Statements(Direct(tenant), Direct(user), Direct(interaction), Direct(lock))


_POSTGRESQL = _statements(postgresql, for_update=True)
_SQLITE = _statements(sqlite, for_update=False)


# Built once (text() parses its bind parameters; select() builds its
# expression tree): the record path runs these on every write.
_LOCK_MIXED = Direct(
    text(
        "SELECT CASE WHEN e THEN pg_advisory_xact_lock(k)::text"
        " ELSE pg_advisory_xact_lock_shared(k)::text END FROM ("
        " SELECT hashtextextended(x, 0) AS k,"
        " bool_or(x = ANY(CAST(:exclusive AS text[]))) AS e"
        " FROM unnest(CAST(:ids AS text[])) AS x"
        " GROUP BY 1 ORDER BY 1) AS keys"
    )
)
_LOCK_SHARED, _LOCK_EXCLUSIVE = (
    Direct(
        text(
            f"SELECT {function}(k) FROM ("
            " SELECT DISTINCT hashtextextended(x, 0) AS k"
            " FROM unnest(CAST(:ids AS text[])) AS x ORDER BY 1) AS keys"
        )
    )
    for function in ("pg_advisory_xact_lock_shared", "pg_advisory_xact_lock")
)
# PostgreSQL: one array parameter (an expanding IN renders its SQL anew for
# every call, about 80 us more per statement); SQLite has no arrays.
_OWNERS = {
    "postgresql": Direct(
        select(Interaction.id, Interaction.tenant_id, Interaction.user_id).where(
            Interaction.id == any_(bindparam("ids", type_=ARRAY(Text)))
        )
    ),
    "sqlite": Direct(
        select(Interaction.id, Interaction.tenant_id, Interaction.user_id).where(
            Interaction.id.in_(bindparam("ids", expanding=True))
        )
    ),
}
# Interactions among :ids with usage written by a key bound to another tenant.
_PINNED = {
    dialect: Direct(
        select(UsageRecord.interaction_id)
        .where(
            ids,
            UsageRecord.writer_tenant_id.is_not(None),
            UsageRecord.writer_tenant_id != bindparam("tenant_id"),
        )
        .distinct()
    )
    for dialect, ids in (
        (
            "postgresql",
            UsageRecord.interaction_id == any_(bindparam("ids", type_=ARRAY(Text))),
        ),
        ("sqlite", UsageRecord.interaction_id.in_(bindparam("ids", expanding=True))),
    )
}
# A redelivery's stored records (PostgreSQL: the keys as two arrays).
_RECORDS_BY_KEY = select(UsageRecord).where(
    tuple_(UsageRecord.source, UsageRecord.external_id).in_(
        text_pairs("sources", "external_ids")
    )
)
_LOCK_SPAN_ROWS = Direct(
    text(
        "SELECT 1 FROM interactions"
        " WHERE id = ANY(CAST(:ids AS text[])) ORDER BY id FOR UPDATE"
    )
)
# PostgreSQL: a batch of records as one array per column (one statement and
# parameter list for any batch size, bound by asyncpg in C), inserted in the
# arrays' order (the caller sorts them by key, see insert_records).
_RECORD_COLUMNS = (
    ("id", "uuid"),
    ("source", "text"),
    ("external_id", "text"),
    ("interaction_id", "text"),
    ("credits", "numeric"),
    ("created_at", "timestamptz"),
    ("received_at", "timestamptz"),
    ("tenant_id", "text"),
    ("user_id", "text"),
    ("writer_tenant_id", "text"),
)
_INSERT_RECORDS = Direct(
    text(
        f"INSERT INTO usage_records ({', '.join(name for name, _ in _RECORD_COLUMNS)})"
        " SELECT * FROM unnest("
        + ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in _RECORD_COLUMNS)
        + ") ON CONFLICT (source, external_id) DO NOTHING"
        " RETURNING source, external_id"
    )
)
# The records of one interaction, for (re-)attribution to its owner.
_RECORDS_OF_INTERACTION = Direct(
    select(
        UsageRecord.tenant_id,
        UsageRecord.user_id,
        UsageRecord.created_at,
        UsageRecord.source,
        UsageRecord.credits,
        UsageRecord.id,
        UsageRecord.external_id,
        UsageRecord.received_at,
        UsageRecord.writer_tenant_id,
    ).where(UsageRecord.interaction_id == bindparam("interaction_id"))
)


class UsageRepository:
    """SQL for registering interactions and inserting usage records."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name

    def _insert(self, table: Any) -> Any:
        module = postgresql if self._dialect() == "postgresql" else sqlite
        return module.insert(table)

    def _statements(self) -> _Statements:
        return _POSTGRESQL if self._dialect() == "postgresql" else _SQLITE

    async def ensure_user(self, tenant_id: str, user_id: str) -> None:
        """Create the tenant and user rows unless they exist."""
        statements = self._statements()
        params = {"tenant_id": tenant_id, "user_id": user_id, "now": utcnow()}
        await statements.tenant.run(self.session, params)
        await statements.user.run(self.session, params)

    async def lock_interaction(self, interaction_id: str) -> InteractionRow | None:
        """The interaction row, locked for update on PostgreSQL."""
        rows = await self._statements().lock_interaction.rows(
            self.session, {"id": interaction_id}
        )
        return InteractionRow(*rows[0]) if rows else None

    async def insert_interaction(
        self, interaction_id: str, tenant_id: str, user_id: str, created_at: datetime
    ) -> bool:
        """Insert unless it exists; True when this call created it."""
        rows = await self._statements().interaction.rows(
            self.session,
            {
                "id": interaction_id,
                "tenant_id": tenant_id,
                "user_id": user_id,
                "created_at": created_at,
                "now": utcnow(),
            },
        )
        return bool(rows)

    async def move_interaction(
        self,
        interaction_id: str,
        tenant_id: str,
        user_id: str,
        created_at: datetime | None,
    ) -> None:
        """Point the interaction (and so all its usage) at another tenant/user."""
        values: dict[str, Any] = {
            "tenant_id": tenant_id,
            "user_id": user_id,
            "updated_at": utcnow(),
        }
        if created_at is not None:
            values["created_at"] = created_at
        await self.session.execute(
            update(Interaction).where(Interaction.id == interaction_id).values(**values)
        )

    async def pinned_elsewhere(
        self, interaction_ids: Sequence[str], tenant_id: str
    ) -> set[str]:
        """Which of `interaction_ids` have usage written by a key bound to
        another tenant (pins, while they are unregistered)."""
        found: set[str] = set()
        for chunk in chunks(sorted(set(interaction_ids)), LOOKUP_CHUNK):
            rows = await _PINNED[self._dialect()].rows(
                self.session, {"ids": chunk, "tenant_id": tenant_id}
            )
            found.update(row[0] for row in rows if row[0] is not None)
        return found

    async def lock_interactions(
        self,
        interaction_ids: Sequence[str],
        *,
        shared: bool = False,
        exclusive: Sequence[str] = (),
    ) -> None:
        """Per-interaction transaction locks (PostgreSQL), taken in one fixed order.

        Record inserts take them shared, (re-)registrations exclusive: a
        record's copy of its owner cannot miss a concurrent registration, while
        batches for the same interactions still run side by side. With
        `shared`, the ids in `exclusive` are still locked exclusively (a bound
        key's usage on an unregistered interaction: two tenants' keys must not
        both pin it). SQLite needs none: BEGIN IMMEDIATE serialises writers.
        """
        if self._dialect() != "postgresql" or not interaction_ids:
            return
        if shared and exclusive:
            await _LOCK_MIXED.run(
                self.session,
                {"ids": list(interaction_ids), "exclusive": list(exclusive)},
            )
            return
        await (_LOCK_SHARED if shared else _LOCK_EXCLUSIVE).run(
            self.session, {"ids": list(interaction_ids)}
        )

    async def interaction_owners(
        self, interaction_ids: Sequence[str]
    ) -> dict[str, tuple[str, str]]:
        """(tenant, user) of every registered interaction among `interaction_ids`."""
        found: dict[str, tuple[str, str]] = {}
        for chunk in chunks(sorted(set(interaction_ids)), LOOKUP_CHUNK):
            rows = await _OWNERS[self._dialect()].rows(self.session, {"ids": chunk})
            found.update({row[0]: (row[1], row[2]) for row in rows})
        return found

    async def interaction_tenants(
        self, interaction_ids: Sequence[str]
    ) -> dict[str, str]:
        """The tenant of every registered interaction among `interaction_ids`."""
        owners = await self.interaction_owners(interaction_ids)
        return {i: owner[0] for i, owner in owners.items()}

    async def attribute_records(
        self, interaction_id: str, tenant_id: str, user_id: str
    ) -> list[StoredRecord]:
        """Copy the interaction's (new) owner onto all its usage records.

        The owners' rollups move with them: out of the old owner's (if it had
        one), into the new owner's; the interaction's own day rollup is keyed
        by the interaction and stays. Its first and last usage times are
        recomputed from the records (the first registration sets them). Returns the records whose owner changed, as
        they are now (for `InteractionMoved`; read by the same statement).
        """
        deltas = rollups.Deltas()
        rows = await _RECORDS_OF_INTERACTION.rows(
            self.session, {"interaction_id": interaction_id}
        )
        if not rows:
            # Nothing to move, and the usage times stay NULL (no records).
            return []
        moved: list[StoredRecord] = []
        for (
            old_tenant,
            old_user,
            created_at,
            source,
            credits,
            record_id,
            external_id,
            received_at,
            writer_tenant_id,
        ) in rows:
            if (old_tenant, old_user) == (tenant_id, user_id):
                continue
            if old_tenant is not None and old_user is not None:
                deltas.add(old_tenant, old_user, created_at, source, credits, -1)
            deltas.add(tenant_id, user_id, created_at, source, credits)
            moved.append(
                StoredRecord(
                    id=record_id,
                    source=source,
                    external_id=external_id,
                    interaction_id=interaction_id,
                    credits=credits,
                    created_at=created_at,
                    received_at=received_at,
                    tenant_id=tenant_id,
                    user_id=user_id,
                    writer_tenant_id=writer_tenant_id,
                )
            )
        await rollups.apply(self.session, deltas)
        await self.session.execute(
            update(UsageRecord)
            .where(UsageRecord.interaction_id == interaction_id)
            .values(tenant_id=tenant_id, user_id=user_id)
        )

        def span(function: Any) -> Any:
            return (
                select(function(UsageRecord.created_at))
                .where(UsageRecord.interaction_id == interaction_id)
                .scalar_subquery()
            )

        await self.session.execute(
            update(Interaction)
            .where(Interaction.id == interaction_id)
            .values(last_usage_at=span(func.max), first_usage_at=span(func.min))
        )
        return moved

    async def touch_usage_span(
        self, earliest: dict[str, datetime], latest: dict[str, datetime]
    ) -> None:
        """Widen each interaction's [first_usage_at, last_usage_at] to the given
        instants (`earliest` and `latest` have the same keys).

        PostgreSQL: only locks the rows, in id order (concurrent batches share
        the interaction locks, so their updates must not take rows in different
        orders); rollups.add_inserted widens the spans in the statement that
        adds the records to the rollups (one round trip less).
        """
        if not latest:
            return
        ids = sorted(latest)
        if self._dialect() == "postgresql":
            if len(ids) > 1:  # one row needs no ordering
                await _LOCK_SPAN_ROWS.run(self.session, {"ids": ids})
            return
        table = Interaction.__table__
        assert isinstance(table, Table)
        last, first = table.c.last_usage_at, table.c.first_usage_at
        b_last: Any = bindparam("b_last", type_=last.type)
        b_first: Any = bindparam("b_first", type_=first.type)
        statement = (
            table.update()
            .where(
                table.c.id == bindparam("b_id"),
                or_(last.is_(None), last < b_last, first.is_(None), first > b_first),
            )
            .values(
                last_usage_at=case(
                    (or_(last.is_(None), last < b_last), b_last), else_=last
                ),
                first_usage_at=case(
                    (or_(first.is_(None), first > b_first), b_first), else_=first
                ),
            )
        )
        connection = await self.session.connection()
        await connection.execute(
            statement,
            [{"b_id": i, "b_last": latest[i], "b_first": earliest[i]} for i in ids],
        )

    async def insert_records(
        self, rows: Sequence[dict[str, Any]]
    ) -> set[tuple[str, str]]:
        """Insert, skipping existing (source, external_id); returns the keys inserted.

        PostgreSQL: one statement over column arrays (`_INSERT_RECORDS`).
        SQLite: one cached single-row statement run "executemany" style
        (SQLAlchemy's insertmanyvalues batches it into multi-row INSERT ...
        RETURNING, without compiling a new statement for every batch).
        """
        if not rows:
            return set()
        # In key order: a conflicting insert waits for the transaction that
        # inserted the key first, so two redeliveries of one batch in
        # different orders would otherwise wait for each other (a deadlock
        # PostgreSQL ends by failing one of them).
        ordered = sorted(rows, key=lambda row: (row["source"], row["external_id"]))
        if self._dialect() == "postgresql":
            inserted = await _INSERT_RECORDS.rows(
                self.session,
                {name: [row[name] for row in ordered] for name, _ in _RECORD_COLUMNS},
            )
            return {(source, external_id) for source, external_id in inserted}
        table = UsageRecord.__table__
        assert isinstance(table, Table)
        statement = (
            self._insert(table)
            .on_conflict_do_nothing(index_elements=["source", "external_id"])
            .returning(table.c.source, table.c.external_id)
        )
        connection = await self.session.connection()
        result = await connection.execute(statement, ordered)
        return {(row.source, row.external_id) for row in result}

    async def records_by_key(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], UsageRecord]:
        """Stored records for the given (source, external_id) keys."""
        found: dict[tuple[str, str], UsageRecord] = {}
        postgresql = self._dialect() == "postgresql"
        for chunk in chunks(list(keys), LOOKUP_CHUNK):
            if postgresql:
                result = await self.session.execute(
                    _RECORDS_BY_KEY,
                    {
                        "sources": [source for source, _ in chunk],
                        "external_ids": [external_id for _, external_id in chunk],
                    },
                )
            else:
                result = await self.session.execute(
                    select(UsageRecord).where(
                        tuple_(UsageRecord.source, UsageRecord.external_id).in_(
                            list(chunk)
                        )
                    )
                )
            found.update({(r.source, r.external_id): r for r in result.scalars()})
        return found
