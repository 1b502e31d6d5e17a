"""One delivery attempt against a real receiver: signed per Standard Webhooks
(verified with the `standardwebhooks` package), the same webhook-id on every
attempt, retries on 5xx/timeouts/refused connections, 410 disables."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import standardwebhooks
from sqlalchemy import select

from service.auth.principal import ADMIN
from service.db.base import new_uuid, utcnow
from service.db.models import Job
from service.db.session import Database
from service.webhooks.delivery import Options, Result, attempt, enqueue_event
from service.webhooks.models import WebhookDelivery, WebhookEndpoint
from service.webhooks.service import endpoint_service
from tests.budgets.receiver import receiver
from tests.fixtures.app import free_port

pytestmark = pytest.mark.asyncio
BODY = {"type": "budget.threshold_crossed", "data": {"used": "0.3", "threshold": 80}}


class JobOutbox:
    """The two things enqueue_event uses: a session and a job insert."""

    def __init__(self, session: Any) -> None:
        self.session = session

    async def enqueue(
        self, kind: str, payload: dict[str, Any], *, tenant_id: str | None = None
    ) -> uuid.UUID:
        now = utcnow()
        job = Job(
            id=new_uuid(),
            kind=kind,
            payload=payload,
            state={},
            status="QUEUED",
            attempts=0,
            tenant_id=tenant_id,
            run_after=now,
            created_at=now,
            updated_at=now,
        )
        self.session.add(job)
        await self.session.flush()
        return job.id


async def endpoint_and_delivery(
    db: Database, url: str
) -> tuple[WebhookEndpoint, uuid.UUID]:
    async with db.write() as session:
        endpoint = await endpoint_service.create_endpoint(
            session,
            ADMIN,
            url=url,
            tenant_id=None,
            event_types=None,
            allow_private=True,
        )
        [delivery_id] = await enqueue_event(
            JobOutbox(session), "t1", "budget.threshold_crossed", BODY
        )
        jobs = (await session.execute(select(Job))).scalars().all()
    assert [(j.kind, j.payload) for j in jobs] == [
        ("webhook.deliver", {"delivery_id": str(delivery_id)})
    ]
    return endpoint, delivery_id


async def delivery(db: Database, delivery_id: uuid.UUID) -> WebhookDelivery:
    async with db.read() as session:
        row = await session.get(WebhookDelivery, delivery_id)
    assert row is not None
    return row


OPTIONS = Options(max_attempts=4, timeout_seconds=0.5, allow_private=True)


async def test_retries_then_delivers_under_one_id(db: Database) -> None:
    async with receiver() as target, httpx.AsyncClient() as client:
        target.answers = [500, 0, 503]  # error, hang past the timeout, error, then 200
        endpoint, delivery_id = await endpoint_and_delivery(db, target.url)
        results = [await attempt(db, delivery_id, client, OPTIONS) for _ in range(4)]
        assert [r.result for r in results] == [Result.RETRY] * 3 + [Result.DELIVERED]
        assert results[1].error == "no answer within 0.5 s"
        row = await delivery(db, delivery_id)
        assert (row.status, row.attempts, row.last_error) == ("SUCCEEDED", 4, None)
        assert row.delivered_at is not None
        assert len(target.received) == 4
        ids = {r.headers["webhook-id"] for r in target.received}
        assert ids == {str(delivery_id)}
        hook = standardwebhooks.Webhook(endpoint.secret)
        for request in target.received:
            assert hook.verify(request.body, request.headers) == BODY
        # a finished delivery is not sent again
        again = await attempt(db, delivery_id, client, OPTIONS)
        assert again.result is Result.DELIVERED
        assert len(target.received) == 4


async def test_gives_up_after_max_attempts_and_on_refused_connections(
    db: Database,
) -> None:
    down = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    _, delivery_id = await endpoint_and_delivery(db, down)
    async with httpx.AsyncClient() as client:
        results = [await attempt(db, delivery_id, client, OPTIONS) for _ in range(4)]
    assert [r.result for r in results] == [Result.RETRY] * 3 + [Result.FAILED]
    row = await delivery(db, delivery_id)
    assert (row.status, row.attempts) == ("FAILED", 4)
    assert row.last_error == "connection failed (ConnectError)"


async def test_410_disables_the_endpoint(db: Database) -> None:
    async with receiver() as target, httpx.AsyncClient() as client:
        target.then = 410
        endpoint, delivery_id = await endpoint_and_delivery(db, target.url)
        outcome = await attempt(db, delivery_id, client, OPTIONS)
        assert outcome.result is Result.FAILED
        async with db.read() as session:
            stored = await session.get(WebhookEndpoint, endpoint.id)
        assert stored is not None
        assert stored.disabled_at is not None
        # a disabled endpoint gets no new deliveries
        async with db.write() as session:
            assert (
                await enqueue_event(
                    JobOutbox(session), "t1", "budget.threshold_crossed", BODY
                )
                == []
            )


async def test_private_address_refused_at_delivery_unless_allowed(db: Database) -> None:
    async with receiver() as target, httpx.AsyncClient() as client:
        _, delivery_id = await endpoint_and_delivery(db, target.url)
        strict = Options(max_attempts=4, timeout_seconds=1, allow_private=False)
        outcome = await attempt(db, delivery_id, client, strict)
        assert outcome.result is Result.FAILED
        assert target.received == []
