"""What budgets cost: ingestion with 0 and with 1,000 budgets, and a status read.

`python -m bench.budgets [--database sqlite|postgresql] [--records N]` builds a
fresh database (`bench/.data/bench_budgets.db`, or PostgreSQL database
`bench_budgets`), loads N usage records through `ingestUsage` (50 tenants,
1,000 users), then:

- ingests more batches of 1,000 records with no budgets, then with 1,000
  budgets (each user a monthly budget, each tenant a monthly and a daily
  one; thresholds 50/80/100), alternating rounds so machine load hits both;
- times `budget(id:) { status { ... } }` against `tenant(id:) { credits(range:) }`
  over the same month (the status reads the same rollups).

GraphQL runs in this process (bench/inprocess.py: no HTTP, no key lookup),
so the figures are the service's own cost, with the domain handlers loaded as
the app loads them (the budget alerts decided in each ingest's transaction,
the live feed's NOTIFY). `alerts` is how many the last round decided, to show
the decisions ran. Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import func, select

from bench.inprocess import execute
from service import domains
from service.budgets.models import BudgetAlert
from service.db.session import Database
from service.migrate import upgrade

TENANTS = 50
USERS = 1_000
BATCH = 1_000
ROUNDS = 4
BATCHES_PER_ROUND = 5
READS = 200
REGISTER = """
mutation($i: ID!, $t: ID!, $u: ID!) {
  registerInteraction(input: {interactionId: $i, tenantId: $t, userId: $u}) { id }
}"""
INGEST = """
mutation($r: [UsageRecordInput!]!) { ingestUsage(records: $r) { accepted } }
"""
SET_BUDGET = "mutation($i: SetBudgetInput!) { setBudget(input: $i) { id } }"
DELETE_BUDGET = "mutation($id: ID!) { deleteBudget(id: $id) }"
STATUS = """
query($id: ID!) { budget(id: $id) { status {
  periodStart used { total records } remaining percentUsed projected alerts { threshold }
} } }"""
TOTAL = """
query($t: ID!, $from: DateTime!, $to: DateTime!) {
  tenant(id: $t) { credits(range: {from: $from, to: $to}) { total records } }
}"""


def owner(n: int) -> tuple[str, str, str]:
    """(interaction, tenant, user) of user n."""
    return f"bb-i{n}", f"bb-t{n % TENANTS}", f"bb-u{n}"


def batch(rng: random.Random, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "source": rng.choice(("STREAM", "TRANSCRIPT", "DOCUMENT")),
            "interactionId": owner(rng.randrange(USERS))[0],
            "externalId": uuid.uuid4().hex,
            "credits": str(Decimal(rng.randrange(1, 10**9)).scaleb(-9)),
            "createdAt": (now - timedelta(seconds=rng.randrange(20 * 86_400)))
            .isoformat()
            .replace("+00:00", "Z"),
        }
        for _ in range(BATCH)
    ]


def fresh_sqlite() -> str:
    path = Path("bench/.data/bench_budgets.db").resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite+aiosqlite:///{path}"


async def fresh_url(database: str) -> str:
    if database == "sqlite":
        return await asyncio.to_thread(fresh_sqlite)
    pg = os.environ.get("BENCH_PG", "postgres@127.0.0.1:5432")
    conn = await asyncpg.connect(f"postgresql://{pg}/postgres")
    try:
        await conn.execute('DROP DATABASE IF EXISTS "bench_budgets" WITH (FORCE)')
        await conn.execute('CREATE DATABASE "bench_budgets"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://{pg}/bench_budgets"


async def ingest_rate(db: Database, rng: random.Random, now: datetime) -> float:
    """Records per second over BATCHES_PER_ROUND sequential batches."""
    batches = [batch(rng, now) for _ in range(BATCHES_PER_ROUND)]
    started = time.perf_counter()
    for records in batches:
        await execute(db, INGEST, {"r": records})
    return BATCH * BATCHES_PER_ROUND / (time.perf_counter() - started)


async def set_budgets(db: Database) -> list[str]:
    ids: list[str] = []
    for n in range(USERS):
        _, tenant, user = owner(n)
        given = {"tenantId": tenant, "userId": user, "period": "MONTH", "limit": "50"}
        ids.append((await execute(db, SET_BUDGET, {"i": given}))["setBudget"]["id"])
    for t in range(TENANTS):
        for period in ("MONTH", "DAY"):
            given = {"tenantId": f"bb-t{t}", "period": period, "limit": "5000"}
            ids.append((await execute(db, SET_BUDGET, {"i": given}))["setBudget"]["id"])
    return ids


async def timed(db: Database, query: str, variables: dict[str, Any]) -> float:
    started = time.perf_counter()
    await execute(db, query, variables)
    return (time.perf_counter() - started) * 1000


async def run(database: str, records: int) -> dict[str, Any]:
    url = await fresh_url(database)
    await asyncio.to_thread(upgrade, url)
    domains.load()  # the handlers the app and the worker run
    db = Database.from_url(url)
    rng = random.Random(7)
    now = datetime.now(UTC)
    try:
        for n in range(USERS):
            interaction, tenant, user = owner(n)
            await execute(db, REGISTER, {"i": interaction, "t": tenant, "u": user})
        for _ in range(records // BATCH):
            await execute(db, INGEST, {"r": batch(rng, now)})
        await ingest_rate(db, rng, now)  # warm-up
        without: list[float] = []
        with_budgets: list[float] = []
        ids: list[str] = []
        for _ in range(ROUNDS):
            for budget_id in ids:
                await execute(db, DELETE_BUDGET, {"id": budget_id})
            without.append(await ingest_rate(db, rng, now))
            ids = await set_budgets(db)
            with_budgets.append(await ingest_rate(db, rng, now))
        month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        following = (month + timedelta(days=32)).replace(day=1)
        span = {"from": month.isoformat(), "to": following.isoformat()}
        tenant_budget = ids[USERS]  # bb-t0, MONTH
        async with db.read() as session:
            alerts = await session.scalar(select(func.count()).select_from(BudgetAlert))
        status_ms = [
            await timed(db, STATUS, {"id": tenant_budget}) for _ in range(READS)
        ]
        total_ms = [
            await timed(db, TOTAL, {"t": "bb-t0", **span}) for _ in range(READS)
        ]
    finally:
        await db.dispose()
    return {
        "database": database,
        "records": records + (2 * ROUNDS + 1) * BATCHES_PER_ROUND * BATCH,
        "budgets": len(ids),
        "alerts": alerts,
        "ingest_records_per_s_0_budgets": round(statistics.median(without)),
        "ingest_records_per_s_1000_budgets": round(statistics.median(with_budgets)),
        "status_read_ms_p50": round(statistics.median(status_ms), 2),
        "tenant_total_ms_p50": round(statistics.median(total_ms), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database", choices=("sqlite", "postgresql"), default="sqlite"
    )
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    result = asyncio.run(run(args.database, args.records))
    lines = [f"{name:40} {value}" for name, value in result.items()]
    sys.stdout.write("\n".join([*lines, json.dumps(result)]) + "\n")


if __name__ == "__main__":
    main()
