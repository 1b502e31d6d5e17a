"""In-process cost of one webhook mutation (schema.execute, no HTTP).

`python -m bench.request_path [--database-url URL] [--n N] [--mutation M]`
migrates a fresh SQLite file (unless a URL is given), then runs N
registrations of new ids (or, with `--mutation record`, N
recordTranscriptUsage of new transcripts of 50 registered interactions; with
`--mutation ingest`, N ingestUsage calls of 1,000 new records each over those
50 interactions) with
the same document (so parse and validation caches can hit), with the domain
event handlers loaded as the app loads them, and prints the mean wall and CPU
milliseconds and the SQL statements per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.inprocess import capture, execute
from service import domains
from service.db.session import Database
from service.memory import freeze_startup_objects
from service.migrate import upgrade

REGISTER = """mutation($i: ID!, $t: ID!, $u: ID!) {
  registerInteraction(input: {interactionId: $i, tenantId: $t, userId: $u}) { id }
}"""


RECORD = """mutation($i: ID!, $x: ID!) {
  recordTranscriptUsage(input: {interactionId: $i, transcriptId: $x,
                                creditsConsumed: "0.125"}) { id }
}"""


INGEST = """mutation($r: [UsageRecordInput!]!) {
  ingestUsage(records: $r) { accepted duplicates }
}"""
BATCH = 1000


def _operation(mutation: str, k: int) -> tuple[str, dict[str, Any]]:
    if mutation == "ingest":
        records = [
            {
                "source": "TRANSCRIPT",
                "interactionId": f"w{n % 50}",
                "externalId": f"b{k}-{n}",
                "credits": "0.125",
                "createdAt": f"2026-11-{1 + n % 28:02d}T{n % 24:02d}:00:00Z",
            }
            for n in range(BATCH)
        ]
        return INGEST, {"r": records}
    if mutation == "record":
        return RECORD, {"i": f"w{k % 50}", "x": f"x{k}"}
    return REGISTER, {"i": f"i{k}", "t": "t", "u": f"u{k % 50}"}


async def run(url: str, n: int, mutation: str) -> dict[str, Any]:
    domains.load()  # the event handlers the app runs (budget alerts, live feed)
    db = Database.from_url(url)
    freeze_startup_objects()  # as the app's startup does
    try:
        for warm in range(50):
            await execute(db, REGISTER, {"i": f"w{warm}", "t": "t", "u": "u"})
            if mutation != "register":
                await execute(db, *_operation(mutation, -1 - warm))
        with capture() as captured:
            await execute(db, *_operation(mutation, n))
        wall, cpu = time.perf_counter(), time.process_time()
        for k in range(n):
            await execute(db, *_operation(mutation, k))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await db.engine.dispose()
    return {
        "mutation": mutation,
        "requests": n,
        "wall_ms": round(1000 * wall / n, 3),
        "cpu_ms": round(1000 * cpu / n, 3),
        "statements": len(captured.statements),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument(
        "--mutation", choices=("register", "record", "ingest"), default="register"
    )
    args = parser.parse_args()
    url = args.database_url
    if url is None:
        url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    upgrade(url)
    result = asyncio.run(run(url, args.n, args.mutation))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
