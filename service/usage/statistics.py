"""Fresh planner statistics for the rollups after bulk writes (PostgreSQL).

The dashboard's plans rest on the rollup tables' statistics: on stale ones
the largest tenant's user ranking sorted 100k user-days on disk instead of
hashing them (2.5x slower, bench at 10M records). Autovacuum analyzes a table
once a tenth of it changed, but only when it comes round (every minute by
default, later on a busy server, never where it is turned off), so the service
does not wait for it: each API and worker process counts the records it writes
and, after every `CHECK_EVERY` of them, looks at the rollup tables' changes
since their last ANALYZE (`pg_stat_user_tables`); a table never analyzed, or
changed by more than a tenth of its rows since, is analyzed there and then,
in the background of the process, off the writing request. ANALYZE reads a
sample of 30,000 rows whatever the table's size. `rollups.rebuild` analyzes
what it rewrites itself.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy import text

from service.db.session import Database
from service.events import UsageRecorded, after_commit
from service.usage import rollups

log = logging.getLogger(__name__)

# Records written by this process between two looks at the statistics.
CHECK_EVERY = 20_000
# The tables whose statistics the read path's plans depend on.
TABLES = rollups.TABLES
_STALE = text(
    "SELECT relname FROM pg_stat_user_tables"
    " WHERE relname = ANY(:tables) AND (coalesce(last_analyze, last_autoanalyze)"
    " IS NULL OR n_mod_since_analyze > 0.1 * greatest(n_live_tup, 1000))"
    " ORDER BY relname"
)


@dataclass
class _Written:
    """Records written since the last look, and the look under way."""

    records: int = 0
    check: asyncio.Task[list[str]] | None = None


_WRITTEN: dict[int, _Written] = {}


async def analyze_stale(db: Database) -> list[str]:
    """ANALYZE the rollup tables whose statistics are stale; their names."""
    async with db.query() as session:
        stale = list((await session.scalars(_STALE, {"tables": list(TABLES)})).all())
        for table in stale:
            await session.execute(text(f"ANALYZE {table}"))
    return stale


def pending_check(db: Database) -> asyncio.Task[list[str]] | None:
    """The look at `db`'s statistics under way in this process, if any."""
    written = _WRITTEN.get(id(db.engine))
    return None if written is None else written.check


@after_commit(UsageRecorded)
async def count_written(event: UsageRecorded, db: Database) -> None:
    """Count committed records; every CHECK_EVERY, look at the statistics."""
    if db.dialect != "postgresql":
        return  # SQLite's planner has no statistics unless ANALYZE made them
    written = _WRITTEN.setdefault(id(db.engine), _Written())
    written.records += len(event.records)
    if written.records < CHECK_EVERY:
        return
    loop = asyncio.get_running_loop()
    check = written.check
    if check is not None and not check.done() and check.get_loop() is loop:
        return  # one look at a time; the count goes on
    written.records = 0
    written.check = loop.create_task(_check(db))


async def _check(db: Database) -> list[str]:
    try:
        stale = await analyze_stale(db)
    except Exception:  # statistics must not fail anything else
        log.warning("could not refresh the rollups' statistics", exc_info=True)
        return []
    if stale:
        log.info("analyzed %s after bulk writes", ", ".join(stale))
    return stale
