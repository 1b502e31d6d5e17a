"""Ingestion: `ingestUsage` over HTTP against a hand-written idempotent INSERT.

Both write the same kind of rows (new random external ids, batches of 1,000,
the same number of concurrent clients) into the full table, for interactions
of a tenant of their own (config.WRITES_TENANT), so the tenants the dashboard
reads never change. The two methods alternate in rounds, so drift in the
machine's load or the table's state hits both alike; warm-up batches of each
run first and are not counted.

The hand-written insert writes what the service stores in usage_records,
including the tenant and user copied from the interaction when those columns
exist; it maintains nothing else (no interactions.last_usage_at, no rollups).
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiosqlite
import asyncpg

from bench.config import (
    DATA_END,
    WRITES_INTERACTIONS,
    WRITES_TENANT,
    WRITES_USERS,
    Target,
    asyncpg_dsn,
)
from bench.http import Connection, drive, graphql_body, graphql_data
from bench.server import Server, load_average
from bench.stats import latency
from service.db.base import new_uuid

BATCH = 1_000
CLIENTS = 4
ROUNDS = 4
WARMUP_BATCHES = 2
NAMESPACE = uuid.UUID("6f1b8f3e-5f7c-4c1e-9a57-0b3a1c9d2e10")

INGEST = """
mutation Ingest($records: [UsageRecordInput!]!) {
  ingestUsage(records: $records) { accepted duplicates }
}"""
REGISTER_FIELD = """
  r{n}: registerInteraction(input: {{interactionId: "{id}", tenantId: "{tenant}",
        userId: "{user}", createdAt: "{at}"}}) {{ id }}"""


def writes_interactions() -> list[tuple[str, str]]:
    """(interaction id, user id) of the interactions benchmarks write usage for."""
    return [
        (str(uuid.uuid5(NAMESPACE, f"writes-{k}")), f"writer-{k % WRITES_USERS:02d}")
        for k in range(WRITES_INTERACTIONS)
    ]


async def register_writes_interactions(server: Server, key: str) -> None:
    """Register them through the API (idempotent, so every run may)."""
    connection = Connection("127.0.0.1", server.port)
    at = (DATA_END - timedelta(days=31)).isoformat()
    pairs = writes_interactions()
    try:
        for start in range(0, len(pairs), 25):
            fields = "".join(
                REGISTER_FIELD.format(n=n, id=i, tenant=WRITES_TENANT, user=u, at=at)
                for n, (i, u) in enumerate(pairs[start : start + 25])
            )
            body = graphql_body("mutation {" + fields + "\n}", {})
            graphql_data(
                *await connection.request("POST", "/graphql", body, _auth(key))
            )
    finally:
        await connection.close()


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


class Rows:
    """Fresh usage rows for the writes tenant's interactions."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.interactions = [i for i, _ in writes_interactions()]
        self.sources = ["STREAM", "TRANSCRIPT", "DOCUMENT"]

    def batch(self) -> list[dict[str, Any]]:
        """BATCH new records (new external ids) created in the data's last month."""
        r = self.random
        rows = []
        for _ in range(BATCH):
            created = DATA_END - timedelta(seconds=r.uniform(0, 30 * 86_400))
            rows.append(
                {
                    # The service's own key generator (time-ordered UUIDs).
                    "id": new_uuid(),
                    "source": r.choice(self.sources),
                    "external_id": str(uuid.UUID(int=r.getrandbits(128), version=4)),
                    "interaction_id": r.choice(self.interactions),
                    "credits": Decimal(r.randrange(1, 5_000_000_000)).scaleb(-9),
                    "created_at": created.replace(microsecond=r.randrange(1_000_000)),
                }
            )
        return rows


def api_request(
    connection: Connection, key: str, rows: Sequence[dict[str, Any]]
) -> bytes:
    """A prepared ingestUsage request."""
    records = [
        {
            "source": row["source"],
            "interactionId": row["interaction_id"],
            "externalId": row["external_id"],
            "credits": str(row["credits"]),
            "createdAt": row["created_at"].isoformat().replace("+00:00", "Z"),
        }
        for row in rows
    ]
    body = graphql_body(INGEST, {"records": records})
    return connection.prepare("POST", "/graphql", body, _auth(key))


