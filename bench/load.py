"""Create the benchmark database, fill it with generated data, or reuse it.

PostgreSQL: drop and create the database, migrate it with `python -m service
migrate`, then COPY every table (asyncpg, text format, FREEZE for the two big
ones). The big tables' indexes and constraints are dropped before the COPY and
built again after it, which is how a bulk load should be done; then a
CHECKPOINT. Autovacuum is turned off on every table of the database and no
ANALYZE runs, so the first measurements see the data as it is right after it
was written (no statistics, as after a bulk ingest); `settle` then runs VACUUM
ANALYZE, turns autovacuum back on and checkpoints, for the settled figures.

SQLite: a fresh file under bench/.data/, migrated the same way, then
executemany in one transaction per table with the secondary indexes dropped
and rebuilt; `settle` runs ANALYZE.

Columns are read from the migrated tables. Those this module knows are
filled (usage_records.tenant_id and user_id, interactions.last_usage_at, when
they exist, exactly as the service would set them); an unknown nullable column
is left NULL with a warning, and an unknown NOT NULL column without a default
stops the load. After loading, `service.usage.rollups.rebuild(session)` runs
in one transaction if that module exists.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench.config import (
    DATA,
    GENERATOR_VERSION,
    ROOT,
    SEED,
    WRITES_TENANT,
    Target,
    asyncpg_dsn,
    dashboard_range,
)
from bench.gen import Column, Dataset, copy_text, generate, python_rows, to_us

BIG_TABLES = ("interactions", "usage_records")
KNOWN_COLUMNS = {
    "tenants": ("id", "created_at"),
    "users": ("tenant_id", "id", "created_at"),
    "interactions": (
        "id",
        "tenant_id",
        "user_id",
        "created_at",
        "updated_at",
        "last_usage_at",
        "first_usage_at",
    ),
    "usage_records": (
        "id",
        "source",
        "external_id",
        "interaction_id",
        "credits",
        "created_at",
        "received_at",
        "tenant_id",
        "user_id",
    ),
}
# Known columns that are NULL for generated data (usage written by admin keys).
NULL_COLUMNS = {"usage_records": ("writer_tenant_id",)}
PG_CHUNK = 250_000
SQLITE_CHUNK = 100_000


def log(message: str) -> None:
    """Progress on stderr."""
    sys.stderr.write(f"[bench] {message}\n")
    sys.stderr.flush()


def alembic_head() -> str:
    """The newest migration of the checkout."""
    from alembic.script import ScriptDirectory

    from service.migrate import alembic_config

    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    return ",".join(sorted(heads))


def rollups_available() -> bool:
    """Whether service.usage.rollups (with `rebuild`) exists."""
    try:
        found = importlib.util.find_spec("service.usage.rollups") is not None
    except ModuleNotFoundError:
        return False
    if not found:
        return False
    module = importlib.import_module("service.usage.rollups")
    return callable(getattr(module, "rebuild", None))


def migrate(url: str) -> None:
    """`python -m service migrate` against `url`."""
    env = {**os.environ, "DATABASE_URL": url, "LOG_LEVEL": "WARNING"}
    subprocess.run(
        [sys.executable, "-m", "service", "migrate"], cwd=ROOT, env=env, check=True
    )


class Plan:
    """Which columns of each table get generated values."""

    def __init__(self, columns: dict[str, list[tuple[str, bool, bool]]]) -> None:
        self.columns: dict[str, list[str]] = {}
        self.left_null: dict[str, list[str]] = {}
        problems = []
        for table, known in KNOWN_COLUMNS.items():
            present = columns.get(table)
            if not present:
                raise RuntimeError(f"table {table} not found after migrating")
            self.columns[table] = [c for c, _, _ in present if c in known]
            for name, nullable, has_default in present:
                if name in known or name in NULL_COLUMNS.get(table, ()):
                    continue
                if nullable or has_default:
                    self.left_null.setdefault(table, []).append(name)
                else:
                    problems.append(f"{table}.{name}")
        if problems:
            raise RuntimeError(
                "the bench does not know how to fill NOT NULL column(s) "
                f"{', '.join(problems)}: teach bench/gen.py about them"
            )
        for table, names in self.left_null.items():
            log(
                f"WARNING: {table}.{', '.join(names)} left NULL/default: if derived "
                "data, teach bench/gen.py or service.usage.rollups.rebuild about it"
            )

    def rows(
        self, ds: Dataset, table: str, lo: int, hi: int, dialect: Any
    ) -> list[Column]:
        """Columns of rows [lo, hi) of a table."""
        names = self.columns[table]
        if table == "usage_records":
            return ds.usage_columns(names, lo, hi, dialect)
        if table == "interactions":
            return ds.interaction_columns(names, lo, hi, dialect)
        if table == "users":
            return ds.user_columns(names, dialect)
        return ds.tenant_columns(names, dialect)


def table_size(ds: Dataset, table: str) -> int:
    """Rows of a table."""
    return {
        "tenants": len(ds.tenant_ids),
        "users": len(ds.user_ids),
        "interactions": int(ds.inter_created.shape[0]),
        "usage_records": ds.records,
    }[table]


# -- PostgreSQL ---------------------------------------------------------------


async def _pg_columns(conn: Any) -> dict[str, list[tuple[str, bool, bool]]]:
    rows = await conn.fetch(
        "SELECT table_name, column_name, is_nullable = 'YES' AS nullable, "
        "column_default IS NOT NULL AS has_default FROM information_schema.columns "
        "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"
    )
    columns: dict[str, list[tuple[str, bool, bool]]] = {}
    for row in rows:
        columns.setdefault(row["table_name"], []).append(
            (row["column_name"], row["nullable"], row["has_default"])
        )
    return columns


async def _pg_drop_indexes(conn: Any, tables: Sequence[str]) -> list[str]:
    """Drop the tables' constraints and indexes; return the DDL to rebuild them."""
    constraints = await conn.fetch(
        "SELECT conname, conrelid::regclass::text AS tbl, contype, "
        "pg_get_constraintdef(oid) AS def FROM pg_constraint "
        "WHERE contype IN ('p', 'u', 'x', 'f') "
        "AND (conrelid = ANY($1::regclass[]) OR confrelid = ANY($1::regclass[]))",
        list(tables),
    )
    indexes = await conn.fetch(
        "SELECT i.indexrelid::regclass::text AS name, "
        "pg_get_indexdef(i.indexrelid) AS def FROM pg_index i "
        "WHERE i.indrelid = ANY($1::regclass[]) AND NOT EXISTS ("
        "  SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid"
        "  AND c.contype IN ('p', 'u', 'x'))",
        list(tables),
    )
    foreign = [c for c in constraints if c["contype"] == "f"]
    keys = [c for c in constraints if c["contype"] != "f"]
    for c in foreign + keys:
        await conn.execute(f'ALTER TABLE {c["tbl"]} DROP CONSTRAINT "{c["conname"]}"')
    for index in indexes:
        await conn.execute(f"DROP INDEX {index['name']}")
    return (
        [
            f'ALTER TABLE {c["tbl"]} ADD CONSTRAINT "{c["conname"]}" {c["def"]}'
            for c in keys
        ]
        + [index["def"] for index in indexes]
        + [
            f'ALTER TABLE {c["tbl"]} ADD CONSTRAINT "{c["conname"]}" {c["def"]}'
            for c in foreign
        ]
    )


