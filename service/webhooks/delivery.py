"""Creating deliveries (in the writing transaction) and making one attempt.

`enqueue_event` runs inside the transaction that raised the event: it stores a
delivery per matching endpoint, with the exact body every attempt will send,
and enqueues a `webhook.deliver` job for it in the same transaction (the
outbox), so an event is never lost and never sent for a rolled-back change.

`attempt` is one try of one delivery, run by that job: it signs the stored
body with the delivery's id as `webhook-id` (the same on every attempt, so a
receiver can drop repeats) and the attempt's time as `webhook-timestamp`.
A worker that dies mid-attempt leaves the job to be claimed again: the same
delivery, the same id, sent again. The `webhook.deliver` job
(service/webhooks/jobs.py) passes its own attempt number, so an attempt lost
with its worker counts too and `max_attempts` bounds every try. An outcome is
written only while the delivery is PENDING: a stale attempt (its lease taken
over) that answers late never undoes a success.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import httpx
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.base import new_uuid, utcnow
from service.db.session import Database
from service.errors import BadUserInput
from service.uow import unit_of_work
from service.webhooks import signing, urls
from service.webhooks.models import WebhookDelivery, WebhookEndpoint
from service.webhooks.repository import WebhookRepository

JOB_KIND = "webhook.deliver"
MAX_ERROR_CHARS = 500


class Outbox(Protocol):
    """What `enqueue_event` needs of the unit of work (service/uow.py)."""

    @property
    def session(self) -> AsyncSession: ...

    async def enqueue(
        self, kind: str, payload: dict[str, Any], *, tenant_id: str | None = None
    ) -> uuid.UUID: ...


async def enqueue_event(
    outbox: Outbox, tenant_id: str, event_type: str, body: dict[str, Any]
) -> list[uuid.UUID]:
    """A delivery and its job per enabled endpoint of `tenant_id` (or of every
    tenant) subscribed to `event_type`; returns the delivery ids."""
    endpoints = await WebhookRepository(outbox.session).endpoints_for(
        tenant_id, event_type
    )
    text = json.dumps(body, separators=(",", ":"), sort_keys=True)
    now = utcnow()
    ids: list[uuid.UUID] = []
    for endpoint in endpoints:
        delivery = WebhookDelivery(
            id=new_uuid(),
            endpoint_id=endpoint.id,
            event_type=event_type,
            body=text,
            status="PENDING",
            attempts=0,
            created_at=now,
        )
        outbox.session.add(delivery)
        ids.append(delivery.id)
    if ids:
        await outbox.session.flush()
    for delivery_id in ids:
        await outbox.enqueue(
            JOB_KIND, {"delivery_id": str(delivery_id)}, tenant_id=tenant_id
        )
    return ids


class Result(StrEnum):
    """How an attempt ended."""

    DELIVERED = "delivered"  # 2xx
    RETRY = "retry"  # try again later, with backoff
    FAILED = "failed"  # given up (410, attempts spent, endpoint gone or refused)


@dataclass(frozen=True)
class Outcome:
    """The end of one attempt."""

    result: Result
    error: str | None = None


@dataclass(frozen=True)
class Options:
    """Delivery settings (WEBHOOK_* in service/config.py)."""

    max_attempts: int = 8
    timeout_seconds: float = 10.0
    allow_private: bool = False


async def attempt(
    db: Database,
    delivery_id: uuid.UUID,
    client: httpx.AsyncClient,
    options: Options,
    *,
    number: int | None = None,
) -> Outcome:
    """One try of one delivery; its outcome is stored before this returns.

    `number` is this try's number from 1 (default: one more than the stored
    attempts); past `options.max_attempts` the delivery fails unsent.
    """
    async with db.read() as session:
        delivery = await session.get(WebhookDelivery, delivery_id)
        endpoint = (
            None
            if delivery is None
            else await session.get(WebhookEndpoint, delivery.endpoint_id)
        )
    if delivery is None or endpoint is None:
        return Outcome(Result.FAILED, "the endpoint was deleted")
    if delivery.status != "PENDING":  # finished by an earlier attempt
        done = delivery.status == "SUCCEEDED"
        return Outcome(Result.DELIVERED if done else Result.FAILED, delivery.last_error)
    number = max(number or 0, delivery.attempts + 1)
    if number > options.max_attempts:
        error = f"gave up after {options.max_attempts} attempts"
        if delivery.last_error:
            error = f"{error}: {delivery.last_error}"
        return await _finish(db, delivery, "FAILED", error, count=False)
    if endpoint.disabled_at is not None:
        return await _finish(db, delivery, "FAILED", "the endpoint is disabled")
    try:
        await urls.check("url", endpoint.url, allow_private=options.allow_private)
    except BadUserInput as refused:
        return await _finish(db, delivery, "FAILED", refused.message, count=False)
    body = delivery.body.encode()
    headers = signing.headers(endpoint.secret, str(delivery.id), int(time.time()), body)
    headers["content-type"] = "application/json"
    headers["user-agent"] = "corti-usage-ledger-webhooks"
    try:
        response = await client.post(
            endpoint.url,
            content=body,
            headers=headers,
            timeout=options.timeout_seconds,
            follow_redirects=False,
        )
    except httpx.TimeoutException:
        error = f"no answer within {options.timeout_seconds:g} s"
    except httpx.HTTPError as exc:
        error = f"connection failed ({type(exc).__name__})"
    else:
        if 200 <= response.status_code < 300:
            return await _finish(db, delivery, "SUCCEEDED", None, number=number)
        if response.status_code == 410:
            return await _finish(
                db, delivery, "FAILED", "HTTP 410 Gone", disable=True, number=number
            )
        error = f"HTTP {response.status_code}"
    if number >= options.max_attempts:
        return await _finish(db, delivery, "FAILED", error, number=number)
    return await _finish(db, delivery, "PENDING", error, number=number)


async def _finish(
    db: Database,
    delivery: WebhookDelivery,
    status: str,
    error: str | None,
    *,
    disable: bool = False,
    count: bool = True,
    number: int | None = None,
) -> Outcome:
    now = utcnow()
    values: dict[str, Any] = {
        "status": status,
        "last_error": None if error is None else error[:MAX_ERROR_CHARS],
    }
    if count:
        values["attempts"] = number or delivery.attempts + 1
    if status == "SUCCEEDED":
        values["delivered_at"] = now
    async with unit_of_work(db) as uow:
        written = await uow.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery.id,
                WebhookDelivery.status == "PENDING",
            )
            .values(**values)
        )
        if disable:
            await uow.session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id == delivery.endpoint_id)
                .values(disabled_at=now)
            )
    if not getattr(written, "rowcount", 1):
        # Another attempt finished it meanwhile: its outcome stands.
        async with db.read() as session:
            current = await session.get(
                WebhookDelivery, delivery.id, populate_existing=True
            )
        if current is None:
            return Outcome(Result.FAILED, "the endpoint was deleted")
        if current.status == "SUCCEEDED":
            return Outcome(Result.DELIVERED)
        if current.status == "FAILED":
            return Outcome(Result.FAILED, current.last_error)
    if status == "SUCCEEDED":
        return Outcome(Result.DELIVERED)
    if status == "FAILED":
        return Outcome(Result.FAILED, error)
    return Outcome(Result.RETRY, error)
