"""The same dashboard question answered by PostGraphile on the same rows.

PostGraphile 4.14 with @graphile/pg-aggregates and
postgraphile-plugin-connection-filter (exact versions in
bench/postgraphile/package.json and its lock file; `npm ci` runs there when
node_modules is missing) serves one view in a schema of its own,
`bench_pgl.records`: every usage record with its tenant and user columns (the
copies the service keeps), its time as epoch seconds (pg-aggregates' `max`
takes numbers only) and its interaction's creation time (a LEFT JOIN that
PostgreSQL removes when a query does not read it). Its connection sees the
database in Europe/Copenhagen time, so `CREATED_AT_TRUNCATED_TO_DAY` groups by
local days.

One nested request per dashboard (PostGraphile cannot rank users or
interactions by a sum over a filtered range, so it groups and the client
picks): the tenant's records in the range with their count and sum, grouped
by source, by local day, by user, and by (user, interaction, interaction
creation time) with each group's sum and newest record. The client then takes
the top 20 users and each one's 10 interactions with the newest usage; the
answer is compared field by field with the API's.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import asyncpg

from bench.config import BENCH, DATA, ZONE_NAME, Target, asyncpg_dsn
from bench.http import Connection, graphql_body, graphql_data
from bench.server import free_port

PROJECT = BENCH / "postgraphile"
SCHEMA = "bench_pgl"
TOP_USERS = 20
LATEST_INTERACTIONS = 10

VIEW = f"""
CREATE OR REPLACE VIEW {SCHEMA}.records AS
SELECT r.id, r.source, r.external_id, r.interaction_id, r.tenant_id, r.user_id,
       r.credits, r.created_at, extract(epoch FROM r.created_at) AS created_epoch,
       i.created_at AS interaction_created_at
FROM public.usage_records AS r LEFT JOIN public.interactions AS i
  ON i.id = r.interaction_id
"""

QUERY = """
query Dashboard($tenant: String!, $from: Datetime!, $to: Datetime!) {
  allRecords(filter: {tenantId: {equalTo: $tenant},
                      createdAt: {greaterThanOrEqualTo: $from, lessThan: $to}}) {
    totalCount
    aggregates { sum { credits } }
    bySource: groupedAggregates(groupBy: SOURCE) { keys sum { credits } }
    byDay: groupedAggregates(groupBy: CREATED_AT_TRUNCATED_TO_DAY) {
      keys sum { credits }
    }
    byUser: groupedAggregates(groupBy: USER_ID) { keys sum { credits } }
    byInteraction: groupedAggregates(
      groupBy: [USER_ID, INTERACTION_ID, INTERACTION_CREATED_AT]
    ) { keys sum { credits } max { createdEpoch } }
  }
}"""


def _node_modules() -> None:
    if (PROJECT / "node_modules" / "postgraphile").exists():
        return
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PROJECT, check=True)


async def create_view(target: Target) -> None:
    """The schema and view PostGraphile serves (idempotent)."""
    conn = await asyncpg.connect(asyncpg_dsn(target.url))
    try:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        await conn.execute(VIEW)
    finally:
        await conn.close()


class PostGraphile:
    """A running PostGraphile server on the benchmark database."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.port = free_port()
        self.process: asyncio.subprocess.Process | None = None
        self.log_path: Path = DATA / "postgraphile.log"
        self.connection = Connection("127.0.0.1", self.port)

    @property
    def pid(self) -> int:
        """The node process id."""
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        """Create the view, start PostGraphile and wait until it answers."""
        await asyncio.to_thread(_node_modules)
        await create_view(self.target)
        url = asyncpg_dsn(self.target.url).replace("postgresql://", "postgres://")
        zone = ZONE_NAME.replace("/", "%2F")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = await asyncio.to_thread(self.log_path.open, "ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                "node",
                "node_modules/postgraphile/cli.js",
                "--connection",
                f"{url}?options=-c%20TimeZone%3D{zone}",
                "--schema",
                SCHEMA,
                "--append-plugins",
                "@graphile/pg-aggregates,postgraphile-plugin-connection-filter",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--max-pool-size",
                "2",  # one request at a time; the cluster's connections are shared
                "--disable-query-log",
                "--disable-default-mutations",
                "--simple-collections",
                "omit",
                cwd=PROJECT,
                env={**os.environ, "NODE_ENV": "production"},
                stdout=log,
                stderr=log,
            )
        finally:
            log.close()
        deadline = time.monotonic() + 90
        probe = graphql_body("{ __typename }", {})
        while True:
            if self.process.returncode is not None:
                raise RuntimeError(f"postgraphile exited; see {self.log_path}")
            try:
                connection = Connection("127.0.0.1", self.port)
                await connection.open()
                status, _ = await connection.request("POST", "/graphql", probe)
                await connection.close()
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgraphile not ready; see {self.log_path}")
            await asyncio.sleep(0.3)

    def request(self, tenant: str, start: datetime, end: datetime) -> bytes:
        """The prepared request for a tenant's dashboard."""
        body = graphql_body(
            QUERY,
            {"tenant": tenant, "from": start.isoformat(), "to": end.isoformat()},
        )
        return self.connection.prepare("POST", "/graphql", body)

    async def send(self, request: bytes) -> dict[str, Any]:
        """Send a prepared request; its data."""
        return graphql_data(*await self.connection.send(request))

    async def stop(self) -> None:
        """Close the client connection and stop the server."""
        await self.connection.close()
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 15)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value)


def comparable(data: dict[str, Any], edges: list[datetime]) -> dict[str, Any]:
    """PostGraphile's answer in the form of bench.dashboard.from_api."""
    records = data["allRecords"]
    by_source = {
        g["keys"][0]: Decimal(g["sum"]["credits"]) for g in records["bySource"]
    }
    per_day = {
        _instant(g["keys"][0]): Decimal(g["sum"]["credits"]) for g in records["byDay"]
    }
    users = sorted(
        ((g["keys"][0], Decimal(g["sum"]["credits"])) for g in records["byUser"]),
        key=lambda u: (-u[1], u[0]),
    )[:TOP_USERS]
    latest: dict[str, list[tuple[Decimal, str, datetime, Decimal]]] = defaultdict(list)
    for g in records["byInteraction"]:
        user, interaction, created = g["keys"]
        latest[user].append(
            (
                Decimal(g["max"]["createdEpoch"]),
                interaction,
                _instant(created),
                Decimal(g["sum"]["credits"]),
            )
        )
    total = records["aggregates"]["sum"]["credits"]
    return {
        "credits": {
            "total": Decimal(total) if total is not None else Decimal(0),
            "STREAM": by_source.get("STREAM", Decimal(0)),
            "TRANSCRIPT": by_source.get("TRANSCRIPT", Decimal(0)),
            "DOCUMENT": by_source.get("DOCUMENT", Decimal(0)),
            "records": records["totalCount"],
        },
        "buckets": [(a, b, per_day.get(a, Decimal(0))) for a, b in pairwise(edges)],
        "users_total": len(records["byUser"]),
        "users": [
            (
                user,
                amount,
                [
                    (i, created, credits)
                    for _, i, created, credits in sorted(latest[user], reverse=True)[
                        :LATEST_INTERACTIONS
                    ]
                ],
            )
            for user, amount in users
        ],
    }