async def _chunks(
    make: Callable[[int, int], bytes], total: int, size: int, label: str
) -> AsyncIterator[bytes]:
    """COPY data, each chunk built in a thread while the previous one is sent."""
    started = time.perf_counter()
    bounds = [(lo, min(lo + size, total)) for lo in range(0, total, size)]
    pending = asyncio.ensure_future(asyncio.to_thread(make, *bounds[0]))
    for index, (_lo, hi) in enumerate(bounds):
        data = await pending
        if index + 1 < len(bounds):
            pending = asyncio.ensure_future(asyncio.to_thread(make, *bounds[index + 1]))
        yield data
        if index % 8 == 7 or hi == total:
            log(
                f"{label}: {hi:,}/{total:,} rows ({time.perf_counter() - started:.0f} s)"
            )


async def load_postgresql(target: Target, ds: Dataset) -> dict[str, Any]:
    """Create, migrate and fill the PostgreSQL database; timings in seconds."""
    timings: dict[str, float] = {}
    admin = await asyncpg.connect(asyncpg_dsn(f"postgresql://{target.pg_url}/postgres"))
    try:
        await admin.execute(
            f"DROP DATABASE IF EXISTS {target.database_name} WITH (FORCE)"
        )
        await admin.execute(f"CREATE DATABASE {target.database_name}")
    finally:
        await admin.close()
    started = time.perf_counter()
    await asyncio.to_thread(migrate, target.url)
    timings["migrate"] = time.perf_counter() - started

    conn = await asyncpg.connect(
        asyncpg_dsn(target.url), server_settings={"timezone": "UTC"}
    )
    try:
        await conn.execute("SET maintenance_work_mem = '1GB'")
        await _pg_autovacuum(conn, enabled=False)
        plan = Plan(await _pg_columns(conn))
        started = time.perf_counter()
        for table in ("tenants", "users"):
            data = copy_text(
                plan.rows(ds, table, 0, table_size(ds, table), "postgresql")
            )
            await conn.copy_to_table(
                table, source=_single(data), columns=plan.columns[table], format="text"
            )
        rebuild: list[str] = []
        async with conn.transaction():
            rebuild = await _pg_drop_indexes(conn, BIG_TABLES)
            for table in BIG_TABLES:
                await conn.execute(f"TRUNCATE {table}")
                total = table_size(ds, table)

                def make(lo: int, hi: int, table: str = table) -> bytes:
                    return copy_text(plan.rows(ds, table, lo, hi, "postgresql"))

                await conn.copy_to_table(
                    table,
                    source=_chunks(make, total, PG_CHUNK, f"COPY {table}"),
                    columns=plan.columns[table],
                    format="text",
                    freeze=True,
                )
        timings["copy"] = time.perf_counter() - started
        started = time.perf_counter()
        for ddl in rebuild:
            step = time.perf_counter()
            await conn.execute(ddl)
            log(f"{time.perf_counter() - step:6.1f} s  {ddl[:110]}")
        timings["indexes"] = time.perf_counter() - started
    finally:
        await conn.close()
    timings["rollups"] = await rebuild_rollups(target.url)
    conn = await asyncpg.connect(asyncpg_dsn(target.url))
    try:
        started = time.perf_counter()
        await conn.execute("CHECKPOINT")
        timings["checkpoint"] = time.perf_counter() - started
    finally:
        await conn.close()
    return {"timings": timings, "columns": plan.columns, "left_null": plan.left_null}


