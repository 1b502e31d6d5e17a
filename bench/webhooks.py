"""Single webhook mutations at concurrency 32.

`registerInteraction` (a new interaction of the writes tenant per request) and
`recordTranscriptUsage`, `recordDocumentUsage`, `recordStreamUsage` (a new
record of one of the writes tenant's interactions per request), each sent two
ways: signed like a real webhook (X-Webhook-Signature, HMAC over the body with
the server's WEBHOOK_SECRET) and with an `ingest` API key. Each request is timed
from sending to the last byte of the answer; requests are built and signed
before the clock starts. Server CPU per request is the server's CPU time
(every process of it) over the run divided by the requests.

`in_process` runs the same mutations one at a time through `schema.execute` in
this process with a real context (the signed webhook's principal, the real
database, no HTTP): the CPU this process spends per mutation, which is what the
API process spends on it minus HTTP and authentication.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from bench.config import DATA_END, WRITES_TENANT, WRITES_USERS, Target
from bench.http import Connection, GraphQLError, drive, graphql_body, graphql_data
from bench.ingest import register_writes_interactions, writes_interactions
from bench.inprocess import capture, execute
from bench.server import Server, load_average
from bench.stats import latency
from service.auth.principal import Principal, Role
from service.auth.webhooks import sign
from service.db.session import Database

CONCURRENCY = 32
WARMUP = 64
IN_PROCESS_REQUESTS = 200

MUTATIONS: dict[str, str] = {
    "registerInteraction": """
mutation Register($input: RegisterInteractionInput!) {
  registerInteraction(input: $input) { id }
}""",
    "recordTranscriptUsage": """
mutation Transcript($input: TranscriptUsageInput!) {
  recordTranscriptUsage(input: $input) { id }
}""",
    "recordDocumentUsage": """
mutation Document($input: DocumentUsageInput!) {
  recordDocumentUsage(input: $input) { id }
}""",
    "recordStreamUsage": """
mutation Stream($input: StreamUsageInput!) {
  recordStreamUsage(input: $input) { id }
}""",
}
AUTHS = ("signed", "key")


def _variables(mutation: str, r: random.Random) -> dict[str, Any]:
    """Fresh input for one request (new Corti ids, so nothing is a duplicate)."""
    created = DATA_END - timedelta(seconds=r.uniform(0, 30 * 86_400))
    at = created.isoformat().replace("+00:00", "Z")
    new_id = str(uuid.UUID(int=r.getrandbits(128), version=4))
    if mutation == "registerInteraction":
        return {
            "input": {
                "interactionId": new_id,
                "tenantId": WRITES_TENANT,
                "userId": f"writer-{r.randrange(WRITES_USERS):02d}",
                "createdAt": at,
            }
        }
    amount = str(Decimal(r.randrange(1, 5_000_000_000)).scaleb(-9))
    interaction = r.choice(writes_interactions())[0]
    if mutation == "recordStreamUsage":
        fields = {"streamId": new_id, "credits": amount}
    elif mutation == "recordDocumentUsage":
        fields = {"documentId": new_id, "creditsConsumed": amount}
    else:
        fields = {"transcriptId": new_id, "creditsConsumed": amount}
    return {"input": {"interactionId": interaction, **fields, "createdAt": at}}


def _requests(
    server: Server,
    mutation: str,
    headers: Callable[[bytes], dict[str, str]],
    count: int,
    seed: int,
) -> list[bytes]:
    r = random.Random(seed)
    builder = Connection("127.0.0.1", server.port)
    requests = []
    for _ in range(count):
        body = graphql_body(MUTATIONS[mutation], _variables(mutation, r))
        requests.append(builder.prepare("POST", "/graphql", body, headers(body)))
    return requests


async def _send_all(
    server: Server, requests: list[bytes]
) -> tuple[float, list[float], list[str]]:
    latencies: list[float] = []
    errors: list[str] = []
    queue = iter(requests)
    connections = [Connection("127.0.0.1", server.port) for _ in range(CONCURRENCY)]
    for connection in connections:
        await connection.open()

    async def client(connection: Connection) -> None:
        for request in queue:
            started = time.perf_counter()
            status, body = await connection.send(request)
            latencies.append(time.perf_counter() - started)
            try:
                graphql_data(status, body)
            except GraphQLError as error:
                errors.append(str(error))

    elapsed = await drive(connections, client)
    return elapsed, latencies, errors


async def run(
    target: Target,
    server: Server,
    key: str,
    ingest_key: str,
    auths: tuple[str, ...] = AUTHS,
) -> dict[str, Any]:
    """Requests per second, latency percentiles and CPU per request, each
    mutation and way of authenticating, at concurrency 32."""
    await register_writes_interactions(server, key)
    count = target.scale.webhook_requests
    seed = int(time.time() * 1000)
    ways: dict[str, Callable[[bytes], dict[str, str]]] = {
        "signed": lambda body: {
            "X-Webhook-Signature": sign(server.webhook_secret, body)
        },
        "key": lambda _body: {"Authorization": f"Bearer {ingest_key}"},
    }
    results: dict[str, Any] = {
        "concurrency": CONCURRENCY,
        "requests_per_run": count,
        "server_workers": server.workers,
        "runs": {},
    }
    for mutation in MUTATIONS:
        for auth in auths:
            seed += 2
            warm = _requests(server, mutation, ways[auth], WARMUP, seed)
            await _send_all(server, warm)
            requests = _requests(server, mutation, ways[auth], count, seed + 1)
            load_before = load_average()
            cpu_before = server.cpu()
            elapsed, latencies, errors = await _send_all(server, requests)
            server_cpu = server.cpu() - cpu_before
            results["runs"][f"{mutation} {auth}"] = {
                "mutation": mutation,
                "auth": auth,
                "requests": count,
                "seconds": round(elapsed, 2),
                "requests_per_second": round(count / elapsed, 1),
                "latency": latency(latencies),
                "errors": len(errors),
                "first_errors": errors[:3],
                "server_cpu_ms_per_request": round(server_cpu / count * 1000, 3),
                "load_average_before": load_before,
                "load_average_after": load_average(),
            }
    return results


async def in_process(target: Target) -> dict[str, Any]:
    """CPU milliseconds per mutation through schema.execute in this process."""
    db = Database.from_url(target.url)
    principal = Principal(role=Role.INGEST, webhook=True)
    r = random.Random(int(time.time() * 1000))
    out: dict[str, Any] = {"requests": IN_PROCESS_REQUESTS, "mutations": {}}
    try:
        for mutation, query in MUTATIONS.items():
            for _ in range(20):  # warm-up
                await execute(db, query, _variables(mutation, r), principal)
            with capture() as captured:
                await execute(db, query, _variables(mutation, r), principal)
            cpu: list[float] = []
            wall: list[float] = []
            for _ in range(IN_PROCESS_REQUESTS):
                variables = _variables(mutation, r)
                cpu_start, wall_start = time.process_time(), time.perf_counter()
                await execute(db, query, variables, principal)
                cpu.append(time.process_time() - cpu_start)
                wall.append(time.perf_counter() - wall_start)
            out["mutations"][mutation] = {
                "statements": len(captured.statements),
                "statement_heads": [
                    " ".join(sql.split())[:60] for sql, _ in captured.statements
                ],
                "cpu_ms_mean": round(sum(cpu) / len(cpu) * 1000, 3),
                "wall": latency(wall),
            }
    finally:
        await db.dispose()
    out["load_average_after"] = load_average()
    return out
