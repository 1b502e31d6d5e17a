"""What one statement costs the API process, by the path it takes to PostgreSQL.

`python -m bench.statement_overhead [--database-url URL] [--n N]` runs the
record path's owner lookup (`SELECT id, tenant_id, user_id FROM interactions
WHERE id = ANY($1)`, one id) N times inside one transaction, through each
layer the service could send it by, and prints the mean CPU microseconds per
statement as a table and as JSON:

- `session.execute` of the statement the service builds once (what the
  write path did before service.db.direct);
- the same with an expanding IN (what it did before);
- `text()` through the session; `exec_driver_sql` on the connection;
- `Direct.rows` (service.db.direct: what the write path does now, SQLAlchemy's
  compiled statement bound and run by asyncpg on the session's connection);
- asyncpg's own `fetch` on the transaction's driver connection (the floor).

Without a URL it migrates a database of its own on the local PostgreSQL
(`bench_statement_overhead`, dropped afterwards).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from sqlalchemy import bindparam, select, text

from bench.config import default_pg_url
from service.db.models import Interaction
from service.db.session import Database
from service.migrate import upgrade
from service.usage.repository import _OWNERS

RAW = "SELECT id, tenant_id, user_id FROM interactions WHERE id = ANY($1::text[])"
EXPANDING = select(Interaction.id, Interaction.tenant_id, Interaction.user_id).where(
    Interaction.id.in_(bindparam("ids", expanding=True))
)
TEXT = text(
    "SELECT id, tenant_id, user_id FROM interactions WHERE id = ANY(CAST(:ids AS text[]))"
)


async def _cpu_us(call: Callable[[], Awaitable[Any]], n: int) -> float:
    for _ in range(min(200, n)):
        await call()
    start = time.process_time()
    for _ in range(n):
        await call()
    return 1e6 * (time.process_time() - start) / n


async def measure(url: str, n: int) -> dict[str, float]:
    """Mean CPU microseconds per statement, by path."""
    db = Database.from_url(url)
    ids = {"ids": ["i-1"]}
    owners = _OWNERS["postgresql"]
    try:
        async with db.write() as session:
            connection = await session.connection()
            await session.execute(text("SELECT 1"))  # the transaction has begun
            raw: Any = (await connection.get_raw_connection()).driver_connection
            return {
                "session.execute (built once, = ANY)": await _cpu_us(
                    lambda: session.execute(owners.statement, ids), n
                ),
                "session.execute (expanding IN)": await _cpu_us(
                    lambda: session.execute(EXPANDING, ids), n
                ),
                "session.execute (text)": await _cpu_us(
                    lambda: session.execute(TEXT, ids), n
                ),
                "connection.exec_driver_sql": await _cpu_us(
                    lambda: connection.exec_driver_sql(RAW, (["i-1"],)), n
                ),
                "Direct.rows": await _cpu_us(lambda: owners.rows(session, ids), n),
                "asyncpg fetch": await _cpu_us(lambda: raw.fetch(RAW, ["i-1"]), n),
            }
    finally:
        await db.dispose()


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(f"postgresql://{default_pg_url()}/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.statement_overhead")
    parser.add_argument("--database-url")
    parser.add_argument("--n", type=int, default=3000)
    args = parser.parse_args()
    url = args.database_url
    own = url is None
    if own:
        name = "bench_statement_overhead"
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}"'))
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
        url = f"postgresql+asyncpg://{default_pg_url()}/{name}"
    try:
        upgrade(url)
        result = asyncio.run(measure(url, args.n))
    finally:
        if own:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    width = max(len(path) for path in result)
    sys.stdout.write(f"| {'path'.ljust(width)} | CPU us per statement |\n")
    sys.stdout.write(f"| {'-' * width} | --- |\n")
    for path, cpu in result.items():
        sys.stdout.write(f"| {path.ljust(width)} | {cpu:.0f} |\n")
    sys.stdout.write(json.dumps({"n": args.n, "cpu_us": result}) + "\n")


if __name__ == "__main__":
    main()