async def _pg_autovacuum(conn: Any, *, enabled: bool) -> None:
    """Autovacuum (and so auto-analyze) off or back to the default, every table."""
    tables = await conn.fetch(
        "SELECT quote_ident(relname) AS name FROM pg_class WHERE relkind = 'r' "
        "AND relnamespace = 'public'::regnamespace"
    )
    for row in tables:
        if enabled:
            await conn.execute(f"ALTER TABLE {row['name']} RESET (autovacuum_enabled)")
        else:
            await conn.execute(
                f"ALTER TABLE {row['name']} SET (autovacuum_enabled = off)"
            )


async def settle(target: Target) -> float:
    """VACUUM ANALYZE (SQLite: ANALYZE), autovacuum back on; seconds taken."""
    started = time.perf_counter()
    if target.dialect == "sqlite":
        con = sqlite3.connect(target.sqlite_path, isolation_level=None)
        try:
            con.execute("ANALYZE")
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            con.close()
    else:
        conn = await asyncpg.connect(asyncpg_dsn(target.url))
        try:
            await conn.execute("SET maintenance_work_mem = '1GB'")
            await conn.execute("VACUUM (ANALYZE)")
            await _pg_autovacuum(conn, enabled=True)
            await conn.execute("CHECKPOINT")
        finally:
            await conn.close()
    meta = read_meta(target)
    if meta is not None:
        meta["settled"] = True
        target.meta_path.write_text(json.dumps(meta, indent=1))
    elapsed = time.perf_counter() - started
    log(f"settled (VACUUM ANALYZE) in {elapsed:.1f} s")
    return elapsed


