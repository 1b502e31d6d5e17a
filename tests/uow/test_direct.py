"""service.db.direct: the hot path's statements, on asyncpg directly or through
SQLAlchemy, give the same rows, in the same transaction, with the same errors."""

from __future__ import annotations

import uuid
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import bindparam, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from bench.inprocess import capture
from service.db.direct import Direct
from service.db.errors import database_unavailable
from service.db.models import Tenant, UsageRecord
from service.db.session import Database

pytestmark = pytest.mark.asyncio

_INSERT_TENANT = Direct(
    text("INSERT INTO tenants (id, created_at) VALUES (:id, :at) RETURNING id")
)
_COUNT_TENANTS = Direct(
    select(func.count()).select_from(Tenant).where(Tenant.id == bindparam("id"))
)
_RECORDS = Direct(
    select(
        UsageRecord.id, UsageRecord.credits, UsageRecord.created_at, UsageRecord.source
    ).where(UsageRecord.external_id == bindparam("external_id"))
)
AT = datetime(2026, 11, 3, 10, 30, tzinfo=UTC)


async def _insert_record(db: Database, record_id: uuid.UUID, credits: str) -> None:
    async with db.write() as session:
        session.add(
            UsageRecord(
                id=record_id,
                source="TRANSCRIPT",
                external_id=f"x-{record_id}",
                interaction_id=None,
                credits=Decimal(credits),
                created_at=AT,
                tenant_id=None,
                user_id=None,
            )
        )


async def test_rows_have_the_column_types_either_way(db: Database) -> None:
    record_id = uuid.uuid4()
    await _insert_record(db, record_id, "1.000000001")
    params = {"external_id": f"x-{record_id}"}
    async with db.read() as session:
        direct = list(await _RECORDS.rows(session, params))
    with capture() as captured:  # a cursor listener: the SQLAlchemy path
        async with db.read() as session:
            through_sqlalchemy = list(await _RECORDS.rows(session, params))
    # Seen by the listener (SQLite's explicit BEGIN is one of them).
    assert [s for s, _ in captured.statements if "usage_records" in s]
    expected = (record_id, Decimal("1.000000001"), AT, "TRANSCRIPT")
    for rows in (direct, through_sqlalchemy):
        assert [tuple(row) for row in rows] == [expected]
        row = rows[0]
        assert isinstance(row[0], uuid.UUID)
        assert isinstance(row[1], Decimal)
        assert row[2].utcoffset() == timedelta(0)


async def test_first_statement_of_a_transaction_is_inside_it(db: Database) -> None:
    # Nothing else ran in the transaction before the Direct statement: it must
    # still be part of it (rolled back with it), not run on its own.
    class Undo(Exception):
        pass

    inserted: list[tuple[object, ...]] = []

    async def insert_then_fail() -> None:
        async with db.write() as session:
            rows = await _INSERT_TENANT.rows(session, {"id": "rolled", "at": AT})
            inserted.extend(tuple(row) for row in rows)
            raise Undo

    with pytest.raises(Undo):
        await insert_then_fail()
    assert inserted == [("rolled",)]
    async with db.read() as session:
        assert (await _COUNT_TENANTS.rows(session, {"id": "rolled"}))[0][0] == 0
    async with db.write() as session:
        await _INSERT_TENANT.run(session, {"id": "kept", "at": AT})
    async with db.read() as session:
        assert (await _COUNT_TENANTS.rows(session, {"id": "kept"}))[0][0] == 1


async def test_sqlalchemy_and_direct_statements_share_the_transaction(
    db: Database,
) -> None:
    async with db.write() as session:
        session.add(Tenant(id="orm-first", created_at=AT))
        await session.flush()
        # The Direct statement sees the ORM's uncommitted row, and the ORM
        # sees the Direct statement's.
        assert (await _COUNT_TENANTS.rows(session, {"id": "orm-first"}))[0][0] == 1
        await _INSERT_TENANT.run(session, {"id": "direct-second", "at": AT})
        found = await session.get(Tenant, "direct-second")
        assert found is not None


async def test_errors_are_sqlalchemys(db: Database) -> None:
    async with db.write() as session:
        await _INSERT_TENANT.run(session, {"id": "twice", "at": AT})

    async def insert_again() -> None:
        async with db.write() as session:
            await _INSERT_TENANT.run(session, {"id": "twice", "at": AT})

    for listened in (False, True):
        with (
            capture() if listened else nullcontext(),
            pytest.raises(IntegrityError) as caught,
        ):
            await insert_again()
        error = caught.value
        assert isinstance(error, DBAPIError)
        if db.dialect == "postgresql":
            assert getattr(error.orig, "sqlstate", None) == "23505"
        assert not database_unavailable(error)
    # The failed transaction was rolled back; the connection is usable again.
    async with db.read() as session:
        assert (await _COUNT_TENANTS.rows(session, {"id": "twice"}))[0][0] == 1


async def test_expanding_parameters_only_through_sqlalchemy(db: Database) -> None:
    # An expanding IN renders its SQL per call: refused on the direct path,
    # while SQLite (always through SQLAlchemy) runs it.
    async with db.write() as session:
        await _INSERT_TENANT.run(session, {"id": "listed", "at": AT})
    expanding = Direct(
        select(Tenant.id).where(Tenant.id.in_(bindparam("ids", expanding=True)))
    )
    async with db.read() as session:
        if db.dialect == "postgresql":
            with pytest.raises(ValueError, match="expanding"):
                await expanding.rows(session, {"ids": ["listed"]})
        else:
            rows = await expanding.rows(session, {"ids": ["listed"]})
            assert [tuple(row) for row in rows] == [("listed",)]


async def test_alone_is_its_own_transaction_unless_one_has_begun(db: Database) -> None:
    class Undo(Exception):
        pass

    async def alone_then_fail(name: str, *, begun: bool) -> None:
        async with db.write() as session:
            if begun:
                await _COUNT_TENANTS.rows(session, {"id": name})
            await _INSERT_TENANT.run(session, {"id": name, "at": AT}, alone=True)
            raise Undo

    with pytest.raises(Undo):
        await alone_then_fail("alone", begun=False)
    with pytest.raises(Undo):
        await alone_then_fail("after-begin", begun=True)
    async with db.read() as session:
        kept = (await _COUNT_TENANTS.rows(session, {"id": "alone"}))[0][0]
        undone = (await _COUNT_TENANTS.rows(session, {"id": "after-begin"}))[0][0]
    # On PostgreSQL the lone statement committed by itself; SQLite (through
    # SQLAlchemy) and a begun transaction roll it back with the rest.
    assert kept == (1 if db.dialect == "postgresql" else 0)
    assert undone == 0
