"""The machine, the targets, and every figure as tables."""

from __future__ import annotations

import os
import platform
import sqlite3
import subprocess
import sys
from typing import Any

import asyncpg

from bench.config import ROOT, Target, asyncpg_dsn
from bench.stats import table

INGEST_RATE = 20_000
INGEST_RATIO = 0.5
DASHBOARD_P50_MS = 50
DASHBOARD_RATIO = 1.5
MEMORY_MB = 300


def _read(path: str) -> str:
    try:
        with open(path) as file:
            return file.read()
    except OSError:
        return ""


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


async def machine(target: Target) -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(
        (
            int(line.split()[1]) // 1024
            for line in _read("/proc/meminfo").splitlines()
            if line.startswith("MemTotal")
        ),
        0,
    )
    changed = _git("status", "--porcelain", "--", "service", "alembic").splitlines()
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_mb": memory,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted_service_files": len(changed),
        "load_average_at_start": float(_read("/proc/loadavg").split()[0] or 0),
    }
    if target.dialect == "postgresql":
        conn = await asyncpg.connect(
            asyncpg_dsn(f"postgresql://{target.pg_url}/postgres")
        )
        try:
            info["postgresql"] = await conn.fetchval("SHOW server_version")
            rows = await conn.fetch(
                "SELECT name, setting, unit FROM pg_settings WHERE name IN "
                "('shared_buffers', 'work_mem', 'effective_cache_size', 'jit', "
                "'max_parallel_workers_per_gather', 'synchronous_commit', "
                "'random_page_cost')"
            )
            info["postgresql_settings"] = {
                r["name"]: f"{r['setting']}{' x ' + r['unit'] if r['unit'] else ''}"
                for r in rows
            }
        finally:
            await conn.close()
    return info


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the measured figure and whether it holds."""
    out: list[dict[str, Any]] = []

    def add(name: str, measured: Any, wanted: str, holds: bool | None) -> None:
        out.append(
            {"target": name, "measured": measured, "wanted": wanted, "holds": holds}
        )

    for name in ("ingest", "webhooks", "dashboard", "statements", "explain"):
        failed = results.get(name)
        if failed and "error" in failed:
            add(f"{name} section ran", failed["error"][:80], "no error", False)
    ingest = results.get("ingest")
    if ingest and "error" not in ingest:
        rate = ingest["api"]["records_per_second"]
        add("ingest records/s (API)", rate, f">= {INGEST_RATE:,}", rate >= INGEST_RATE)
        ratio = ingest["ratio_api_to_handwritten"]
        add(
            "ingest API / hand-written",
            ratio,
            f">= {INGEST_RATIO}",
            ratio is not None and ratio >= INGEST_RATIO,
        )
    dashboard = results.get("dashboard")
    if dashboard and "error" not in dashboard:
        scale = results.get("data", {}).get("scale", {})
        note = "" if scale.get("records") == 10_000_000 else " (target is for 10M)"
        for label, entry in dashboard["tenants"].items():
            p50 = entry["api"].get("p50_ms")
            add(
                f"dashboard p50 ms, {label} tenant{note}",
                p50,
                f"<= {DASHBOARD_P50_MS}",
                p50 is not None and p50 <= DASHBOARD_P50_MS,
            )
            ratio = entry["ratio_p50"]
            add(
                f"dashboard API / SQL p50, {label} tenant",
                ratio,
                f"<= {DASHBOARD_RATIO}",
                ratio is not None and ratio <= DASHBOARD_RATIO,
            )
            add(
                f"dashboard answers equal (API, SQL, generator), {label} tenant",
                entry["answers_identical"] and entry["api_totals_equal_generated"],
                "true",
                entry["answers_identical"] and entry["api_totals_equal_generated"],
            )
    statements = results.get("statements")
    if statements and "error" not in statements:
        counts = statements["statements_per_request"]
        add(
            "statements per request at 10/1,000/10,000 users",
            "/".join(str(v) for v in counts.values()),
            "all equal",
            statements["equal"],
        )
    memory = results.get("memory")
    if memory:
        peak = memory["peak_vm_hwm_mb"]
        add("server peak memory MB (VmHWM)", peak, f"< {MEMORY_MB}", peak < MEMORY_MB)
    return out


def render(results: dict[str, Any]) -> str:
    """Every section as a table."""
    parts: list[str] = []
    run = results.get("run", {})
    sections = ("ingest", "webhooks", "dashboard", "statements", "explain")
    failed = {n: results[n]["error"] for n in sections if "error" in results.get(n, {})}
    results = {k: v for k, v in results.items() if k not in failed}
    parts.append(f"# Benchmark {run.get('target')} ({run.get('finished_at')})")
    m = results.get("machine", {})
    parts.append(
        table(
            ["machine", "value"],
            [
                ["cpu", f"{m.get('cpu')} x {m.get('cores')}"],
                ["memory MB", m.get("memory_mb")],
                ["python / sqlite", f"{m.get('python')} / {m.get('sqlite')}"],
                ["postgresql", m.get("postgresql")],
                [
                    "git commit (uncommitted service files)",
                    f"{m.get('git_commit')} ({m.get('uncommitted_service_files')})",
                ],
                ["load average at start (other work)", m.get("load_average_at_start")],
            ],
        )
    )
    data = results.get("data")
    if data:
        scale = data["scale"]
        timings = data.get("timings", {})
        parts.append(
            table(
                ["data", "value"],
                [
                    [
                        "usage records / interactions",
                        f"{scale['records']:,} / {scale['interactions']:,}",
                    ],
                    [
                        "users / tenants / days",
                        f"{scale['users']:,} / {scale['tenants']} / {scale['days']}",
                    ],
                    [
                        "generated at (reused this run)",
                        f"{data['generated_at']} ({data['reused']})",
                    ],
                    *[[f"generation: {k} s", v] for k, v in timings.items()],
                    [
                        "rows written by benchmark runs so far",
                        data.get("benchmark_rows"),
                    ],
                    [
                        "dashboard tenants",
                        ", ".join(f"{k} {v}" for k, v in data["tenants"].items()),
                    ],
                ],
            )
        )
    ingest = results.get("ingest")
    if ingest:
        parts.append(
            table(
                [
                    "ingest",
                    "records/s",
                    "records",
                    "seconds",
                    "batch p50 ms",
                    "batch p99 ms",
                    "per round",
                ],
                [
                    [
                        name,
                        ingest[key]["records_per_second"],
                        ingest[key]["records"],
                        ingest[key]["seconds"],
                        ingest[key]["batch_latency"].get("p50_ms"),
                        ingest[key]["batch_latency"].get("p99_ms"),
                        " ".join(
                            f"{r:,.0f}"
                            for r in ingest[key]["per_round_records_per_second"]
                        ),
                    ]
                    for name, key in (
                        ("API ingestUsage", "api"),
                        ("hand-written INSERT", "handwritten"),
                    )
                ]
                + [
                    [
                        "ratio API / hand-written",
                        ingest["ratio_api_to_handwritten"],
                        None,
                        None,
                        None,
                        None,
                        None,
                    ]
                ],
            )
        )
    webhooks = results.get("webhooks")
    if webhooks:
        lat = webhooks["latency"]
        parts.append(
            table(
                [
                    "webhooks (c=32)",
                    "req/s",
                    "p50 ms",
                    "p99 ms",
                    "requests",
                    "errors",
                    "server CPU ms/req",
                ],
                [
                    [
                        webhooks["mutation"],
                        webhooks["requests_per_second"],
                        lat.get("p50_ms"),
                        lat.get("p99_ms"),
                        webhooks["requests"],
                        webhooks["errors"],
                        webhooks["server_cpu_ms_per_request"],
                    ]
                ],
            )
        )
    dashboard = results.get("dashboard")
    if dashboard:
        rows = []
        for label, e in dashboard["tenants"].items():
            rows.append(
                [
                    f"{label} ({e['tenant']}, {e['records_in_range']:,} rec in range)",
                    e["api"].get("p50_ms"),
                    e["api"].get("p99_ms"),
                    e["handwritten"].get("p50_ms"),
                    e["handwritten"].get("p99_ms"),
                    e["ratio_p50"],
                    e["api"].get("n"),
                    "yes"
                    if e["answers_identical"] and e["api_totals_equal_generated"]
                    else "NO",
                ]
            )
        parts.append(
            table(
                [
                    "dashboard",
                    "API p50 ms",
                    "API p99 ms",
                    "SQL p50 ms",
                    "SQL p99 ms",
                    "API/SQL",
                    "n",
                    "same answer",
                ],
                rows,
            )
        )
        for label, e in dashboard["tenants"].items():
            if e["differences"]:
                parts.append(f"{label}: differences: " + "; ".join(e["differences"]))
    statements = results.get("statements")
    if statements and "error" not in statements:
        counts = statements["statements_per_request"]
        parts.append(
            table(
                ["users in tenant", *counts.keys()],
                [["statements per request", *counts.values()]],
            )
        )
    memory = results.get("memory")
    if memory:
        parts.append(
            table(
                ["server memory after", "VmHWM MB", "VmRSS MB", "CPU s"],
                [
                    [s["after"], s["vm_hwm_mb"], s["vm_rss_mb"], s["cpu_seconds"]]
                    for s in memory["snapshots"]
                ],
            )
        )
    explain = results.get("explain")
    if explain:
        rows = []
        for key, entries in explain["statements"].items():
            for e in entries:
                rows.append(
                    [
                        key,
                        e["execution_ms"],
                        e.get("generic_plan_execution_ms"),
                        e["statement"][:90],
                    ]
                )
        parts.append(
            table(
                [f"explain ({explain['plans_file']})", "ms", "generic ms", "statement"],
                rows,
            )
        )
    for name, error in failed.items():
        parts.append(f"{name}: FAILED: {error}")
    checks = results.get("targets", [])
    if checks:
        parts.append(
            table(
                ["target", "measured", "wanted", "holds"],
                [
                    [
                        c["target"],
                        c["measured"],
                        c["wanted"],
                        {True: "yes", False: "NO", None: "-"}[c["holds"]],
                    ]
                    for c in checks
                ],
            )
        )
    return "\n\n".join(parts) + "\n"
