"""The worker delivers alerts as signed webhooks to a real loopback receiver.

Usage crosses a threshold, the writing transaction stores the alert and a
delivery with its `webhook.deliver` job, and a worker (in-process, or a real
`python -m service worker` process that is killed) sends it until the
receiver answers 2xx: always the same delivery and `webhook-id`, verified with
the `standardwebhooks` package.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import standardwebhooks
from prometheus_client import REGISTRY

from corti_sandbox.testing import SandboxServer
from service.db.session import Database
from service.jobs import queue
from tests.budgets.alerting import (
    RunWorker,
    alerts,
    body_of,
    budget,
    deliveries,
    delivery_jobs,
    endpoint,
    ingest,
    register,
    settled,
    until,
    usage,
)
from tests.budgets.ops import ENDPOINT
from tests.budgets.receiver import Received, receiver
from tests.fixtures.app import GraphQLClient, free_port
from tests.worker.helpers import new_interaction, request_document, wait_for_job

pytestmark = pytest.mark.asyncio

DAY = datetime(2026, 3, 10, tzinfo=UTC)
NOON = DAY + timedelta(hours=12)


def sent(outcome: str) -> float:
    """ledger_webhook_deliveries_total{outcome} in this process."""
    value = REGISTRY.get_sample_value(
        "ledger_webhook_deliveries_total", {"outcome": outcome}
    )
    return value or 0.0


def verified(secret: str, requests: list[Received]) -> list[dict[str, Any]]:
    """Each request's body, verified per Standard Webhooks (raises if not)."""
    hook = standardwebhooks.Webhook(secret)
    return [hook.verify(r.body, r.headers) for r in requests]


async def crossing(db: Database, url: str) -> tuple[str, list[uuid.UUID]]:
    """An endpoint and a budget of t1, and usage that crosses 50 and 80 %.

    Returns the endpoint's secret and the alert ids.
    """
    await register(db, "i1", "t1", "u1")
    hook = await endpoint(db, url, "t1")
    await budget(db, "t1", limit="10")
    await ingest(db, usage("a", "8", NOON, interaction="i1"))
    return hook.secret, [a.id for a in await alerts(db)]


async def test_the_worker_delivers_signed_alerts(
    db: Database, gql: GraphQLClient, run_worker: RunWorker
) -> None:
    before = sent("succeeded")
    async with receiver() as target:
        secret, alert_ids = await crossing(db, target.url)
        stored = await deliveries(db)
        assert len(stored) == 2
        async with run_worker():
            done = await settled(db)
    assert {d.status for d in done} == {"SUCCEEDED"}
    assert len(target.received) == 2
    bodies = verified(secret, target.received)
    assert sorted(b["data"]["alertId"] for b in bodies) == sorted(map(str, alert_ids))
    by_id = {str(d.id): d for d in stored}
    for request, body in zip(target.received, bodies, strict=True):
        delivery = by_id[request.headers["webhook-id"]]
        assert request.body == delivery.body.encode()  # the stored bytes
        assert body == body_of(delivery)
        assert request.headers["content-type"] == "application/json"
    assert {j.status for j in await delivery_jobs(db)} == {"SUCCEEDED"}
    assert sent("succeeded") - before == 2
    # visible as WebhookEndpoint.deliveries
    data = await gql.data(ENDPOINT, {"id": str(stored[0].endpoint_id)})
    shown = data["webhookEndpoint"]["deliveries"]
    assert sorted(d["id"] for d in shown) == sorted(by_id)
    assert {(d["status"], d["attempts"], d["lastError"]) for d in shown} == {
        ("SUCCEEDED", 1, None)
    }


async def test_500_and_hanging_receivers_get_the_same_delivery_again(
    db: Database, run_worker: RunWorker
) -> None:
    before = sent("retried")
    async with receiver() as target:
        # 500, hang past the 2 s delivery timeout, 503, then 200
        target.answers = [500, 0, 503]
        await register(db, "i1", "t1", "u1")
        hook = await endpoint(db, target.url, "t1")
        await budget(db, "t1", limit="10", thresholds=[50])
        await ingest(db, usage("a", "5", NOON, interaction="i1"))
        async with run_worker():
            [done] = await settled(db)
    assert (done.status, done.attempts, done.last_error) == ("SUCCEEDED", 4, None)
    assert done.delivered_at is not None
    assert [r.headers["webhook-id"] for r in target.received] == [str(done.id)] * 4
    assert verified(hook.secret, target.received) == [body_of(done)] * 4
    [job] = await delivery_jobs(db)
    assert (job.status, job.attempts) == ("SUCCEEDED", 4)
    assert sent("retried") - before == 3


