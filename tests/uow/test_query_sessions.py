"""Database.query and Database.rows: loader reads without a transaction of
their own on PostgreSQL, and read()'s transaction everywhere else."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import pytest
from sqlalchemy import text

from service.db.session import Database, Reads

pytestmark = pytest.mark.asyncio


async def _nows(
    sessions: AbstractAsyncContextManager[Reads],
) -> tuple[object, object]:
    """now() twice, 10 ms apart, in one of `sessions`: the start of the current
    transaction, so equal within one transaction and apart for two implicit ones."""
    async with sessions as session:
        first = (await session.execute(text("SELECT now()"))).scalar_one()
        await session.execute(text("SELECT pg_sleep(0.01)"))
        second = (await session.execute(text("SELECT now()"))).scalar_one()
    return first, second


async def test_query_statements_run_in_their_own_transactions(db: Database) -> None:
    if db.dialect != "postgresql":
        pytest.skip("SQLite: query() is read()")
    first, second = await _nows(db.query())
    assert first != second
    first, second = await _nows(db.rows())
    assert first != second
    first, second = await _nows(db.read())
    assert first == second


async def test_query_leaves_the_pooled_connection_as_it_found_it(db: Database) -> None:
    """After a query() session, read() and write() sessions still get one
    transaction (the pool resets the AUTOCOMMIT setting on return)."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite: query() is read()")
    for _ in range(3):
        await _nows(db.query())
        await _nows(db.rows())
    first, second = await _nows(db.read())
    assert first == second
    first, second = await _nows(db.write())
    assert first == second


async def test_query_sees_what_was_committed(db: Database) -> None:
    async with db.write() as session:
        await session.execute(
            text(
                "INSERT INTO tenants (id, created_at) VALUES ('t-q', CURRENT_TIMESTAMP)"
            )
        )
    for reads in (db.query(), db.rows()):
        async with reads as session:
            found = (
                await session.execute(text("SELECT id FROM tenants WHERE id = 't-q'"))
            ).scalar_one()
        assert found == "t-q"


async def test_rows_reads_one_transaction_on_sqlite(db: Database) -> None:
    """SQLite: rows() is read()'s one transaction, on a Core connection."""
    if db.dialect != "sqlite":
        pytest.skip("PostgreSQL: rows() runs each statement on its own")
    async with db.rows() as connection:
        assert connection.in_transaction()
