"""Plans of every statement the dashboard query sends, on the benchmark data.

The operation runs in this process against the benchmark database for the
large and the median tenant; a before_cursor_execute listener captures each
statement with its parameters, and each is then run again under EXPLAIN
(ANALYZE, BUFFERS) on PostgreSQL, or timed and shown with EXPLAIN QUERY PLAN
on SQLite. The hand-written SQL's statements get the same treatment. Plans go
to bench/results/explain-<database>-<scale>.txt; the JSON keeps the timings.
"""

from __future__ import annotations

import re
import sqlite3
import time
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg

from bench.config import RESULTS, Target, asyncpg_dsn
from bench.dashboard import QUERY, HandWritten, variables
from bench.inprocess import capture, execute
from service.db.session import CreditSum, Database
from service.db.timebuckets import sqlite_truncate

_EXECUTION = re.compile(r"Execution Time: ([\d.]+) ms")
_PLANNING = re.compile(r"Planning Time: ([\d.]+) ms")


def _short(statement: str) -> str:
    return " ".join(statement.split())[:140]


def _is_query(statement: str) -> bool:
    return statement.lstrip().upper().startswith(("SELECT", "WITH"))


async def _captured(
    target: Target, meta: dict[str, Any], tenant: str
) -> dict[str, list[tuple[str, Any]]]:
    db = Database.from_url(target.url)
    hand = HandWritten(db, meta["columns"]["usage_records"])
    try:
        await execute(db, QUERY, variables(tenant))  # warm-up
        with capture() as api:
            await execute(db, QUERY, variables(tenant))
        with capture() as sql:
            await hand.answer(tenant)
    finally:
        await db.dispose()
    return {"api": api.statements, "handwritten": sql.statements}


def _literal(value: Any) -> str:
    """A parameter as SQL text that PostgreSQL coerces to the parameter's type."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        items = ",".join('"' + _text(v).replace('"', '\\"') + '"' for v in value)
        return _quote("{" + items + "}")
    return _quote(_text(value))


def _text(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def _explain_postgresql(
    target: Target, statements: list[tuple[str, Any]]
) -> list[dict[str, Any]]:
    """EXPLAIN ANALYZE with the parameters (a custom plan, as the first five
    executions of a prepared statement get), then the generic plan PostgreSQL
    may switch a prepared statement to after five executions (asyncpg prepares
    every statement; plan_cache_mode=auto)."""
    conn = await asyncpg.connect(
        asyncpg_dsn(target.url), server_settings={"timezone": "UTC"}
    )
    out = []
    try:
        for statement, parameters in statements:
            if not _is_query(statement):
                continue
            rows = await conn.fetch(
                f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *(parameters or ())
            )
            plan = "\n".join(r[0] for r in rows)
            generic = await _generic_plan(conn, statement, parameters or ())
            out.append(
                {
                    "statement": _short(statement),
                    "execution_ms": _ms(_EXECUTION, plan),
                    "planning_ms": _ms(_PLANNING, plan),
                    "generic_plan_execution_ms": _ms(_EXECUTION, generic),
                    "top": plan.splitlines()[0].strip(),
                    "sql": statement,
                    "parameters": _printable(parameters),
                    "plan": plan + "\n\n-- generic plan (plan_cache_mode = "
                    "force_generic_plan):\n" + generic,
                }
            )
    finally:
        await conn.close()
    return out


async def _generic_plan(conn: Any, statement: str, parameters: Any) -> str:
    literals = ", ".join(_literal(v) for v in parameters)
    execute = (
        f"EXECUTE bench_generic({literals})" if literals else "EXECUTE bench_generic"
    )
    await conn.execute(f"PREPARE bench_generic AS {statement}")
    try:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {execute}")
        return "\n".join(r[0] for r in rows)
    except asyncpg.PostgresError as error:
        return f"(no generic plan: {error})"
    finally:
        await conn.execute("RESET plan_cache_mode")
        await conn.execute("DEALLOCATE bench_generic")


def _ms(pattern: re.Pattern[str], plan: str) -> float | None:
    found = pattern.search(plan)
    return float(found.group(1)) if found else None


def _explain_sqlite(
    target: Target, statements: list[tuple[str, Any]]
) -> list[dict[str, Any]]:
    con = sqlite3.connect(f"file:{target.sqlite_path}?mode=ro", uri=True)
    con.create_aggregate("credit_sum", 1, CreditSum)  # type: ignore[arg-type]
    con.create_function("tz_trunc", 3, sqlite_truncate, deterministic=True)
    out = []
    try:
        for statement, parameters in statements:
            if not _is_query(statement):
                continue
            plan = "\n".join(
                str(row[3])
                for row in con.execute(
                    f"EXPLAIN QUERY PLAN {statement}", parameters or ()
                )
            )
            started = time.perf_counter()
            con.execute(statement, parameters or ()).fetchall()
            elapsed = (time.perf_counter() - started) * 1000
            out.append(
                {
                    "statement": _short(statement),
                    "execution_ms": round(elapsed, 2),
                    "planning_ms": None,
                    "top": plan.splitlines()[0] if plan else "",
                    "sql": statement,
                    "parameters": _printable(parameters),
                    "plan": plan,
                }
            )
    finally:
        con.close()
    return out


def _printable(parameters: Any) -> str:
    text = repr(parameters)
    return text if len(text) <= 600 else text[:600] + " ..."


async def run(target: Target, meta: dict[str, Any]) -> dict[str, Any]:
    """Execution time and plan of each statement, API and hand-written."""
    report: dict[str, Any] = {}
    lines: list[str] = []
    for label, tenant in meta["tenants"].items():
        captured = await _captured(target, meta, tenant)
        for source, statements in captured.items():
            if target.dialect == "postgresql":
                explained = await _explain_postgresql(target, statements)
            else:
                explained = _explain_sqlite(target, statements)
            keys = ("statement", "execution_ms", "planning_ms", "top")
            report[f"{label}/{source}"] = [
                {k: e[k] for k in (*keys, "generic_plan_execution_ms") if k in e}
                for e in explained
            ]
            for number, e in enumerate(explained, 1):
                heading = f"{label} tenant {tenant}, {source} statement {number}"
                lines += [
                    "=" * 100,
                    f"{heading}: {e['execution_ms']} ms",
                    "-" * 100,
                    e["sql"],
                    f"parameters: {e['parameters']}",
                    "-" * 100,
                    e["plan"],
                    "",
                ]
    path = RESULTS / f"explain-{target.key}.txt"
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return {
        "plans_file": str(path.relative_to(RESULTS.parent.parent)),
        "statements": report,
    }
