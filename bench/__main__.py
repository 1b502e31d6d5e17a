"""python -m bench: generate realistic usage data, then measure the service.

    python -m bench [--database postgresql|sqlite] [--scale full|small] [--reuse]
                    [--only ingest,webhooks,dashboard,statements,memory,explain]

Prints every figure as tables, then as JSON, and writes the JSON to
bench/results/<database>-<scale>.json (a run with --only updates just those
sections of that file). See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import traceback
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from bench import dashboard, explain, ingest, statements, webhooks
from bench.config import (
    RESULTS,
    SECTIONS,
    SERVER_SECTIONS,
    WRITES_TENANT,
    Target,
    asyncpg_dsn,
    default_pg_url,
    scale_for,
)
from bench.load import log, prepare
from bench.report import machine, render, targets
from bench.server import Server, api_key


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--database", choices=["postgresql", "sqlite"], default="postgresql"
    )
    parser.add_argument("--scale", choices=["full", "small"], default="full")
    parser.add_argument(
        "--reuse", action="store_true", help="keep the generated data if it is intact"
    )
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated: {','.join(SECTIONS)}",
    )
    parser.add_argument(
        "--pg", default=default_pg_url(), help="PostgreSQL user@host:port (trust auth)"
    )
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    return args


async def benchmark_rows(target: Target) -> int:
    """Usage rows written into the writes tenant by earlier ingest/webhook runs."""
    sql = (
        "SELECT count(*) FROM usage_records WHERE interaction_id IN "
        f"(SELECT id FROM interactions WHERE tenant_id = '{WRITES_TENANT}')"
    )
    if target.dialect == "sqlite":
        import sqlite3

        con = sqlite3.connect(f"file:{target.sqlite_path}?mode=ro", uri=True)
        try:
            return int(con.execute(sql).fetchone()[0])
        finally:
            con.close()
    conn = await asyncpg.connect(asyncpg_dsn(target.url))
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def section(name: str, work: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """A section's results, or its error (the other sections still run)."""
    log(f"{name} ...")
    started = time.perf_counter()
    try:
        result = await work
    except Exception as error:  # noqa: BLE001 - reported, not hidden
        log(f"{name} FAILED: {error!r}")
        traceback.print_exc()
        return {"error": repr(error)}
    log(f"{name} done in {time.perf_counter() - started:.0f} s")
    return result


async def run(target: Target, sections: list[str], reuse: bool) -> dict[str, Any]:
    """Every selected section; the results as one JSON-able dict."""
    results: dict[str, Any] = {
        "run": {
            "target": target.key,
            "sections": sections,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        "machine": await machine(target),
    }
    needs_data = [s for s in sections if s != "statements"]
    meta: dict[str, Any] = {}
    if needs_data:
        meta = await prepare(target, reuse)
        written = await benchmark_rows(target)
        results["data"] = {
            "scale": meta["scale"],
            "generated_at": meta["generated_at"],
            "reused": meta["reused"],
            "timings": {k: round(v, 1) for k, v in meta["timings"].items()},
            "tenants": meta["tenants"],
            "columns": meta["columns"],
            "left_null": meta["left_null"],
            "rollups_rebuilt": meta["rollups"],
            "benchmark_rows": written,
        }
        if written > 0.05 * meta["scale"]["records"]:
            log(
                f"WARNING: earlier runs wrote {written:,} rows into {WRITES_TENANT}; "
                "run without --reuse to start from fresh data"
            )
    if any(s in SERVER_SECTIONS for s in sections):
        key = await api_key(target.url)
        server = Server(target.url)
        await server.start()
        log(f"server pid {server.pid} on port {server.port}")
        try:
            if "dashboard" in sections:
                results["dashboard"] = await section(
                    "dashboard", dashboard.run(target, server, key, meta)
                )
                server.snapshot("dashboard")
            if "ingest" in sections:
                results["ingest"] = await section(
                    "ingest", ingest.run(target, server, key, meta)
                )
                server.snapshot("ingest")
            if "webhooks" in sections:
                results["webhooks"] = await section(
                    "webhooks", webhooks.run(target, server, key)
                )
                server.snapshot("webhooks")
            server.snapshot("end")
        finally:
            await server.stop()
        results["memory"] = {
            "peak_vm_hwm_mb": max(s["vm_hwm_mb"] for s in server.snapshots),
            "over": [s for s in sections if s in SERVER_SECTIONS and s != "memory"],
            "snapshots": server.snapshots,
        }
    if "statements" in sections:
        results["statements"] = await section("statements", statements.run(target))
    if "explain" in sections:
        results["explain"] = await section("explain", explain.run(target, meta))
    results["run"]["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return results


def merge(target: Target, results: dict[str, Any]) -> dict[str, Any]:
    """Results of this run over those of earlier runs (for --only)."""
    try:
        earlier: dict[str, Any] = json.loads(target.results_path.read_text())
    except (OSError, ValueError):
        earlier = {}
    merged = {**earlier, **results}
    # Peak memory is over the sections a run served: a partial run does not
    # replace the figure of a run that served more of them.
    before, now = earlier.get("memory"), results.get("memory")
    if before and now and not set(before["over"]) <= set(now["over"]):
        merged["memory"] = {**before, "later_partial_run": now}
    merged["targets"] = targets(merged)
    return merged


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark and report."""
    args = parse(argv)
    target = Target(args.database, scale_for(args.database, args.scale), args.pg)
    results = asyncio.run(run(target, args.sections, args.reuse))
    merged = merge(target, results)
    RESULTS.mkdir(parents=True, exist_ok=True)
    target.results_path.write_text(json.dumps(merged, indent=1, default=str) + "\n")
    sys.stdout.write(render(merged))
    sys.stdout.write("\n" + json.dumps(merged, default=str) + "\n")
    log(f"written to {target.results_path}")


if __name__ == "__main__":
    main()
