"""Concurrent batches and re-registrations of the same interactions.

Batches for the same interactions run side by side (they share the
per-interaction lock on PostgreSQL); a re-registration waits for them and they
for it. Whatever the interleaving, every record must end up carrying its
interaction's committed owner, and every interaction the newest time of its
usage, or tenant and user totals would drift from the records.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from service.auth.principal import ADMIN
from service.db.models import Interaction, UsageRecord
from service.db.session import Database
from service.uow import unit_of_work
from service.usage.records import Source, UsageIn
from service.usage.service import usage_service

INTERACTIONS = [f"i{n}" for n in range(4)]
OWNERS = [("t0", "u0"), ("t0", "u1"), ("t1", "u2")]
START = datetime(2026, 1, 1, tzinfo=UTC)
ROUNDS, BATCHES, REGISTRATIONS = 4, 24, 16

pytestmark = pytest.mark.asyncio


async def _batch(db: Database, rng: random.Random, number: int) -> None:
    batch = [
        UsageIn(
            source=rng.choice(list(Source)),
            interaction_id=rng.choice(INTERACTIONS),
            external_id=f"b{number}-{n}",
            credits=Decimal(rng.randint(0, 10**6)) / 1000,
            created_at=START + timedelta(minutes=rng.randint(0, 10_000)),
        )
        for n in range(50)
    ]
    async with unit_of_work(db) as uow:
        await usage_service.ingest(uow, ADMIN, batch)


async def _register(db: Database, rng: random.Random) -> None:
    tenant, user = rng.choice(OWNERS)
    async with unit_of_work(db) as uow:
        await usage_service.register_interaction(
            uow,
            ADMIN,
            interaction_id=rng.choice(INTERACTIONS),
            tenant_id=tenant,
            user_id=user,
        )


async def test_records_carry_the_committed_owner(db: Database) -> None:
    rng = random.Random(7)
    for round_ in range(ROUNDS):
        work = [_batch(db, rng, round_ * BATCHES + n) for n in range(BATCHES)]
        work += [_register(db, rng) for _ in range(REGISTRATIONS)]
        rng.shuffle(work)
        await asyncio.gather(*work)

    async with db.read() as session:
        owners = {
            row.id: (row.tenant_id, row.user_id, row.last_usage_at)
            for row in (await session.execute(select(Interaction))).scalars()
        }
        records = (await session.execute(select(UsageRecord))).scalars().all()
        newest = {
            row[0]: row[1]
            for row in await session.execute(
                select(
                    UsageRecord.interaction_id, func.max(UsageRecord.created_at)
                ).group_by(UsageRecord.interaction_id)
            )
        }
    assert len(records) == ROUNDS * BATCHES * 50
    assert owners, "some interaction was registered"
    for record in records:
        assert record.interaction_id is not None
        tenant, user = owners.get(record.interaction_id, (None, None, None))[:2]
        assert (record.tenant_id, record.user_id) == (tenant, user), record.id
    for interaction_id, (_, _, last_usage_at) in owners.items():
        assert last_usage_at == newest.get(interaction_id), interaction_id


async def test_overlapping_batches_in_opposite_orders(db: Database) -> None:
    """Redeliveries of one batch, reordered, racing: each key's insert waits on
    the other transaction's uncommitted row, so inserts must take the keys in
    one order (or PostgreSQL aborts one as a deadlock). Every call succeeds and
    every record is stored once."""
    await _register(db, random.Random(1))
    keys = [(source, f"x{n:04d}") for n in range(150) for source in Source]

    async def deliver(order: list[tuple[Source, str]]) -> None:
        batch = [
            UsageIn(
                source=source,
                interaction_id=INTERACTIONS[0],
                external_id=external_id,
                credits=Decimal("0.5"),
                created_at=START,
            )
            for source, external_id in order
        ]
        async with unit_of_work(db) as uow:
            await usage_service.ingest(uow, ADMIN, batch)

    rng = random.Random(3)
    for _ in range(4):
        orders = [list(keys), list(reversed(keys))]
        for _ in range(2):
            shuffled = list(keys)
            rng.shuffle(shuffled)
            orders.append(shuffled)
        await asyncio.gather(*(deliver(order) for order in orders))
        keys = [(source, external_id + "y") for source, external_id in keys]

    async with db.read() as session:
        credits = (await session.execute(select(UsageRecord.credits))).scalars().all()
    assert len(credits) == 4 * len(keys)
    assert sum(credits, Decimal(0)) == Decimal("0.5") * 4 * len(keys)
