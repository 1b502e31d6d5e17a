"""The machine, the targets, and every figure as tables."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import subprocess
import sys
from typing import Any

import asyncpg

from bench.config import RESULTS, ROOT, Target, asyncpg_dsn
from bench.stats import table

# Issue 12's targets (PostgreSQL, one API process unless said).
WEBHOOK_RATE = 500
WEBHOOK_P99_MS = 150
WEBHOOK_CPU_MS = 2.0
INGEST_RATE = 20_000
INGEST_RATIO = 0.5
DASHBOARD_P50_MS = {"median": 25, "large": 50, "dense": 50}
SQLITE_DASHBOARD_P50_MS = {"median": 50, "large": 100}
POSTGRAPHILE_RATIO = 0.1
GROWTH_RATIO = 1.5  # 10M within 1.5x of 100k
FRESH_RATIO = 1.5  # right after loading within 1.5x of settled
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


def _records_label(records: int) -> str:
    return {100_000: "100k", 1_000_000: "1M", 10_000_000: "10M"}.get(
        records, f"{records:,}"
    )


def run_label(results: dict[str, Any]) -> str:
    """`zipf 1M`, `dense 100k`, ..."""
    scale = results.get("data", {}).get("scale", {})
    return f"{scale.get('dataset', 'zipf')} {_records_label(scale.get('records', 0))}"


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of one run with the measured figure and whether it holds."""
    out: list[dict[str, Any]] = []
    label = run_label(results)
    dialect = results.get("run", {}).get("target", "postgresql").split("-")[0]
    records = results.get("data", {}).get("scale", {}).get("records", 0)

    def add(name: str, measured: Any, wanted: str, holds: bool | None) -> None:
        out.append(
            {
                "run": label,
                "target": name,
                "measured": measured,
                "wanted": wanted,
                "holds": holds,
            }
        )

    phases: dict[str, Any] = results.get("phases", {})
    for phase_name, phase in phases.items():
        workers = phase.get("server_workers", 1)
        tag = (
            f"{phase_name}"
            if workers == 1
            else f"{phase.get('phase')}, {workers} API processes"
        )
        for name in ("ingest", "webhooks", "dashboard"):
            failed = phase.get(name)
            if failed and "error" in failed:
                add(
                    f"{name} section ran ({tag})",
                    failed["error"][:80],
                    "no error",
                    False,
                )
        webhooks = phase.get("webhooks")
        if webhooks and "error" not in webhooks:
            for run_name, w in webhooks["runs"].items():
                rate, p99 = w["requests_per_second"], w["latency"].get("p99_ms")
                cpu = w["server_cpu_ms_per_request"]
                add(
                    f"webhook {run_name}, c=32 ({tag})",
                    f"{rate:,.0f}/s, p99 {p99:,.0f} ms, {cpu:.2f} ms CPU",
                    f">= {WEBHOOK_RATE}/s, p99 <= {WEBHOOK_P99_MS} ms, "
                    f"<= {WEBHOOK_CPU_MS:g} ms CPU",
                    rate >= WEBHOOK_RATE
                    and p99 is not None
                    and p99 <= WEBHOOK_P99_MS
                    and cpu <= WEBHOOK_CPU_MS
                    and not w["errors"],
                )
        ingest = phase.get("ingest")
        if ingest and "error" not in ingest:
            rate = ingest["api"]["records_per_second"]
            ratio = ingest["ratio_api_to_handwritten"]
            add(
                f"ingestUsage 1,000/batch ({tag})",
                f"{rate:,.0f} records/s, {ratio}x hand-written",
                f">= {INGEST_RATE:,}/s and >= {INGEST_RATIO}x",
                rate >= INGEST_RATE and ratio is not None and ratio >= INGEST_RATIO,
            )
        dashboard = phase.get("dashboard")
        if dashboard and "error" not in dashboard:
            for tenant, e in dashboard["tenants"].items():
                p50 = e["api"].get("p50_ms")
                limits = (
                    SQLITE_DASHBOARD_P50_MS if dialect == "sqlite" else DASHBOARD_P50_MS
                )
                limit = limits.get(tenant)
                at = "1M" if dialect == "sqlite" else "10M"
                note = "" if _records_label(records) == at else f" (target at {at})"
                if limit is not None:
                    add(
                        f"dashboard p50, {tenant} tenant ({tag}){note}",
                        p50,
                        f"<= {limit} ms",
                        p50 is not None and p50 <= limit,
                    )
                pgl = e.get("postgraphile")
                if pgl:
                    ratio = pgl.get("ratio_api_to_postgraphile_p50")
                    note = "" if records == 1_000_000 else " (target at 1M)"
                    add(
                        f"dashboard / PostGraphile p50, {tenant} tenant ({tag}){note}",
                        f"{ratio} ({p50} / {pgl['latency'].get('p50_ms')} ms)",
                        f"<= {POSTGRAPHILE_RATIO}",
                        ratio is not None and ratio <= POSTGRAPHILE_RATIO,
                    )
                same = e["answers_identical"] and e["api_totals_equal_generated"]
                if pgl:
                    same = same and pgl["answers_identical"]
                add(
                    f"dashboard answers equal (API, SQL, generator"
                    f"{', PostGraphile' if pgl else ''}), {tenant} tenant ({tag})",
                    same,
                    "true",
                    same,
                )
    fresh = phases.get("fresh", {}).get("dashboard")
    settled = phases.get("settled", {}).get("dashboard")
    if fresh and settled and "error" not in fresh and "error" not in settled:
        for tenant, e in fresh["tenants"].items():
            a = e["api"].get("p50_ms")
            b = settled["tenants"].get(tenant, {}).get("api", {}).get("p50_ms")
            ratio = round(a / b, 2) if a and b else None
            add(
                f"dashboard right after loading / settled p50, {tenant} tenant",
                f"{ratio} ({a} / {b} ms)",
                f"<= {FRESH_RATIO}",
                ratio is not None and ratio <= FRESH_RATIO,
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


def all_targets(dialect: str) -> dict[str, Any]:
    """The targets of every run on record, and the 10M / 100k growth."""
    runs: dict[str, dict[str, Any]] = {}
    for path in sorted(RESULTS.glob(f"{dialect}-*.json")):
        try:
            results = json.loads(path.read_text())
        except ValueError:
            continue
        if "phases" in results:
            runs[path.stem] = results
    rows: list[dict[str, Any]] = []
    for results in runs.values():
        rows.extend(results.get("targets") or targets(results))
    by_label = {run_label(r): r for r in runs.values()}
    for dataset in ("zipf", "dense"):
        small, full = by_label.get(f"{dataset} 100k"), by_label.get(f"{dataset} 10M")
        if not small or not full:
            continue
        for tenant, e in _settled_dashboard(full).items():
            a = e["api"].get("p50_ms")
            b = _settled_dashboard(small).get(tenant, {}).get("api", {}).get("p50_ms")
            ratio = round(a / b, 2) if a and b else None
            rows.append(
                {
                    "run": f"{dataset} 10M vs 100k",
                    "target": f"dashboard p50 10M / 100k, {tenant} tenant (settled)",
                    "measured": f"{ratio} ({a} / {b} ms)",
                    "wanted": f"<= {GROWTH_RATIO}",
                    "holds": ratio is not None and ratio <= GROWTH_RATIO,
                }
            )
    return {
        "dialect": dialect,
        "runs": {
            name: {
                "label": run_label(r),
                "finished_at": r.get("run", {}).get("finished_at"),
                "git_commit": r.get("machine", {}).get("git_commit"),
                "load_average_at_start": r.get("machine", {}).get(
                    "load_average_at_start"
                ),
            }
            for name, r in runs.items()
        },
        "targets": rows,
    }


def _settled_dashboard(results: dict[str, Any]) -> dict[str, Any]:
    dashboard = results.get("phases", {}).get("settled", {}).get("dashboard") or {}
    tenants: dict[str, Any] = dashboard.get("tenants", {})
    return tenants


def render_targets(summary: dict[str, Any]) -> str:
    """Every target of every run as one table."""
    return table(
        ["run", "target", "measured", "wanted", ""],
        [
            [
                c["run"],
                c["target"],
                c["measured"],
                c["wanted"],
                {True: "✓", False: "✗", None: "-"}[c["holds"]],
            ]
            for c in summary["targets"]
        ],
    )


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
    for name, phase in results.get("phases", {}).items():
        parts.extend(_phase_tables(name, phase))
    in_process = results.get("webhooks_in_process")
    if in_process and "error" not in in_process:
        parts.append(
            table(
                [
                    "mutation in process (schema.execute, c=1)",
                    "CPU ms",
                    "wall p50 ms",
                    "statements",
                ],
                [
                    [m, e["cpu_ms_mean"], e["wall"].get("p50_ms"), e.get("statements")]
                    for m, e in in_process["mutations"].items()
                ],
            )
        )
    prof = results.get("profile")
    if prof and "error" not in prof:
        for what, e in prof.items():
            if not isinstance(e, dict):
                continue
            inclusive = dict(e["inclusive_by_area_percent"])
            parts.append(
                table(
                    [
                        f"profile: {what} ({e['samples']} samples)",
                        "% self",
                        "% inclusive",
                    ],
                    [
                        [area, pct, inclusive.get(area)]
                        for area, pct in e["self_by_area_percent"][:14]
                    ],
                )
            )
            parts.append(
                table(
                    [f"profile: {what}, top functions", "% inclusive"],
                    e["top_inclusive_functions_percent"][:12],
                )
            )
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
                ["target", "measured", "wanted", ""],
                [
                    [
                        c["target"],
                        c["measured"],
                        c["wanted"],
                        {True: "✓", False: "✗", None: "-"}[c["holds"]],
                    ]
                    for c in checks
                ],
            )
        )
    return "\n\n".join(parts) + "\n"


