"""Jobs per second through the worker against the Corti sandbox.

    python -m bench.worker_throughput [--jobs 64] [--concurrency 1 8 32]
        [--latency 0.05] [--kind document|transcript|stream] [--database-url URL]

For each concurrency level it queues `--jobs` jobs (as the mutations would,
one interaction each), runs one in-process worker with that concurrency until
every job SUCCEEDED, and reports jobs per second. The sandbox runs in its own
process (`python -m service corti-sandbox` on a free port). The sandbox answers each Corti call `--latency`
seconds late (a `delay` fault), standing in for Corti's own latency, so the
numbers show how far concurrency hides it. Without `--database-url` the
database is a fresh SQLite file in a temporary folder; a PostgreSQL URL must
name a scratch database (it is migrated and jobs are added to it).

Prints a table, then one JSON line with the same numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from corti_sandbox.state import AUDIO_BYTES_PER_SECOND
from corti_sandbox.testing import SandboxControl
from service.auth.principal import ADMIN
from service.config import Settings
from service.corti import CortiClient
from service.db.models import Job
from service.db.session import Database
from service.jobs.service import (
    DocumentRequest,
    StreamRequest,
    TranscriptRequest,
    job_service,
)
from service.migrate import upgrade
from service.uow import unit_of_work
from service.usage.service import usage_service
from service.worker.runner import Worker

AUDIO = b"\x00" * (2 * AUDIO_BYTES_PER_SECOND)  # two seconds
# The Corti calls each kind of job makes, for the latency fault.
CALLS = {
    "document": ["/documents/"],
    "transcript": ["/recordings/", "/transcripts/"],
    "stream": [],  # websocket: no HTTP delay applies
}


class _Upload:
    """An in-memory stand-in for a multipart upload."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def read(self, size: int = -1) -> bytes:
        chunk, self._data = self._data[:size], self._data[size:]
        return chunk


@dataclass
class Result:
    """One concurrency level."""

    concurrency: int
    jobs: int
    seconds: float
    jobs_per_second: float
    corti_calls_per_second: float


async def _queue_jobs(db: Database, corti: CortiClient, kind: str, n: int) -> None:
    """One interaction per job, as visits would have (created before timing)."""
    for i in range(n):
        created = await corti.create_interaction(f"bench-{i}")
        interaction_id = created.interaction_id
        async with unit_of_work(db) as uow:
            await usage_service.register_interaction(
                uow,
                ADMIN,
                interaction_id=interaction_id,
                tenant_id="bench",
                user_id=f"user-{i % 10}",
            )
            if kind == "document":
                await job_service.request_document(
                    uow,
                    ADMIN,
                    DocumentRequest(interaction_id, "soap", [f"Visit note {i}."]),
                )
            elif kind == "transcript":
                await job_service.request_transcript(
                    uow,
                    ADMIN,
                    TranscriptRequest(interaction_id, audio=_Upload(AUDIO)),
                    max_audio_bytes=1 << 40,
                )
            else:
                await job_service.request_stream(
                    uow,
                    ADMIN,
                    StreamRequest(interaction_id, audio=_Upload(AUDIO)),
                    max_audio_bytes=1 << 40,
                )


async def _unfinished(db: Database) -> int:
    async with db.read() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.status.in_(("QUEUED", "RUNNING")))
        )
    return int(count or 0)


async def _level(
    db: Database,
    settings: Settings,
    corti: CortiClient,
    control: SandboxControl,
    args: argparse.Namespace,
    concurrency: int,
) -> Result:
    await control.reset()
    await _queue_jobs(db, corti, args.kind, args.jobs)
    paths = CALLS[args.kind]
    if args.latency > 0 and paths:
        await control.arm(
            *(
                {
                    "kind": "delay",
                    "seconds": args.latency,
                    "method": "POST",
                    "path": path,
                    "count": args.jobs,
                }
                for path in paths
            )
        )
    worker = Worker(db, corti, settings, concurrency=concurrency)
    started = time.perf_counter()
    task = asyncio.create_task(worker.run())
    while True:  # the database is the truth: poll it
        if not await _unfinished(db):
            break
        await asyncio.sleep(0.02)
    seconds = time.perf_counter() - started
    worker.stop()
    await task
    billed = await control.billed()
    if len(billed) != args.jobs:
        raise SystemExit(f"expected {args.jobs} billed entities, got {len(billed)}")
    calls = args.jobs * max(1, len(paths))
    return Result(
        concurrency=concurrency,
        jobs=args.jobs,
        seconds=round(seconds, 3),
        jobs_per_second=round(args.jobs / seconds, 1),
        corti_calls_per_second=round(calls / seconds, 1),
    )


async def run(args: argparse.Namespace, database_url: str) -> list[Result]:
    """Every concurrency level, against one sandbox and one (migrated) database."""
    settings = Settings(
        database_url=database_url,
        worker_poll_seconds=0.02,
        job_lease_seconds=60,
        log_level="WARNING",
    )
    db = Database.from_url(database_url)
    results = []
    try:
        with _sandbox() as url:
            control = SandboxControl(url)
            async with CortiClient(
                base_url=f"{url}/v2",
                wss_url=f"{url.replace('http', 'ws', 1)}/audio-bridge/v2",
                login_url=f"{url}/realms",
                tenant_name="base",
                client_id="bench",
                client_secret="bench",
                timeout=30,
            ) as corti:
                for concurrency in args.concurrency:
                    results.append(
                        await _level(db, settings, corti, control, args, concurrency)
                    )
            await control.aclose()
    finally:
        await db.dispose()
    return results


@contextmanager
def _sandbox() -> Iterator[str]:
    """`python -m service corti-sandbox` in its own process (as Corti is)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "service", "corti-sandbox", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/_sandbox/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("the Corti sandbox did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def _table(results: list[Result], args: argparse.Namespace) -> str:
    base = results[0].jobs_per_second if results else 1.0
    lines = [
        (
            f"{args.kind} jobs through the worker; sandbox latency "
            f"{args.latency * 1000:g} ms per Corti call"
        ),
        "",
        "| concurrency | jobs | seconds | jobs/s | Corti calls/s | speed-up |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.concurrency} | {r.jobs} | {r.seconds:.2f} | {r.jobs_per_second:.1f}"
            f" | {r.corti_calls_per_second:.1f}"
            f" | {r.jobs_per_second / base:.1f}x |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Parse options, run the levels, print the table and the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=64, help="jobs per level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument(
        "--latency", type=float, default=0.05, help="seconds added to each call"
    )
    parser.add_argument("--kind", choices=sorted(CALLS), default="document")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        upgrade(url)
        results = asyncio.run(run(args, url))
    summary: dict[str, Any] = {
        "kind": args.kind,
        "latency_seconds": args.latency,
        "database": url.split(":", 1)[0],
        "results": [asdict(r) for r in results],
    }
    sys.stdout.write(_table(results, args) + "\n\n")
    sys.stdout.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    main()
