"""Engine and sessions.

Reads and writes use different session factories. On SQLite a writing
transaction starts with BEGIN IMMEDIATE, so concurrent writers queue on the
database lock (busy timeout) instead of failing halfway with "database is
locked"; readers use plain BEGIN and run alongside (WAL mode). Within one
process, SQLite writers also queue on an asyncio lock: a connection that finds
the database locked sleeps in growing steps before it looks again, so many
writers racing for it would leave it idle most of the time.

On PostgreSQL a pooled connection is checked with one simple-protocol
`SELECT 1` when it leaves the pool, except on its first checkout (it was just
opened). SQLAlchemy's `pool_pre_ping` does the same job but costs about 1 ms of
CPU and two round trips per checkout through asyncpg's prepared-statement path
(bench.request_path measured it on every webhook). A failed ping on a closed
connection (a database restart, a terminated backend) discards it and the pool
opens a new one; any other failure reaches the caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import await_

from service.db.timebuckets import sqlite_truncate
from service.db.types import encode_sqlite_credits

if TYPE_CHECKING:
    from service.config import Settings

SQLITE_BUSY_TIMEOUT_SECONDS = 60


class CreditSum:
    """SQLite aggregate: exact Decimal sum of padded credit text."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: str | None) -> None:
        if value is not None:
            self.total += Decimal(value)

    def finalize(self) -> str:
        return encode_sqlite_credits(self.total)


def _setup_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin.
        dbapi_connection.isolation_level = None
        raw = dbapi_connection.driver_connection

        async def register(conn: Any) -> None:
            sqlite = conn._conn
            await conn._execute(sqlite.create_aggregate, "credit_sum", 1, CreditSum)
            await conn._execute(
                sqlite.create_function,
                "tz_trunc",
                3,
                sqlite_truncate,
                deterministic=True,
            )

        dbapi_connection.run_async(lambda _conn: register(raw))
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        writing = conn.get_execution_options().get("writing", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")


def create_engine(
    url: str,
    *,
    statement_timeout_ms: int | None = None,
    pool_size: int = 40,
    max_overflow: int = 0,
) -> AsyncEngine:
    """An async engine for a SQLite or PostgreSQL URL, set up for this service.

    `pool_size` and `max_overflow` bound PostgreSQL's connections per process
    (`DATABASE_POOL_SIZE`, `DATABASE_MAX_OVERFLOW`).
    """
    kwargs: dict[str, Any] = {}
    if url.startswith("postgresql"):
        # JIT compilation costs more than it saves on these short aggregate
        # queries (about 30 ms each, measured by bench/). asyncpg prepares every
        # statement, and PostgreSQL's generic plans for them ignore how skewed
        # tenants are (one scanned a 90-day range instead of one interaction):
        # plan each execution with its parameters.
        settings: dict[str, str] = {
            "timezone": "UTC",
            "jit": "off",
            "plan_cache_mode": "force_custom_plan",
        }
        if statement_timeout_ms:
            settings["statement_timeout"] = str(statement_timeout_ms)
        kwargs["connect_args"] = {"server_settings": settings}
        kwargs["pool_size"] = pool_size
        kwargs["max_overflow"] = max_overflow
    elif url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _setup_sqlite(engine)
    else:
        _ping_on_checkout(engine)
    return engine


def _ping_on_checkout(engine: AsyncEngine) -> None:
    """Check a reused PostgreSQL connection with one round trip before use."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["fresh"] = True

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(
        dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any
    ) -> None:
        if record.info.pop("fresh", False):
            return
        connection = dbapi_connection.driver_connection
        try:
            # asyncpg's simple query protocol: no prepare, one round trip, and
            # safe behind PgBouncer in transaction mode.
            await_(connection.execute("SELECT 1"))
        except Exception as error:
            if connection.is_closed():
                # As pool_pre_ping does: after a restart every pooled
                # connection is stale, so the pool drops them all at once.
                raise exc.InvalidatePoolError() from error
            raise


# What a read statement runs on: an ORM session, or the Core connection of
# `Database.rows` (plain rows, less work per statement).
Reads = AsyncSession | AsyncConnection


def dialect_of(reads: Reads) -> str:
    """`sqlite` or `postgresql`, for a session or a connection."""
    if isinstance(reads, AsyncConnection):
        return reads.dialect.name
    return reads.get_bind().dialect.name


@dataclass(frozen=True)
class Database:
    """The engine plus read and write session factories."""

    engine: AsyncEngine
    reader: async_sessionmaker[AsyncSession]
    writer: async_sessionmaker[AsyncSession]
    write_lock: asyncio.Lock | None = None
    # PostgreSQL: sessions whose statements run without BEGIN and COMMIT.
    querier: async_sessionmaker[AsyncSession] | None = None
    # PostgreSQL: the engine whose connections run so (for `rows`).
    autocommit: AsyncEngine | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, api: bool = False) -> Database:
        """The database of `settings`, with its pool bounds (and, for the API,
        its statement timeout)."""
        return cls.from_url(
            settings.database_url,
            statement_timeout_ms=settings.statement_timeout_ms if api else None,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_max_overflow,
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        statement_timeout_ms: int | None = None,
        pool_size: int = 40,
        max_overflow: int = 0,
    ) -> Database:
        """Build the engine and both session factories."""
        engine = create_engine(
            url,
            statement_timeout_ms=statement_timeout_ms,
            pool_size=pool_size,
            max_overflow=max_overflow,
        )
        autocommit = (
            engine.execution_options(isolation_level="AUTOCOMMIT")
            if engine.dialect.name == "postgresql"
            else None
        )
        return cls(
            engine=engine,
            reader=async_sessionmaker(engine, expire_on_commit=False),
            writer=async_sessionmaker(
                engine.execution_options(writing=True), expire_on_commit=False
            ),
            write_lock=asyncio.Lock() if engine.dialect.name == "sqlite" else None,
            querier=(
                async_sessionmaker(autocommit, expire_on_commit=False)
                if autocommit is not None
                else None
            ),
            autocommit=autocommit,
        )

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A writing transaction: commits on success, rolls back on error."""
        if self.write_lock is None:
            async with self.writer() as session, session.begin():
                yield session
            return
        async with self.write_lock, self.writer() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A short read-only transaction."""
        async with self.reader() as session, session.begin():
            yield session

    @asynccontextmanager
    async def query(self) -> AsyncIterator[AsyncSession]:
        """Reads that need no transaction of their own (the GraphQL loaders').

        On PostgreSQL each statement runs in its own implicit transaction,
        which saves `read`'s BEGIN and COMMIT round trips and changes nothing
        a read sees: under READ COMMITTED every statement takes its own
        snapshot inside a transaction too. Only for statements that take no
        locks, set nothing with SET LOCAL and stream nothing (asyncpg's
        cursors need a transaction): those use `read`. SQLite: `read`.
        """
        if self.querier is None:
            async with self.read() as session:
                yield session
            return
        async with self.querier() as session:
            yield session

    @asynccontextmanager
    async def rows(self) -> AsyncIterator[AsyncConnection]:
        """`query`'s reads on a Core connection, for statements whose results
        are plain rows (no ORM instances): what the GraphQL loaders of usage
        send. The same transactions as `query` (none of their own on
        PostgreSQL, `read`'s elsewhere), without the ORM session's per-statement
        work (its compile state, result wrapping and connection bookkeeping).
        """
        if self.autocommit is None:
            async with self.engine.connect() as connection, connection.begin():
                yield connection
            return
        async with self.autocommit.connect() as connection:
            yield connection

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