def _phase_tables(name: str, phase: dict[str, Any]) -> list[str]:
    """Tables of one phase (fresh, settled, settled with N API processes)."""
    parts: list[str] = []
    tag = f"{name}"
    ingest = phase.get("ingest")
    if ingest and "error" not in ingest:
        parts.append(
            table(
                [
                    f"ingest ({tag})",
                    "records/s",
                    "records",
                    "batch p50 ms",
                    "batch p99 ms",
                    "server CPU s/1,000",
                    "load before",
                ],
                [
                    [
                        "API ingestUsage",
                        ingest["api"]["records_per_second"],
                        ingest["api"]["records"],
                        ingest["api"]["batch_latency"].get("p50_ms"),
                        ingest["api"]["batch_latency"].get("p99_ms"),
                        ingest["api"].get("server_cpu_seconds_per_1000_records"),
                        ingest.get("load_average_before"),
                    ],
                    [
                        "hand-written INSERT",
                        ingest["handwritten"]["records_per_second"],
                        ingest["handwritten"]["records"],
                        ingest["handwritten"]["batch_latency"].get("p50_ms"),
                        ingest["handwritten"]["batch_latency"].get("p99_ms"),
                        None,
                        None,
                    ],
                    [
                        "ratio API / hand-written",
                        ingest["ratio_api_to_handwritten"],
                        None,
                        None,
                        None,
                        None,
                        None,
                    ],
                ],
            )
        )
    webhooks = phase.get("webhooks")
    if webhooks and "error" not in webhooks:
        parts.append(
            table(
                [
                    f"webhooks c=32 ({tag})",
                    "req/s",
                    "p50 ms",
                    "p99 ms",
                    "errors",
                    "server CPU ms/req",
                    "load before",
                ],
                [
                    [
                        run_name,
                        w["requests_per_second"],
                        w["latency"].get("p50_ms"),
                        w["latency"].get("p99_ms"),
                        w["errors"],
                        w["server_cpu_ms_per_request"],
                        w["load_average_before"],
                    ]
                    for run_name, w in webhooks["runs"].items()
                ],
            )
        )
    dashboard = phase.get("dashboard")
    if dashboard and "error" not in dashboard:
        rows = []
        for label, e in dashboard["tenants"].items():
            pgl = e.get("postgraphile") or {}
            same = e["answers_identical"] and e["api_totals_equal_generated"]
            rows.append(
                [
                    f"{label} ({e['tenant']}, {e['records_in_range']:,} rec)",
                    e["api"].get("p50_ms"),
                    e["api"].get("p99_ms"),
                    e["handwritten"].get("p50_ms"),
                    e["ratio_p50"],
                    pgl.get("latency", {}).get("p50_ms"),
                    pgl.get("ratio_api_to_postgraphile_p50"),
                    e["api"].get("n"),
                    ("yes" if same else "NO")
                    + (
                        ""
                        if not pgl
                        else " / " + ("yes" if pgl["answers_identical"] else "NO")
                    ),
                    e["load_average_before"],
                ]
            )
        parts.append(
            table(
                [
                    f"dashboard ({tag})",
                    "API p50",
                    "API p99",
                    "SQL p50",
                    "API/SQL",
                    "PostGraphile p50",
                    "API/PGL",
                    "n",
                    "same (SQL / PGL)",
                    "load",
                ],
                rows,
            )
        )
        for label, e in dashboard["tenants"].items():
            if e["differences"]:
                parts.append(f"{label}: differences: " + "; ".join(e["differences"]))
            pgl = e.get("postgraphile") or {}
            if pgl.get("differences"):
                parts.append(
                    f"{label}: PostGraphile differs: " + "; ".join(pgl["differences"])
                )
    for section in ("ingest", "webhooks", "dashboard"):
        failed = phase.get(section)
        if failed and "error" in failed:
            parts.append(f"{section} ({tag}): FAILED: {failed['error']}")
    return parts
