"""Single webhook mutations: recordTranscriptUsage at concurrency 32.

Each request is signed like a real webhook (X-Webhook-Signature, HMAC over the
body with the server's WEBHOOK_SECRET), records one new transcript for an
interaction of the writes tenant, and is timed from sending to the last byte
of the answer. Requests are built and signed before the clock starts.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

from bench.config import DATA_END, Target
from bench.http import Connection, GraphQLError, drive, graphql_body, graphql_data
from bench.ingest import register_writes_interactions, writes_interactions
from bench.server import Server, cpu_seconds, load_average
from bench.stats import latency
from service.auth.webhooks import sign

CONCURRENCY = 32
WARMUP = 100

RECORD = """
mutation Transcript($input: TranscriptUsageInput!) {
  recordTranscriptUsage(input: $input) { id }
}"""


def _requests(server: Server, count: int, seed: int) -> list[bytes]:
    r = random.Random(seed)
    interactions = [i for i, _ in writes_interactions()]
    builder = Connection("127.0.0.1", server.port)
    requests = []
    for _ in range(count):
        created = DATA_END - timedelta(seconds=r.uniform(0, 30 * 86_400))
        variables = {
            "input": {
                "interactionId": r.choice(interactions),
                "transcriptId": str(uuid.UUID(int=r.getrandbits(128), version=4)),
                "creditsConsumed": str(
                    Decimal(r.randrange(1, 5_000_000_000)).scaleb(-9)
                ),
                "createdAt": created.isoformat().replace("+00:00", "Z"),
            }
        }
        body = graphql_body(RECORD, variables)
        headers = {"X-Webhook-Signature": sign(server.webhook_secret, body)}
        requests.append(builder.prepare("POST", "/graphql", body, headers))
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


async def run(target: Target, server: Server, key: str) -> dict[str, Any]:
    """Requests per second and latency percentiles at concurrency 32."""
    await register_writes_interactions(server, key)
    count = target.scale.webhook_requests
    seed = int(time.time())
    await _send_all(server, _requests(server, WARMUP, seed))
    requests = _requests(server, count, seed + 1)
    load_before = load_average()
    cpu_before = cpu_seconds(server.pid)
    elapsed, latencies, errors = await _send_all(server, requests)
    server_cpu = cpu_seconds(server.pid) - cpu_before
    return {
        "mutation": "recordTranscriptUsage (signed webhook)",
        "concurrency": CONCURRENCY,
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