async def _single(data: bytes) -> AsyncIterator[bytes]:
    yield data


# -- SQLite -------------------------------------------------------------------


def load_sqlite(target: Target, ds: Dataset) -> dict[str, Any]:
    """Create, migrate and fill the SQLite file; timings in seconds."""
    timings: dict[str, float] = {}
    path = target.sqlite_path
    path.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    started = time.perf_counter()
    migrate(target.url)
    timings["migrate"] = time.perf_counter() - started
    con = sqlite3.connect(path, isolation_level=None)
    try:
        for pragma in (
            "journal_mode=WAL",
            "synchronous=OFF",
            "cache_size=-2000000",
            "temp_store=MEMORY",
            "foreign_keys=OFF",
        ):
            con.execute(f"PRAGMA {pragma}")
        columns: dict[str, list[tuple[str, bool, bool]]] = {}
        for (table,) in con.execute(
            "SELECT name FROM sqlite_master WHERE type='table'"
        ):
            info = con.execute(f"PRAGMA table_info({table})").fetchall()
            columns[table] = [
                (r[1], not r[3] and not r[5], r[4] is not None) for r in info
            ]
        plan = Plan(columns)
        indexes = con.execute(
            "SELECT name, sql FROM sqlite_master WHERE type='index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({', '.join(repr(t) for t in BIG_TABLES)})"
        ).fetchall()
        for name, _sql in indexes:
            con.execute(f"DROP INDEX {name}")
        started = time.perf_counter()
        for table in KNOWN_COLUMNS:
            names = plan.columns[table]
            sql = (
                f"INSERT INTO {table} ({', '.join(names)}) "
                f"VALUES ({', '.join('?' for _ in names)})"
            )
            total = table_size(ds, table)
            con.execute("BEGIN")
            for lo in range(0, total, SQLITE_CHUNK):
                hi = min(lo + SQLITE_CHUNK, total)
                con.executemany(
                    sql, python_rows(plan.rows(ds, table, lo, hi, "sqlite"))
                )
            con.execute("COMMIT")
            log(f"{table}: {total:,} rows ({time.perf_counter() - started:.0f} s)")
        timings["copy"] = time.perf_counter() - started
        started = time.perf_counter()
        for _name, sql in indexes:
            con.execute(sql)
        timings["indexes"] = time.perf_counter() - started
    finally:
        con.close()
    timings["rollups"] = asyncio.run(rebuild_rollups(target.url))
    return {"timings": timings, "columns": plan.columns, "left_null": plan.left_null}


# -- both ---------------------------------------------------------------------


async def rebuild_rollups(url: str) -> float:
    """service.usage.rollups.rebuild(session) in one transaction, if it exists."""
    if not rollups_available():
        return 0.0
    from service.db.session import Database

    module = importlib.import_module("service.usage.rollups")
    db = Database.from_url(url)
    started = time.perf_counter()
    try:
        async with db.write() as session:
            await module.rebuild(session)
    finally:
        await db.dispose()
    elapsed = time.perf_counter() - started
    log(f"rollups rebuilt in {elapsed:.1f} s")
    return elapsed


