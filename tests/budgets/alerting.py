"""Helpers of the alert and delivery tests (plain functions; fixtures: conftest.py)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from service.auth.principal import ADMIN
from service.budgets.models import Budget, BudgetAlert
from service.budgets.periods import Period
from service.budgets.service import BudgetIn, budget_service
from service.db.models import Job
from service.db.session import Database
from service.uow import unit_of_work
from service.usage.records import Source, UsageIn
from service.usage.repository import UsageRepository
from service.usage.service import usage_service
from service.webhooks.models import WebhookDelivery, WebhookEndpoint
from service.webhooks.service import endpoint_service

RunWorker = Callable[..., Any]

# What the budgets tests' workers run with (on top of tests/worker's fast queue).
WEBHOOK_SETTINGS: dict[str, Any] = {
    "webhook_allow_private_urls": True,
    "webhook_timeout_seconds": 2.0,  # a loaded machine still answers within it
    "webhook_max_attempts": 6,
}


@dataclass(frozen=True)
class AlertKey:
    """What makes an alert unique, plus what it says."""

    budget_id: uuid.UUID
    period_start: datetime
    threshold: int


async def owners(db: Database, *pairs: tuple[str, str]) -> None:
    """Create tenants and users (as registerInteraction would)."""
    async with unit_of_work(db, ADMIN) as uow:
        repo = UsageRepository(uow.session)
        for tenant, user in pairs:
            await repo.ensure_user(tenant, user)


async def budget(
    db: Database,
    tenant: str,
    user: str | None = None,
    *,
    period: Period = Period.DAY,
    limit: str = "10",
    thresholds: Sequence[int] = (50, 80, 100),
    time_zone: str = "UTC",
) -> Budget:
    """setBudget through the service, in its own unit of work."""
    async with unit_of_work(db, ADMIN) as uow:
        row, _ = await budget_service.set_budget(
            uow,
            ADMIN,
            BudgetIn(
                tenant_id=tenant,
                user_id=user,
                period=period,
                limit=Decimal(limit),
                time_zone=time_zone,
                thresholds=list(thresholds),
            ),
        )
    return row


async def register(db: Database, interaction: str, tenant: str, user: str) -> None:
    """registerInteraction through the service."""
    async with unit_of_work(db, ADMIN) as uow:
        await usage_service.register_interaction(
            uow, ADMIN, interaction_id=interaction, tenant_id=tenant, user_id=user
        )


def usage(
    external: str,
    credits: str,
    at: datetime,
    *,
    interaction: str | None = None,
    tenant: str | None = None,
    user: str | None = None,
    source: Source = Source.TRANSCRIPT,
) -> UsageIn:
    """One usage record for an interaction, or attributed to a tenant and user."""
    return UsageIn(
        source=source,
        interaction_id=interaction,
        external_id=external,
        credits=Decimal(credits),
        created_at=at,
        tenant_id=tenant,
        user_id=user,
    )


async def ingest(db: Database, *records: UsageIn) -> int:
    """ingestUsage through the service; how many were new."""
    async with unit_of_work(db, ADMIN) as uow:
        outcome = await usage_service.ingest(uow, ADMIN, list(records))
    return outcome.accepted


async def alerts(db: Database) -> list[BudgetAlert]:
    """Every stored alert, by budget, period and threshold."""
    async with db.read() as session:
        rows = await session.execute(
            select(BudgetAlert).order_by(
                BudgetAlert.budget_id, BudgetAlert.period_start, BudgetAlert.threshold
            )
        )
        return list(rows.scalars())


async def thresholds_of(db: Database, budget_id: uuid.UUID) -> list[int]:
    """Thresholds alerted for one budget, all periods, lowest first."""
    return sorted(a.threshold for a in await alerts(db) if a.budget_id == budget_id)


async def endpoint(
    db: Database, url: str, tenant: str | None = None
) -> WebhookEndpoint:
    """An endpoint (private URLs allowed: the receivers listen on loopback)."""
    async with unit_of_work(db, ADMIN) as uow:
        return await endpoint_service.create_endpoint(
            uow.session,
            ADMIN,
            url=url,
            tenant_id=tenant,
            event_types=None,
            allow_private=True,
        )


async def deliveries(db: Database) -> list[WebhookDelivery]:
    """Every delivery, oldest first."""
    async with db.read() as session:
        rows = await session.execute(
            select(WebhookDelivery).order_by(
                WebhookDelivery.created_at, WebhookDelivery.id
            )
        )
        return list(rows.scalars())


def body_of(delivery: WebhookDelivery) -> dict[str, Any]:
    """A delivery's stored JSON body."""
    parsed: dict[str, Any] = json.loads(delivery.body)
    return parsed


async def delivery_jobs(db: Database) -> list[Job]:
    """The webhook.deliver jobs."""
    async with db.read() as session:
        rows = await session.execute(select(Job).where(Job.kind == "webhook.deliver"))
        return list(rows.scalars())


async def until(check: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    """Poll `check` until it holds (fails the test after `within` seconds)."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def settled(db: Database) -> list[WebhookDelivery]:
    """Deliveries once none is PENDING and their jobs have ended."""

    async def done() -> bool:
        return all(d.status != "PENDING" for d in await deliveries(db)) and all(
            j.status in ("SUCCEEDED", "FAILED") for j in await delivery_jobs(db)
        )

    await until(done)
    return await deliveries(db)
