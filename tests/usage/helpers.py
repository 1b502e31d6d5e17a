"""Small helpers shared by the usage tests."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import text

from service.db.session import Database


async def analyzed(db: Database, tables: Iterable[str]) -> set[str]:
    """Which of `tables` have been analyzed by an ANALYZE (PostgreSQL)."""
    async with db.read() as session:
        rows = await session.execute(
            text(
                "SELECT relname FROM pg_stat_user_tables"
                " WHERE relname = ANY(:tables) AND last_analyze IS NOT NULL"
            ),
            {"tables": list(tables)},
        )
        return {row[0] for row in rows}
