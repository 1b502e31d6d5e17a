"""SQL statements per dashboard request for tenants of 10, 1,000 and 10,000 users.

A small database of its own (bench_ledger_statements), filled through the
service's own write path (usage_service: register, then ingest), so every
derived column and rollup is what the service makes. Each user has one
interaction with two usage records inside the dashboard's range. The dashboard
operation runs in this process; a before_cursor_execute listener counts what
reaches the driver (on SQLite that includes BEGIN). Authentication, which HTTP
adds (one key lookup), is not part of the count.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from bench.config import DATA, Target, asyncpg_dsn, dashboard_range
from bench.dashboard import QUERY, variables
from bench.inprocess import capture, execute
from bench.load import alembic_head, log, migrate, rollups_available
from service.auth.principal import ADMIN
from service.db.session import Database
from service.uow import unit_of_work
from service.usage.records import Source, UsageIn
from service.usage.service import usage_service

SIZES = (10, 1_000, 10_000)
BATCH = 500


def _meta_path(target: Target) -> Path:
    return DATA / f"{target.dialect}-statements.meta.json"


def _sqlite_file(url: str, *, remove: bool = False) -> bool:
    """Whether the SQLite file of `url` exists; with remove, delete it first."""
    path = Path(url.split("///", 1)[1])
    if remove:
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    return path.exists()


def _wanted() -> dict[str, Any]:
    return {
        "sizes": list(SIZES),
        "alembic_head": alembic_head(),
        "rollups": rollups_available(),
    }


async def _exists(target: Target) -> bool:
    try:
        meta = json.loads(_meta_path(target).read_text())
    except (OSError, ValueError):
        return False
    if meta != _wanted():
        return False
    url = target.statements_url
    if target.dialect == "sqlite":
        return _sqlite_file(url)
    try:
        conn = await asyncpg.connect(asyncpg_dsn(url))
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


async def _create(target: Target) -> None:
    url = target.statements_url
    if target.dialect == "postgresql":
        admin = await asyncpg.connect(
            asyncpg_dsn(f"postgresql://{target.pg_url}/postgres")
        )
        try:
            await admin.execute(
                "DROP DATABASE IF EXISTS bench_ledger_statements WITH (FORCE)"
            )
            await admin.execute("CREATE DATABASE bench_ledger_statements")
        finally:
            await admin.close()
    else:
        _sqlite_file(url, remove=True)
    await asyncio.to_thread(migrate, url)
    start, end = dashboard_range()
    span = (end - start) / 2
    db = Database.from_url(url)
    try:
        for size in SIZES:
            tenant = f"stmt-{size}"
            log(f"statements database: tenant with {size:,} users")
            for lo in range(0, size, BATCH):
                users = range(lo, min(lo + BATCH, size))
                async with unit_of_work(db) as uow:
                    for k in users:
                        await usage_service.register_interaction(
                            uow,
                            ADMIN,
                            interaction_id=f"{tenant}-i{k:05d}",
                            tenant_id=tenant,
                            user_id=f"u{k:05d}",
                            created_at=start + span * (k / size),
                        )
                batch = []
                for k in users:
                    at = start + span * (k / size) + timedelta(minutes=5)
                    for source, credits in (
                        (Source.STREAM, "1.5"),
                        (Source.DOCUMENT, "0.25"),
                    ):
                        batch.append(
                            UsageIn(
                                source=source,
                                interaction_id=f"{tenant}-i{k:05d}",
                                external_id=f"{tenant}-{source.value}-{k:05d}",
                                credits=Decimal(credits),
                                created_at=at,
                            )
                        )
                async with unit_of_work(db) as uow:
                    await usage_service.ingest(uow, ADMIN, batch)
    finally:
        await db.dispose()
    if target.dialect == "postgresql":
        conn = await asyncpg.connect(asyncpg_dsn(url))
        try:
            await conn.execute("VACUUM (ANALYZE)")
        finally:
            await conn.close()
    else:
        con = sqlite3.connect(url.split("///", 1)[1])
        try:
            con.execute("ANALYZE")
        finally:
            con.close()
    _meta_path(target).write_text(json.dumps(_wanted()))


async def run(target: Target) -> dict[str, Any]:
    """Statements per request for each tenant size; equal counts are the target."""
    if not await _exists(target):
        await _create(target)
    db = Database.from_url(target.statements_url)
    counts: dict[str, int] = {}
    listing: dict[str, list[str]] = {}
    rows: dict[str, int] = {}
    try:
        for size in SIZES:
            tenant = f"stmt-{size}"
            await execute(db, QUERY, variables(tenant))  # warm-up
            with capture() as captured:
                data = await execute(db, QUERY, variables(tenant))
            counts[str(size)] = len(captured.statements)
            listing[str(size)] = [
                " ".join(s.split())[:160] for s, _ in captured.statements
            ]
            rows[str(size)] = data["tenant"]["users"]["totalCount"]
    finally:
        await db.dispose()
    if any(rows[str(size)] != size for size in SIZES):
        raise RuntimeError(f"statements database: users per tenant {rows}, not {SIZES}")
    return {
        "users": list(SIZES),
        "statements_per_request": counts,
        "equal": len(set(counts.values())) == 1,
        "statements": listing[str(SIZES[-1])],
        "note": "in-process (schema.execute); HTTP adds one API-key lookup",
    }