async def test_a_receiver_that_is_down_gets_it_once_it_is_up(
    db: Database, run_worker: RunWorker
) -> None:
    port = free_port()
    secret, _ = await crossing(db, f"http://127.0.0.1:{port}/hook")
    async with run_worker():

        async def refused_twice() -> bool:
            return all(
                d.attempts >= 2 and d.last_error == "connection failed (ConnectError)"
                for d in await deliveries(db)
            )

        await until(refused_twice)
        async with receiver(port) as target:
            done = await settled(db)
    assert {d.status for d in done} == {"SUCCEEDED"}
    assert sorted(r.headers["webhook-id"] for r in target.received) == sorted(
        str(d.id) for d in done
    )
    verified(secret, target.received)


async def test_gives_up_after_webhook_max_attempts(
    db: Database, run_worker: RunWorker
) -> None:
    async with receiver() as target:
        target.then = 500
        await register(db, "i1", "t1", "u1")
        await endpoint(db, target.url, "t1")
        await budget(db, "t1", limit="10", thresholds=[50])
        await ingest(db, usage("a", "5", NOON, interaction="i1"))
        async with run_worker(webhook_max_attempts=3):
            [done] = await settled(db)
    assert (done.status, done.attempts, done.last_error) == ("FAILED", 3, "HTTP 500")
    assert len(target.received) == 3
    [job] = await delivery_jobs(db)
    assert job.status == "FAILED"
    assert job.error == "HTTP 500"


async def _worker_process(
    sandbox: SandboxServer, database_url: str
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        **sandbox.environment(),
        "DATABASE_URL": database_url,
        "JOB_LEASE_SECONDS": "1",
        "JOB_RETRY_BASE_SECONDS": "0.05",
        "WORKER_POLL_SECONDS": "0.05",
        "WEBHOOK_ALLOW_PRIVATE_URLS": "true",
        "WEBHOOK_TIMEOUT_SECONDS": "60",  # hangs with the receiver until killed
        "LOG_LEVEL": "WARNING",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "service",
        "worker",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def test_a_worker_killed_mid_delivery_loses_nothing_and_keeps_the_id(
    db: Database, database_url: str, sandbox: SandboxServer, run_worker: RunWorker
) -> None:
    async with receiver() as target:
        target.answers = [0]  # the first request hangs: the kill lands mid-send
        await register(db, "i1", "t1", "u1")
        hook = await endpoint(db, target.url, "t1")
        await budget(db, "t1", limit="10", thresholds=[50])
        await ingest(db, usage("a", "5", NOON, interaction="i1"))
        process = await _worker_process(sandbox, database_url)
        try:
            async with asyncio.timeout(30):
                await target.wait_for(1)
        finally:
            process.kill()
            await process.wait()
        assert process.returncode == -signal.SIGKILL
        [pending] = await deliveries(db)
        assert (pending.status, pending.attempts) == ("PENDING", 0)
        async with run_worker():
            [done] = await settled(db)
    # the lease ran out, another worker sent the same delivery again
    assert (done.id, done.status, done.attempts) == (pending.id, "SUCCEEDED", 2)
    assert [r.headers["webhook-id"] for r in target.received] == [str(done.id)] * 2
    assert verified(hook.secret, target.received) == [body_of(done)] * 2
    assert len(await alerts(db)) == 1
    [job] = await delivery_jobs(db)
    assert (job.status, job.attempts) == ("SUCCEEDED", 2)


async def test_an_abandoned_lease_is_taken_over(
    db: Database, run_worker: RunWorker
) -> None:
    async with receiver() as target:
        secret, _ = await crossing(db, target.url)
        # A worker claims both jobs and vanishes without a word.
        ghost = await queue.claim(
            db, "ghost", limit=10, lease_seconds=0.3, kinds=["webhook.deliver"]
        )
        assert len(ghost) == 2
        async with run_worker():
            done = await settled(db)
    assert {(d.status, d.attempts) for d in done} == {("SUCCEEDED", 2)}
    assert sorted(r.headers["webhook-id"] for r in target.received) == sorted(
        str(d.id) for d in done
    )
    verified(secret, target.received)


async def test_usage_recorded_by_a_corti_job_alerts_and_is_delivered(
    db: Database, gql: GraphQLClient, run_worker: RunWorker
) -> None:
    async with receiver() as target, run_worker():
        interaction_id = await new_interaction(gql)  # t1 / u1, through Corti
        hook = await endpoint(db, target.url, "t1")
        user = await budget(db, "t1", "u1", limit="0.000000001", thresholds=[100, 1000])
        job = await wait_for_job(gql, await request_document(gql, interaction_id))
        assert job["status"] == "SUCCEEDED", job
        done = await settled(db)
        assert len(done) == 2
    assert {(a.budget_id, a.threshold) for a in await alerts(db)} == {
        (user.id, 100),
        (user.id, 1000),
    }
    assert {d.status for d in done} == {"SUCCEEDED"}
    bodies = verified(hook.secret, target.received)
    assert sorted(b["data"]["threshold"] for b in bodies) == [100, 1000]
    assert {b["data"]["used"] for b in bodies} == {job["usage"]["credits"]}