class HandWritten:
    """The idempotent multi-row INSERT ... ON CONFLICT DO NOTHING."""

    def __init__(self, target: Target, usage_columns: Sequence[str]) -> None:
        self.target = target
        self.copy_owner = "tenant_id" in usage_columns and "user_id" in usage_columns
        self.pool: Any = None
        self.sqlite: list[aiosqlite.Connection] = []

    @property
    def sql(self) -> str:
        """The statement for this database."""
        owner_columns = ", tenant_id, user_id" if self.copy_owner else ""
        owner_values = ", i.tenant_id, i.user_id" if self.copy_owner else ""
        join = (
            " LEFT JOIN interactions AS i ON i.id = r.interaction_id"
            if self.copy_owner
            else ""
        )
        columns = (
            "id, source, external_id, interaction_id, credits, created_at, received_at"
        )
        if self.target.dialect == "postgresql":
            return (
                f"INSERT INTO usage_records ({columns}{owner_columns}) "
                "SELECT r.id, r.source, r.external_id, r.interaction_id, r.credits, "
                f"r.created_at, now(){owner_values} "
                "FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], "
                "$5::numeric[], $6::timestamptz[]) "
                "AS r(id, source, external_id, interaction_id, credits, created_at)"
                f"{join} ON CONFLICT (source, external_id) DO NOTHING"
            )
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * BATCH)
        return (
            f"INSERT INTO usage_records ({columns}{owner_columns}) "
            "SELECT r.column1, r.column2, r.column3, r.column4, r.column5, r.column6, "
            f"r.column7{owner_values} FROM (VALUES {values}) AS r"
            f"{join.replace('r.interaction_id', 'r.column4')} "
            "WHERE true ON CONFLICT (source, external_id) DO NOTHING"
        )

    async def open(self) -> None:
        """CLIENTS connections."""
        if self.target.dialect == "postgresql":
            self.pool = await asyncpg.create_pool(
                asyncpg_dsn(self.target.url),
                min_size=CLIENTS,
                max_size=CLIENTS,
                server_settings={"timezone": "UTC"},
            )
            return
        for _ in range(CLIENTS):
            connection = await aiosqlite.connect(
                self.target.sqlite_path, isolation_level=None
            )
            for pragma in (
                "journal_mode=WAL",
                "synchronous=NORMAL",
                "busy_timeout=60000",
            ):
                await connection.execute(f"PRAGMA {pragma}")
            self.sqlite.append(connection)

    async def close(self) -> None:
        """Close every connection."""
        if self.pool is not None:
            await self.pool.close()
        for connection in self.sqlite:
            await connection.close()

    def params(self, rows: Sequence[dict[str, Any]]) -> Any:
        """Statement parameters for a batch (built before the clock starts)."""
        if self.target.dialect == "postgresql":
            return (
                [r["id"] for r in rows],
                [r["source"] for r in rows],
                [r["external_id"] for r in rows],
                [r["interaction_id"] for r in rows],
                [r["credits"] for r in rows],
                [r["created_at"] for r in rows],
            )
        from service.db.types import encode_sqlite_credits

        flat: list[Any] = []
        for r in rows:
            flat.extend(
                (
                    r["id"].hex,
                    r["source"],
                    r["external_id"],
                    r["interaction_id"],
                    encode_sqlite_credits(r["credits"]),
                    _sqlite_time(r["created_at"]),
                    None,  # received_at, set when written
                )
            )
        return flat

    async def insert(self, client: int, params: Any) -> int:
        """One batch in its own transaction; rows inserted."""
        if self.target.dialect == "postgresql":
            status: str = await self.pool.execute(self.sql, *params)
            return int(status.split()[-1])
        connection = self.sqlite[client]
        received = _sqlite_time(datetime.now(UTC))
        values = [received if v is None else v for v in params]
        await connection.execute("BEGIN IMMEDIATE")
        try:
            cursor = await connection.execute(self.sql, values)
            inserted = cursor.rowcount
            await connection.execute("COMMIT")
        except BaseException:
            await connection.execute("ROLLBACK")
            raise
        return int(inserted)


def _sqlite_time(instant: datetime) -> str:
    return (
        instant.astimezone(UTC)
        .replace(tzinfo=None)
        .isoformat(sep=" ", timespec="microseconds")
    )


