"""In-process cost of one registerInteraction (schema.execute, no HTTP).

`python -m bench.request_path [--database-url URL] [--n N]` migrates a fresh
SQLite file (unless a URL is given), then runs N registrations of new ids
with the same document (so parse and validation caches can hit) and prints
the mean wall and CPU milliseconds per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from bench.inprocess import execute
from service.db.session import Database
from service.migrate import upgrade

REGISTER = """mutation($i: ID!, $t: ID!, $u: ID!) {
  registerInteraction(input: {interactionId: $i, tenantId: $t, userId: $u}) { id }
}"""


async def run(url: str, n: int) -> dict[str, float]:
    db = Database.from_url(url)
    try:
        for warm in range(20):
            await execute(db, REGISTER, {"i": f"w{warm}", "t": "t", "u": "u"})
        wall, cpu = time.perf_counter(), time.process_time()
        for k in range(n):
            await execute(db, REGISTER, {"i": f"i{k}", "t": "t", "u": f"u{k % 50}"})
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        await db.engine.dispose()
    return {"requests": n, "wall_ms": 1000 * wall / n, "cpu_ms": 1000 * cpu / n}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--n", type=int, default=500)
    args = parser.parse_args()
    url = args.database_url
    if url is None:
        url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    upgrade(url)
    sys.stdout.write(json.dumps(asyncio.run(run(url, args.n))) + "\n")


if __name__ == "__main__":
    main()
