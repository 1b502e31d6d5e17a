"""python -m bench: generate realistic usage data, then measure the service.

    python -m bench [--database postgresql|sqlite] [--dataset zipf,dense]
                    [--scale small,medium,full] [--reuse] [--profile]
                    [--only ingest,webhooks,dashboard,postgraphile,statements,memory,explain]

For each data set and scale: figures right after loading (no ANALYZE, no
autovacuum) and again once settled (after VACUUM ANALYZE), webhooks and ingest
also with `serve --workers 2`. Prints every figure as tables, then as JSON,
and writes the JSON to bench/results/<run>.json (a run with --only updates
just those sections of that file), then the targets of every run so far to
bench/results/targets-<database>.json. See bench/README.md.
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

from bench import dashboard, explain, ingest, profile, statements, webhooks
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
from bench.load import log, prepare, settle
from bench.postgraphile import PostGraphile
from bench.report import all_targets, machine, render, render_targets, targets
from bench.server import Server, api_key


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--database", choices=["postgresql", "sqlite"], default="postgresql"
    )
    parser.add_argument(
        "--scale",
        default="full",
        help="comma-separated: small (100k records), medium (1M), full (10M; "
        "SQLite 1M)",
    )
    parser.add_argument(
        "--dataset", default="zipf", help="comma-separated: zipf, dense"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="also measure webhooks and ingest with serve --workers N (1: not)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy profiles of the settled API process (bench/profile.py)",
    )
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
    args.scales = [s.strip() for s in args.scale.split(",") if s.strip()]
    args.datasets = [s.strip() for s in args.dataset.split(",") if s.strip()]
    if set(args.scales) - {"small", "medium", "full"}:
        parser.error("--scale: small, medium, full")
    if set(args.datasets) - {"zipf", "dense"}:
        parser.error("--dataset: zipf, dense")
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


async def _serve(
    target: Target,
    sections: list[str],
    meta: dict[str, Any],
    keys: dict[str, str],
    workers: int,
    phase: str,
    do_profile: bool = False,
) -> dict[str, Any]:
    """One server (and PostGraphile for the dashboard on PostgreSQL): the
    selected server sections, each as measured now."""
    out: dict[str, Any] = {
        "phase": phase,
        "server_workers": workers,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    server = Server(target.url, workers=workers)
    await server.start()
    log(f"[{phase}] server pid {server.pid} ({workers} process(es)) on {server.port}")
    pgl: PostGraphile | None = None
    try:
        if "dashboard" in sections and workers == 1:
            if "postgraphile" in sections and target.dialect == "postgresql":
                pgl = PostGraphile(target)
                try:
                    await pgl.start()
                except Exception as error:  # noqa: BLE001 - reported
                    log(f"PostGraphile FAILED to start: {error!r}")
                    out["postgraphile_error"] = repr(error)
                    await pgl.stop()
                    pgl = None
            out["dashboard"] = await section(
                f"[{phase}] dashboard",
                dashboard.run(target, server, keys["admin"], meta, pgl),
            )
            server.snapshot("dashboard")
        if "ingest" in sections:
            out["ingest"] = await section(
                f"[{phase}] ingest", ingest.run(target, server, keys["admin"], meta)
            )
            server.snapshot("ingest")
        if "webhooks" in sections:
            out["webhooks"] = await section(
                f"[{phase}] webhooks",
                webhooks.run(
                    target,
                    server,
                    keys["admin"],
                    keys["ingest"],
                    # Both ways once (settled, one process); signed elsewhere.
                    ("signed", "key")
                    if phase == "settled" and workers == 1
                    else ("signed",),
                ),
            )
            server.snapshot("webhooks")
        if do_profile:
            out["profile"] = await section(
                f"[{phase}] profile",
                profile.run(target, server, meta, keys["admin"]),
            )
        server.snapshot("end")
    finally:
        if pgl is not None:
            await pgl.stop()
        await server.stop()
    out["memory"] = {
        "peak_vm_hwm_mb": max(s["vm_hwm_mb"] for s in server.snapshots),
        "snapshots": server.snapshots,
    }
    return out


async def run(
    target: Target, sections: list[str], reuse: bool, workers: int, do_profile: bool
) -> dict[str, Any]:
    """Every selected section; the results as one JSON-able dict."""
    results: dict[str, Any] = {
        "run": {
            "target": target.key,
            "dataset": target.scale.dataset,
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
            "settled_before_run": meta.get("settled", True),
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
    served = [s for s in sections if s in SERVER_SECTIONS]
    phases: dict[str, Any] = {}
    if served:
        keys = {
            "admin": await api_key(target.url),
            "ingest": await api_key(target.url, "ingest"),
        }
        if not meta.get("settled", True):
            phases["fresh"] = await _serve(target, served, meta, keys, 1, "fresh")
        results["data"]["settle_seconds"] = round(await settle(target), 1)
        phases["settled"] = await _serve(
            target, served, meta, keys, 1, "settled", do_profile
        )
        writes = [s for s in served if s in ("ingest", "webhooks")]
        if workers > 1 and writes:
            phases[f"settled_workers_{workers}"] = await _serve(
                target, writes, meta, keys, workers, "settled"
            )
        results["phases"] = phases
        results["memory"] = {
            **phases["settled"]["memory"],
            "over": [s for s in served if s != "memory"],
        }
        if "webhooks" in sections:
            results["webhooks_in_process"] = await section(
                "webhooks in process", webhooks.in_process(target)
            )
        if do_profile and "profile" in phases["settled"]:
            results["profile"] = phases["settled"].pop("profile")
    elif needs_data and not meta.get("settled", True):
        await settle(target)
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
    if "phases" in results:
        for old in ("dashboard", "ingest", "webhooks"):  # the layout before phases
            merged.pop(old, None)
    if "phases" in results and "phases" in earlier:
        # --only: keep the sections this run did not measure, per phase.
        merged["phases"] = {
            name: {**earlier["phases"].get(name, {}), **phase}
            for name, phase in results["phases"].items()
        }
    # Peak memory is over the sections a run served: a partial run does not
    # replace the figure of a run that served more of them.
    before, now = earlier.get("memory"), results.get("memory")
    if before and now and not set(before.get("over", [])) <= set(now["over"]):
        merged["memory"] = {**before, "later_partial_run": now}
    merged["targets"] = targets(merged)
    return merged


def main(argv: Sequence[str] | None = None) -> None:
    """Run the benchmark for every data set and scale asked for, and report."""
    args = parse(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for dataset in args.datasets:
        for scale in args.scales:
            target = Target(
                args.database, scale_for(args.database, scale, dataset), args.pg
            )
            results = asyncio.run(
                run(target, args.sections, args.reuse, args.workers, args.profile)
            )
            merged = merge(target, results)
            target.results_path.write_text(
                json.dumps(merged, indent=1, default=str) + "\n"
            )
            sys.stdout.write(render(merged))
            sys.stdout.write("\n" + json.dumps(merged, default=str) + "\n")
            log(f"written to {target.results_path}")
    summary = all_targets(args.database)
    path = RESULTS / f"targets-{args.database}.json"
    path.write_text(json.dumps(summary, indent=1, default=str) + "\n")
    sys.stdout.write("\n" + render_targets(summary) + "\n")
    sys.stdout.write(json.dumps(summary, default=str) + "\n")
    log(f"targets of every run written to {path}")


if __name__ == "__main__":
    main()