async def _api_round(
    server: Server, requests: list[bytes]
) -> tuple[float, list[float], int]:
    """Send prepared requests over CLIENTS connections; wall time, latencies, rows."""
    latencies: list[float] = []
    accepted = 0
    queue = iter(requests)
    connections = [Connection("127.0.0.1", server.port) for _ in range(CLIENTS)]
    for connection in connections:
        await connection.open()

    async def client(connection: Connection) -> None:
        nonlocal accepted
        for request in queue:
            started = time.perf_counter()
            status, body = await connection.send(request)
            latencies.append(time.perf_counter() - started)
            result = graphql_data(status, body)["ingestUsage"]
            accepted += result["accepted"]

    elapsed = await drive(connections, client)
    return elapsed, latencies, accepted


async def _sql_round(
    writer: HandWritten, batches: list[Any]
) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    inserted = 0
    queue = iter(batches)

    async def client(index: int) -> None:
        nonlocal inserted
        for params in queue:
            started = time.perf_counter()
            written = await writer.insert(index, params)
            latencies.append(time.perf_counter() - started)
            inserted += written  # not `+= await`: that reads the total first

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(CLIENTS)))
    return time.perf_counter() - started, latencies, inserted


async def run(
    target: Target, server: Server, key: str, meta: dict[str, Any]
) -> dict[str, Any]:
    """Records per second through the API and through the hand-written insert."""
    await register_writes_interactions(server, key)
    total_batches = max(ROUNDS, target.scale.ingest_records // BATCH)
    per_round = total_batches // ROUNDS
    rows = Rows(seed=int(time.time()))
    prepare = Connection("127.0.0.1", server.port)
    writer = HandWritten(target, meta["columns"]["usage_records"])
    await writer.open()
    result: dict[str, Any] = {
        "batch_size": BATCH,
        "clients": CLIENTS,
        "rounds": ROUNDS,
        "records_per_method": per_round * ROUNDS * BATCH,
        "handwritten_sql": writer.sql[:400] + (" ..." if len(writer.sql) > 400 else ""),
        "handwritten_copies_tenant_user": writer.copy_owner,
        "server_workers": server.workers,
        "load_average_before": load_average(),
    }
    try:
        # Warm-up: prepared statements, caches, connection pools.
        await _api_round(
            server,
            [api_request(prepare, key, rows.batch()) for _ in range(WARMUP_BATCHES)],
        )
        await _sql_round(
            writer, [writer.params(rows.batch()) for _ in range(WARMUP_BATCHES)]
        )
        totals: dict[str, dict[str, Any]] = {
            name: {"seconds": 0.0, "records": 0, "latencies": [], "round_rates": []}
            for name in ("api", "handwritten")
        }
        server_cpu = 0.0
        for _ in range(ROUNDS):
            requests = [
                api_request(prepare, key, rows.batch()) for _ in range(per_round)
            ]
            cpu_before = server.cpu()
            elapsed, latencies, accepted = await _api_round(server, requests)
            server_cpu += server.cpu() - cpu_before
            _add(totals["api"], elapsed, latencies, accepted, per_round)
            del requests
            batches = [writer.params(rows.batch()) for _ in range(per_round)]
            elapsed, latencies, inserted = await _sql_round(writer, batches)
            _add(totals["handwritten"], elapsed, latencies, inserted, per_round)
            del batches
    finally:
        await writer.close()
    for name, entry in totals.items():
        rate = entry["records"] / entry["seconds"] if entry["seconds"] else 0.0
        result[name] = {
            "records_per_second": round(rate, 1),
            "seconds": round(entry["seconds"], 2),
            "records": entry["records"],
            "per_round_records_per_second": [round(r, 1) for r in entry["round_rates"]],
            "batch_latency": latency(entry["latencies"]),
        }
    api_records = totals["api"]["records"]
    result["api"]["server_cpu_seconds_per_1000_records"] = (
        round(server_cpu / api_records * 1000, 4) if api_records else None
    )
    hand = result["handwritten"]["records_per_second"]
    result["ratio_api_to_handwritten"] = (
        round(result["api"]["records_per_second"] / hand, 3) if hand else None
    )
    result["load_average_after"] = load_average()
    return result


def _add(
    entry: dict[str, Any],
    elapsed: float,
    latencies: list[float],
    written: int,
    batches: int,
) -> None:
    if written != batches * BATCH:
        raise RuntimeError(f"wrote {written} of {batches * BATCH} new records")
    entry["seconds"] += elapsed
    entry["records"] += written
    entry["latencies"].extend(latencies)
    entry["round_rates"].append(written / elapsed)
