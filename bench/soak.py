"""python -m bench.soak: the whole deployment under mixed load for minutes.

    python -m bench.soak [--minutes 10] [--rate R] [--window-seconds 60]
                         [--warmup-windows 2] [--capacity-seconds 30]
                         [--fraction 0.5] [--pg user@host:port] [--output PATH]

Creates a PostgreSQL database of its own (`bench_soak_<random>`, dropped at
the end), starts the deployment of bench/deployment.py on it (`serve
--workers 2`, two workers, `corti-sandbox`), registers the load's
interactions and pins a live subscriber to each API process. Then:

1. capacity: the mixed load of bench/mixed.py as fast as its senders go
   (each sends its next call when the last is answered) for
   `--capacity-seconds`; calls per second per kind (webhook, batch, job,
   dashboard) over that time are the measured capacity of this mix;
2. soak: each kind paced at `--fraction` (0.5) of its measured rate, so the
   mix stays the one measured (`--rate R` instead: R calls/s in all, split
   as DEFAULT_MIX, no measurement), for `--minutes`. Every window
   (`--window-seconds`) records, per operation, calls, failed attempts, p50
   and p99 (by when each call was answered), the live events' delay, the
   VmRSS of every server process (API master and children, each worker's
   tree; the sandbox's apart) and the load average;
3. the ledger checks of bench/deployment.py (`check_exact`) once every job
   ended.

Criteria (exit status 1 if one fails; see CRITERIA):

- exact: `check_exact` passes (every acknowledged record stored once with its
  credits, API totals, jobs billed once, every subscriber got every record once);
- errors: no failed attempt (any phase) and no sender raised;
- memory: total server RSS at the end of the last window less than 10 %
  above the RSS at the end of warm-up (the first `--warmup-windows` windows);
- p99 stable: per operation, the windows after warm-up split into a first
  and a last half (the middle one of an odd number left out); the lowest
  per-window p99 of the last half at most 2x the lowest of the first half.
  On a machine shared with other work, that work only ever adds latency, and
  in bursts: a window in which it took the cores raises that window's p99
  (the median of each half is reported too, and the highest window p99),
  while what the soak is after, a service that gets slower as it runs
  (growing tables, caches, leaks), raises every later window, its best one
  too. Only windows with at least MIN_CALLS calls of the operation count;
  an operation without such a window in both halves is shown, not judged.

Prints a table per window, the p99 per operation per window and the
criteria, then one JSON line, and writes the JSON to `--output`
(default bench/results/soak-postgresql.json). Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench.config import RESULTS, default_pg_url
from bench.deployment import Deployment, Mismatch, check_exact, deploy, live_probe
from bench.live import Subscriber, connect_per_process
from bench.load import log
from bench.mixed import Abandoned, MixedLoad, Refused
from bench.report import _git
from bench.server import load_average, proc_status
from bench.stats import percentile, table

# The load: senders per kind; registrations a share of the webhook calls.
PLAN: dict[str, Any] = {
    "tenants": 3,
    "users": 4,
    "interactions": 40,
    "corti_interactions": 1,
    "webhook_senders": 8,
    "batch_senders": 2,
    "batch_size": 20,
    "job_senders": 1,
    "dashboard_readers": 2,
    "redelivery": 0.25,
    "register": 0.1,
    "audio_seconds": 1.0,
}
KINDS = ("webhook", "batch", "job", "dashboard")
DEFAULT_MIX = {"webhook": 0.75, "batch": 0.1, "job": 0.05, "dashboard": 0.1}
SUBSCRIBERS_PER_PROCESS = 1
MIN_CALLS = 20  # calls of an operation in a window for its p99 to count
RSS_GROWTH_LIMIT = 0.10
P99_RATIO_LIMIT = 2.0
CRITERIA = {
    "exact": "check_exact passes (records stored once with their credits, API "
    "totals, jobs billed once, every subscriber got every record once)",
    "errors": "no failed attempt and no sender exception, in any phase",
    "memory": f"server RSS at the end < {1 + RSS_GROWTH_LIMIT:.2f}x RSS at the "
    "end of warm-up",
    "p99": "per operation, lowest per-window p99 of the last half of the windows "
    f"after warm-up <= {P99_RATIO_LIMIT:g}x the lowest of the first half (windows "
    f"with >= {MIN_CALLS} calls)",
}


def kind_of(op: str) -> str | None:
    """The sender kind of an operation name of MixedLoad (None: not a sender's)."""
    if op.startswith("webhook."):
        return "webhook"
    return {
        "ingestUsage": "batch",
        "requestDocument": "job",
        "requestTranscript": "job",
        "dashboard": "dashboard",
    }.get(op)


def operation(op: str) -> str:
    """An operation as reported: a webhook mutation's name, signed or keyed alike."""
    return op.removeprefix("webhook.").removesuffix(".signed")


@dataclass
class Options:
    """What to run (the command line's options)."""

    minutes: float = 10.0
    rate: float | None = None
    window_seconds: float = 60.0
    warmup_windows: int = 2
    capacity_seconds: float = 30.0
    fraction: float = 0.5
    pg: str = field(default_factory=default_pg_url)
    output: Path | None = RESULTS / "soak-postgresql.json"


class Pacer:
    """Slots at `rate` per second shared by the senders of one kind.

    A sender waits for the next free slot; one that falls more than a second
    behind starts again from now instead of sending a burst.
    """

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next = time.monotonic()

    async def wait(self) -> None:
        now = time.monotonic()
        if self.next < now - 1.0:
            self.next = now
        slot = self.next
        self.next += self.interval
        if slot > now:
            await asyncio.sleep(slot - now)


@dataclass
class Sample:
    """RSS and load when a window ended."""

    at: float  # monotonic
    rss_kb: dict[str, int]  # per process group
    load1: float

    @property
    def server_kb(self) -> int:
        """The API's and the workers' RSS (the sandbox stands in for Corti)."""
        return sum(kb for name, kb in self.rss_kb.items() if name != "sandbox")


def sample(deployed: Deployment) -> Sample:
    """VmRSS summed per process group (the group's root and every descendant)."""
    rss: dict[str, int] = {}
    for name, pids in deployed.server_pids().items():
        total = 0
        for pid in pids:
            try:
                total += proc_status(pid).get("VmRSS", 0)
            except OSError:
                continue  # ended between the listing and the read
        rss[name] = total
    return Sample(time.monotonic(), rss, load_average())


@dataclass
class Errors:
    """Exceptions that ended a sender's call (failed attempts are in the load)."""

    raised: list[tuple[float, str]] = field(default_factory=list)  # time.time()


async def sender(
    step: Callable[[], Awaitable[None]],
    pacer: Pacer,
    stop: asyncio.Event,
    errors: Errors,
) -> None:
    """Call `step` in the pacer's slots until `stop`; exceptions noted, not fatal."""
    while not stop.is_set():
        await pacer.wait()
        if stop.is_set():
            return
        try:
            await step()
        except (Refused, Abandoned) as error:  # its attempts are in load.failures
            errors.raised.append((time.time(), repr(error)[:300]))
        except Exception as error:  # noqa: BLE001 - counted, the soak goes on
            errors.raised.append((time.time(), repr(error)[:300]))


def steps(load: MixedLoad) -> dict[str, tuple[Callable[[], Awaitable[None]], int]]:
    """Each kind's step and its number of senders (from the plan)."""
    plan = load.plan
    return {
        "webhook": (load.webhook_once, plan.webhook_senders),
        "batch": (load.batch_once, plan.batch_senders),
        "job": (load.job_once, plan.job_senders),
        "dashboard": (load.dashboard_once, plan.dashboard_readers),
    }


def calls_between(load: MixedLoad, start: float, end: float) -> dict[str, int]:
    """Successful calls per kind answered in [start, end) (monotonic)."""
    counts = dict.fromkeys(KINDS, 0)
    for op, timings in load.latencies.items():
        kind = kind_of(op)
        if kind is not None:
            counts[kind] += sum(1 for at, _ in timings if start <= at < end)
    return counts


async def measure_capacity(load: MixedLoad, seconds: float) -> dict[str, float]:
    """Calls per second per kind with every sender going as fast as it can.

    The first fifth of the time is not counted (connections, caches).
    """
    stop = asyncio.Event()
    started = time.monotonic()
    running = asyncio.create_task(load.run(stop))
    await asyncio.sleep(seconds)
    stop.set()
    await running
    counted_from = started + seconds / 5
    ended = started + seconds
    counts = calls_between(load, counted_from, ended)
    return {kind: n / (ended - counted_from) for kind, n in counts.items()}


async def soak_phase(
    load: MixedLoad,
    deployed: Deployment,
    rates: dict[str, float],
    seconds: float,
    window_seconds: float,
    errors: Errors,
) -> tuple[float, list[Sample]]:
    """The paced load for `seconds`; its start and a Sample per window end."""
    stop = asyncio.Event()
    tasks = []
    for kind, (step, senders) in steps(load).items():
        if rates[kind] <= 0 or senders <= 0:
            continue
        pacer = Pacer(rates[kind])
        tasks += [
            asyncio.create_task(sender(step, pacer, stop, errors))
            for _ in range(senders)
        ]
    started = time.monotonic()
    samples = [sample(deployed)]
    ends = []
    elapsed = 0.0
    while elapsed < seconds - 1e-6:
        elapsed = min(seconds, elapsed + window_seconds)
        ends.append(started + elapsed)
    for n, end in enumerate(ends, 1):
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        samples.append(sample(deployed))
        samples[-1].at = end
        log(
            f"window {n}/{len(ends)}: RSS {samples[-1].server_kb / 1024:.0f} MB, "
            f"{sum(calls_between(load, ends[n - 2] if n > 1 else started, end).values())}"
            f" calls, {len(load.failures)} failed attempts so far, "
            f"load {samples[-1].load1:.1f}"
        )
    stop.set()
    await asyncio.gather(*tasks)
    return started, samples


def windows(
    load: MixedLoad,
    subscribers: list[Subscriber],
    errors: Errors,
    started: float,
    samples: list[Sample],
) -> list[dict[str, Any]]:
    """Per window: calls, failed attempts, p50/p99 per operation, live delay, RSS."""
    # Wall-clock bounds for failures and live events (time.time()).
    offset = time.time() - time.monotonic()
    out: list[dict[str, Any]] = []
    for n, (first, last) in enumerate(itertools.pairwise(samples), 1):
        start, end = (started if n == 1 else first.at), last.at
        ops: dict[str, list[float]] = {}
        for op, timings in load.latencies.items():
            if kind_of(op) is None:
                continue
            seconds = [s for at, s in timings if start <= at < end]
            if seconds:
                ops.setdefault(operation(op), []).extend(seconds)
        wall_start, wall_end = start + offset, end + offset
        failed = [f for f in load.failures if wall_start <= f.at < wall_end]
        raised = [e for e in errors.raised if wall_start <= e[0] < wall_end]
        delays = [
            max(0.0, subscriber.first_seen[key] - acked.at)
            for key, acked in load.acked.items()
            if wall_start <= acked.at < wall_end
            for subscriber in subscribers
            if key in subscriber.first_seen
        ]
        calls = sum(len(v) for v in ops.values())
        out.append(
            {
                "window": n,
                "from_s": round(start - started, 1),
                "to_s": round(end - started, 1),
                "calls": calls,
                "calls_per_s": round(calls / (end - start), 1),
                "failed_attempts": len(failed),
                "failed_codes": sorted({f.code for f in failed}),
                "sender_errors": len(raised),
                "ops": {
                    op: {
                        "n": len(v),
                        "p50_ms": round(percentile(v, 50) * 1000, 1),
                        "p99_ms": round(percentile(v, 99) * 1000, 1),
                    }
                    for op, v in sorted(ops.items())
                },
                "live": {
                    "events": len(delays),
                    "p50_ms": round(percentile(delays, 50) * 1000, 1)
                    if delays
                    else None,
                    "p99_ms": round(percentile(delays, 99) * 1000, 1)
                    if delays
                    else None,
                },
                "rss_mb": {k: round(v / 1024, 1) for k, v in last.rss_kb.items()},
                "server_rss_mb": round(last.server_kb / 1024, 1),
                "load1": last.load1,
            }
        )
    return out


def judge(
    result: dict[str, Any], warmup_windows: int, exact_error: str | None
) -> dict[str, dict[str, Any]]:
    """Each criterion's figures and whether it holds (see CRITERIA)."""
    rows = result["windows"]
    criteria: dict[str, dict[str, Any]] = {
        "exact": {"ok": exact_error is None, "error": exact_error},
    }
    criteria["errors"] = {
        "ok": result["failed_attempts"] == 0 and result["sender_errors"] == 0,
        "failed_attempts": result["failed_attempts"],
        "failed_codes": result["failed_codes"],
        "sender_errors": result["sender_errors"],
        "first": result["first_errors"],
    }
    if len(rows) <= warmup_windows:
        reason = f"{len(rows)} window(s), {warmup_windows} of warm-up"
        criteria["memory"] = {"ok": False, "error": reason}
        criteria["p99"] = {"ok": False, "error": reason}
        return criteria
    base, final = rows[warmup_windows - 1] if warmup_windows else None, rows[-1]
    base_mb = base["server_rss_mb"] if base else result["rss_start_mb"]
    growth = final["server_rss_mb"] / base_mb - 1
    criteria["memory"] = {
        "ok": growth < RSS_GROWTH_LIMIT,
        "after_warmup_mb": base_mb,
        "end_mb": final["server_rss_mb"],
        "peak_mb": max(r["server_rss_mb"] for r in rows),
        "growth_pct": round(growth * 100, 1),
    }
    after = rows[warmup_windows:]
    half = len(after) // 2
    early, late = after[:half], after[len(after) - half :]
    ops: dict[str, dict[str, Any]] = {}
    for op in sorted({op for w in after for op in w["ops"]}):
        a = [w["ops"][op]["p99_ms"] for w in early if _counts(w, op)]
        b = [w["ops"][op]["p99_ms"] for w in late if _counts(w, op)]
        judged = bool(a) and bool(b)
        first = min(a) if a else None
        last = min(b) if b else None
        ratio = last / first if first and last is not None else None
        ops[op] = {
            "first_half_best_p99_ms": first,
            "last_half_best_p99_ms": last,
            "ratio": round(ratio, 2) if ratio is not None else None,
            "first_half_median_p99_ms": round(statistics.median(a), 1) if a else None,
            "last_half_median_p99_ms": round(statistics.median(b), 1) if b else None,
            "max_window_p99_ms": max(
                (w["ops"][op]["p99_ms"] for w in after if op in w["ops"]),
                default=None,
            ),
            "judged": judged,
            "ok": not judged or (ratio is not None and ratio <= P99_RATIO_LIMIT),
        }
    criteria["p99"] = {
        "ok": half > 0 and all(o["ok"] for o in ops.values()),
        "first_half_windows": [w["window"] for w in early],
        "last_half_windows": [w["window"] for w in late],
        "ops": ops,
    }
    return criteria


def _counts(window: dict[str, Any], op: str) -> bool:
    """Whether `op` had enough calls in `window` for its p99 to count."""
    return bool(window["ops"].get(op, {}).get("n", 0) >= MIN_CALLS)


async def create_database(pg: str) -> str:
    """A fresh database of our own on the server; its SQLAlchemy URL."""
    name = f"bench_soak_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(f"postgresql://{pg}/postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"postgresql+asyncpg://{pg}/{name}"


async def drop_database(url: str) -> None:
    """Drop the database of `create_database` (its connections ended)."""
    pg, name = url.removeprefix("postgresql+asyncpg://").rsplit("/", 1)
    conn = await asyncpg.connect(f"postgresql://{pg}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def postgres_version(pg: str) -> str:
    conn = await asyncpg.connect(f"postgresql://{pg}/postgres")
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


async def run(options: Options, directory: Path) -> dict[str, Any]:
    """The whole soak (see the module docstring); the results as a JSON-able dict."""
    result: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {
            "minutes": options.minutes,
            "rate": options.rate,
            "window_seconds": options.window_seconds,
            "warmup_windows": options.warmup_windows,
            "capacity_seconds": options.capacity_seconds,
            "fraction": options.fraction,
        },
        "plan": PLAN,
        "criteria_text": CRITERIA,
        "machine": {
            "cores": os.cpu_count(),
            "postgresql": await postgres_version(options.pg),
            "git_commit": _git("rev-parse", "--short", "HEAD"),
            "load_average_at_start": load_average(),
        },
    }
    url = await create_database(options.pg)
    result["database"] = url.rsplit("/", 1)[1]
    log(f"database {result['database']}; logs in {directory}")
    errors = Errors()
    exact_error: str | None = None
    try:
        async with deploy(url, directory) as deployed:
            load = deployed.load(uuid.uuid4().hex[:6], **PLAN)
            subscribers: list[Subscriber] = []
            try:
                await load.setup()
                subscribers = await connect_per_process(
                    deployed.ws_url,
                    deployed.key,
                    load.tenants,
                    server_port=deployed.port,
                    pids=deployed.api_pids(),
                    per_process=SUBSCRIBERS_PER_PROCESS,
                )
                await live_probe(load, subscribers)
                if options.rate is None:
                    log(f"capacity: {options.capacity_seconds:g} s unpaced ...")
                    capacity = await measure_capacity(load, options.capacity_seconds)
                    rates = {k: v * options.fraction for k, v in capacity.items()}
                    result["capacity_calls_per_s"] = {
                        k: round(v, 1) for k, v in capacity.items()
                    }
                    result["capacity_total_calls_per_s"] = round(
                        sum(capacity.values()), 1
                    )
                else:
                    rates = {k: options.rate * s for k, s in DEFAULT_MIX.items()}
                result["target_calls_per_s"] = {
                    k: round(v, 2) for k, v in rates.items()
                }
                result["target_total_calls_per_s"] = round(sum(rates.values()), 1)
                failures_before = len(load.failures)
                log(
                    f"soak: {options.minutes:g} min at "
                    f"{result['target_total_calls_per_s']} calls/s ..."
                )
                started, samples = await soak_phase(
                    load,
                    deployed,
                    rates,
                    options.minutes * 60,
                    options.window_seconds,
                    errors,
                )
                log(f"waiting for {len(load.jobs)} jobs ...")
                await load.wait_jobs(load.jobs, within=300)
                await asyncio.sleep(1.0)  # the last live events in flight
                result["windows"] = windows(load, subscribers, errors, started, samples)
                result["rss_start_mb"] = round(samples[0].server_kb / 1024, 1)
                result["failed_attempts_before_soak"] = failures_before
                result["failed_attempts"] = len(load.failures)
                result["failed_codes"] = sorted(load.failure_codes())
                result["sender_errors"] = len(errors.raised)
                result["first_errors"] = [
                    f"{f.op}: {f.code} (HTTP {f.status}) {f.body[:200]}"
                    for f in load.failures[:5]
                ] + [message for _, message in errors.raised[:5]]
                result["calls"] = dict(load.calls)
                try:
                    exact = await check_exact(deployed, load, subscribers)
                    result["exact"] = {
                        "records": exact.records,
                        "acknowledged": exact.acknowledged,
                        "jobs": exact.jobs,
                        "billed": exact.billed,
                        "subscribers": exact.subscribers,
                    }
                except Mismatch as mismatch:
                    exact_error = str(mismatch)[:2000]
            finally:
                for subscriber in subscribers:
                    await subscriber.close()
                await load.aclose()
    finally:
        await drop_database(url)
        log(f"database {result['database']} dropped")
    result["criteria"] = judge(result, options.warmup_windows, exact_error)
    result["ok"] = all(c["ok"] for c in result["criteria"].values())
    loads = [w["load1"] for w in result["windows"]]
    result["machine"]["load_average_min_max"] = [min(loads), max(loads)]
    result["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return result


def render(result: dict[str, Any]) -> str:
    """The windows, p99 per operation per window, and the criteria as tables."""
    rows = result["windows"]
    warmup = result["options"]["warmup_windows"]
    out = [
        (
            f"Soak: {result['options']['minutes']:g} min at "
            f"{result['target_total_calls_per_s']} calls/s (capacity "
            f"{result.get('capacity_total_calls_per_s', '-')} calls/s); "
            f"windows 1-{warmup} are warm-up"
        ),
        "",
        table(
            [
                "window",
                "s",
                "calls",
                "calls/s",
                "failed",
                "live p50 ms",
                "live p99 ms",
                "API MB",
                "workers MB",
                "server MB",
                "load",
            ],
            [
                [
                    w["window"],
                    f"{w['from_s']:g}-{w['to_s']:g}",
                    w["calls"],
                    w["calls_per_s"],
                    w["failed_attempts"] + w["sender_errors"],
                    w["live"]["p50_ms"],
                    w["live"]["p99_ms"],
                    w["rss_mb"]["api"],
                    round(
                        sum(
                            v for k, v in w["rss_mb"].items() if k.startswith("worker")
                        ),
                        1,
                    ),
                    w["server_rss_mb"],
                    w["load1"],
                ]
                for w in rows
            ],
        ),
        "",
    ]
    ops = sorted({op for w in rows for op in w["ops"]})
    for figure in ("p50_ms", "p99_ms"):
        out += [
            table(
                [f"{figure.removesuffix('_ms')} ms", *(str(w["window"]) for w in rows)],
                [[op, *(w["ops"].get(op, {}).get(figure) for w in rows)] for op in ops],
            ),
            "",
        ]
    criteria = result["criteria"]
    summary = {
        "exact": criteria["exact"].get("error") or str(result.get("exact")),
        "errors": f"{criteria['errors'].get('failed_attempts')} failed attempts "
        f"{criteria['errors'].get('failed_codes')}, "
        f"{criteria['errors'].get('sender_errors')} sender errors",
        "memory": criteria["memory"].get("error")
        or f"{criteria['memory']['after_warmup_mb']} -> "
        f"{criteria['memory']['end_mb']} MB ({criteria['memory']['growth_pct']:+} %)",
        "p99": criteria["p99"].get("error")
        or ", ".join(
            f"{op} {o['first_half_best_p99_ms']} -> {o['last_half_best_p99_ms']}"
            + ("" if o["judged"] else " (not judged)")
            for op, o in criteria["p99"]["ops"].items()
        ),
    }
    out += [
        table(
            ["criterion", "ok", "figures", "rule"],
            [
                [name, "yes" if c["ok"] else "NO", summary[name], CRITERIA[name]]
                for name, c in criteria.items()
            ],
        ),
        "",
    ]
    return "\n".join(out)


def parse(argv: Sequence[str] | None) -> Options:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="calls per second in all (split as DEFAULT_MIX); default: "
        "--fraction of the measured capacity",
    )
    parser.add_argument("--window-seconds", type=float, default=60.0)
    parser.add_argument("--warmup-windows", type=int, default=2)
    parser.add_argument("--capacity-seconds", type=float, default=30.0)
    parser.add_argument("--fraction", type=float, default=0.5)
    parser.add_argument(
        "--pg", default=default_pg_url(), help="PostgreSQL user@host:port (trust auth)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS / "soak-postgresql.json",
        help="where the JSON goes ('-': nowhere)",
    )
    args = parser.parse_args(argv)
    return Options(
        minutes=args.minutes,
        rate=args.rate,
        window_seconds=args.window_seconds,
        warmup_windows=args.warmup_windows,
        capacity_seconds=args.capacity_seconds,
        fraction=args.fraction,
        pg=args.pg,
        output=None if str(args.output) == "-" else args.output,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the soak, print the tables and the JSON; 0 if every criterion held."""
    options = parse(argv)
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as folder:
        result = asyncio.run(run(options, Path(folder)))
    sys.stdout.write(render(result) + "\n")
    sys.stdout.write(json.dumps(result, default=str) + "\n")
    if options.output is not None:
        options.output.parent.mkdir(parents=True, exist_ok=True)
        options.output.write_text(json.dumps(result, indent=1, default=str) + "\n")
        log(f"written to {options.output}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