def choose_tenants(summary: list[dict[str, Any]], dataset: str) -> dict[str, str]:
    """The largest tenant and the median one, by records in the dashboard range
    (the dense data set: its largest tenant only, labelled `dense`)."""
    ranked = sorted(summary, key=lambda s: (-s["records"], s["tenant"]))
    if dataset == "dense":
        return {"dense": ranked[0]["tenant"]}
    return {"large": ranked[0]["tenant"], "median": ranked[len(ranked) // 2]["tenant"]}


def read_meta(target: Target) -> dict[str, Any] | None:
    """The sidecar written after the last load, if any."""
    try:
        meta: dict[str, Any] = json.loads(target.meta_path.read_text())
    except (OSError, ValueError):
        return None
    return meta


async def database_state(target: Target) -> tuple[str | None, int]:
    """(alembic revision, generated interactions) of the existing database."""
    query_version = "SELECT version_num FROM alembic_version"
    query_count = (
        f"SELECT count(*) FROM interactions WHERE tenant_id <> '{WRITES_TENANT}'"
    )
    if target.dialect == "sqlite":
        if not target.sqlite_path.exists():
            return None, 0
        con = sqlite3.connect(f"file:{target.sqlite_path}?mode=ro", uri=True)
        try:
            versions = [r[0] for r in con.execute(query_version)]
            count = con.execute(query_count).fetchone()[0]
        except sqlite3.Error:
            return None, 0
        finally:
            con.close()
        return ",".join(sorted(versions)), int(count)
    try:
        conn = await asyncpg.connect(asyncpg_dsn(target.url))
    except (OSError, asyncpg.PostgresError):
        return None, 0
    try:
        versions = [r[0] for r in await conn.fetch(query_version)]
        count = await conn.fetchval(query_count)
    except asyncpg.PostgresError:
        return None, 0
    finally:
        await conn.close()
    return ",".join(sorted(versions)), int(count)


async def reusable(target: Target) -> tuple[dict[str, Any] | None, str]:
    """The metadata of data that can be reused, or why it cannot."""
    meta = read_meta(target)
    if meta is None:
        return None, "no earlier load recorded"
    expected = {
        "generator_version": GENERATOR_VERSION,
        "seed": SEED,
        "scale": asdict(target.scale),
    }
    for key, value in expected.items():
        if meta.get(key) != value:
            return None, f"{key} changed since the last load"
    head = alembic_head()
    if meta.get("alembic_head") != head:
        return None, f"migrations changed ({meta.get('alembic_head')} -> {head})"
    if meta.get("rollups") != rollups_available():
        return None, "service.usage.rollups appeared or disappeared"
    version, interactions = await database_state(target)
    if version != head:
        return None, f"database is at revision {version}, not {head}"
    if interactions != target.scale.interactions:
        return None, f"database holds {interactions:,} generated interactions"
    return meta, "reusing"


async def prepare(target: Target, reuse: bool) -> dict[str, Any]:
    """Metadata of ready data: reused when allowed and intact, else generated."""
    if reuse:
        meta, reason = await reusable(target)
        if meta is not None:
            log(f"reusing {target.key} data generated {meta['generated_at']}")
            return {**meta, "reused": True}
        log(f"cannot reuse: {reason}; generating")
    scale = target.scale
    log(
        f"generating {scale.records:,} usage records, {scale.interactions:,} "
        f"interactions, {scale.users:,} users, {scale.tenants} tenants ..."
    )
    started = time.perf_counter()
    ds = await asyncio.to_thread(generate, scale, SEED)
    generate_seconds = time.perf_counter() - started
    log(f"generated in {generate_seconds:.1f} s; loading into {target.dialect}")
    start, end = dashboard_range()
    summary = ds.tenant_summary(to_us(start), to_us(end))
    if target.dialect == "postgresql":
        loaded = await load_postgresql(target, ds)
    else:
        loaded = await asyncio.to_thread(load_sqlite, target, ds)
    total = time.perf_counter() - started
    del ds
    timings = {"generate_arrays": generate_seconds, **loaded["timings"], "total": total}
    log("data ready in " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items() if v))
    meta = {
        "generator_version": GENERATOR_VERSION,
        "seed": SEED,
        "scale": asdict(scale),
        "alembic_head": alembic_head(),
        "rollups": rollups_available(),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "timings": timings,
        "columns": loaded["columns"],
        "left_null": loaded["left_null"],
        "tenants": choose_tenants(summary, scale.dataset),
        "settled": False,
        "summary": summary,
    }
    DATA.mkdir(parents=True, exist_ok=True)
    target.meta_path.write_text(json.dumps(meta, indent=1))
    return {**meta, "reused": False}
