"""The unit of work: handlers in the transaction, after the commit, never on rollback."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from service.auth.principal import ADMIN
from service.db.models import Job, Tenant, UsageRecord
from service.db.session import Database
from service.events import (
    DomainEvent,
    InteractionMoved,
    UsageRecorded,
    after_commit,
    in_transaction,
    remove_handler,
)
from service.uow import UnitOfWork, unit_of_work
from service.usage.records import Source, UsageIn
from service.usage.service import usage_service

pytestmark = pytest.mark.asyncio


@dataclass(frozen=True)
class Pinged(DomainEvent):
    """A test-only event."""

    name: str


@dataclass(frozen=True)
class Echoed(DomainEvent):
    """Raised by a Pinged handler, to show that raised events are handled too."""

    name: str


class Boom(Exception):
    """A handler's failure."""


Register = Callable[..., Any]


@pytest_asyncio.fixture
async def register() -> AsyncIterator[Register]:
    """`register(in_transaction(E), handler)`; every handler is removed afterwards."""
    added: list[Any] = []

    def add(decorator: Any, handler: Any) -> Any:
        added.append(decorator(handler))
        return handler

    yield add
    for handler in added:
        remove_handler(handler)


async def _count(db: Database, model: Any) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _tenants(db: Database) -> list[str]:
    async with db.read() as session:
        return sorted((await session.execute(select(Tenant.id))).scalars())


class TestDispatch:
    async def test_rolled_back_events_reach_no_handler(
        self, db: Database, register: Register
    ) -> None:
        seen: list[str] = []

        async def during(event: Pinged, uow: UnitOfWork) -> None:
            seen.append(f"in:{event.name}")

        async def after(event: Pinged, _db: Database) -> None:
            seen.append(f"after:{event.name}")

        register(in_transaction(Pinged), during)
        register(after_commit(Pinged), after)

        async def rolled_back() -> None:
            async with unit_of_work(db) as uow:
                uow.session.add(Tenant(id="t-rolled-back"))
                uow.raise_event(Pinged("lost"))
                raise Boom

        with pytest.raises(Boom):
            await rolled_back()
        assert seen == []
        assert await _tenants(db) == []
        # Positive control: the same unit without the error dispatches both.
        async with unit_of_work(db) as uow:
            uow.raise_event(Pinged("kept"))
        assert seen == ["in:kept", "after:kept"]

    async def test_in_transaction_handlers_run_before_the_commit(
        self, db: Database, register: Register
    ) -> None:
        seen: list[tuple[str, Any]] = []

        async def during(event: Pinged, uow: UnitOfWork) -> None:
            # Same transaction: the uncommitted row is there, other readers
            # do not see it yet, and this handler's own write commits with it.
            here = await uow.session.get(Tenant, "t-1")
            seen.append(("in", (here is not None, await _tenants(db))))
            uow.session.add(Tenant(id="t-from-handler"))
            uow.raise_event(Echoed(event.name))

        async def echoed(event: Echoed, uow: UnitOfWork) -> None:
            seen.append(("echo-in", event.name))

        async def after(event: DomainEvent, db: Database) -> None:
            seen.append(("after", (type(event).__name__, await _tenants(db))))

        register(in_transaction(Pinged), during)
        register(in_transaction(Echoed), echoed)
        register(after_commit(DomainEvent), after)
        async with unit_of_work(db) as uow:
            uow.session.add(Tenant(id="t-1"))
            await uow.session.flush()
            uow.raise_event(Pinged("p"))
            assert seen == []  # nothing runs until the block ends
        both = ["t-1", "t-from-handler"]
        assert seen == [
            ("in", (True, [])),
            ("echo-in", "p"),
            ("after", ("Pinged", both)),
            ("after", ("Echoed", both)),
        ]

    async def test_an_in_transaction_failure_rolls_everything_back(
        self, db: Database, register: Register
    ) -> None:
        after: list[UsageRecorded] = []

        async def refuse(event: UsageRecorded, uow: UnitOfWork) -> None:
            uow.session.add(Tenant(id="t-from-handler"))
            await uow.enqueue("test.follow-up", {"n": len(event.records)})
            raise Boom

        async def announced(event: UsageRecorded, _db: Database) -> None:
            after.append(event)

        register(in_transaction(UsageRecorded), refuse)
        register(after_commit(UsageRecorded), announced)
        usage = UsageIn(Source.DOCUMENT, "i-1", "doc-1", Decimal("1.5"))

        async def record() -> None:
            async with unit_of_work(db, ADMIN) as uow:
                await usage_service.record(uow, ADMIN, usage)

        with pytest.raises(Boom):
            await record()
        assert await _count(db, UsageRecord) == 0
        assert await _count(db, Job) == 0
        assert await _tenants(db) == []
        assert after == []

    async def test_an_after_commit_failure_keeps_the_commit_and_is_logged(
        self, db: Database, register: Register, caplog: pytest.LogCaptureFixture
    ) -> None:
        later: list[str] = []

        async def broken(event: Pinged, _db: Database) -> None:
            raise Boom("the feed is down")

        async def next_one(event: Pinged, _db: Database) -> None:
            later.append(event.name)

        register(after_commit(Pinged), broken)
        register(after_commit(Pinged), next_one)
        with caplog.at_level(logging.ERROR, logger="service.uow"):
            async with unit_of_work(db) as uow:
                uow.session.add(Tenant(id="t-kept"))
                uow.raise_event(Pinged("p"))
        assert await _tenants(db) == ["t-kept"]
        assert later == ["p"]  # the other handlers still run
        (entry,) = [r for r in caplog.records if r.name == "service.uow"]
        assert "broken" in entry.getMessage()
        assert "Pinged" in entry.getMessage()
        assert entry.exc_info is not None
        assert entry.exc_info[0] is Boom


class TestOutbox:
    async def test_a_job_enqueued_in_a_rolled_back_unit_does_not_exist(
        self, db: Database
    ) -> None:

        async def rolled_back() -> None:
            async with unit_of_work(db) as uow:
                await uow.enqueue("test.outbox", {"n": 1}, tenant_id="t1")
                raise Boom

        with pytest.raises(Boom):
            await rolled_back()
        assert await _count(db, Job) == 0
        async with unit_of_work(db) as uow:
            job_id = await uow.enqueue("test.outbox", {"n": 2}, tenant_id="t1")
        async with db.read() as session:
            job = await session.get(Job, job_id)
        assert job is not None
        assert (job.kind, job.status, job.payload, job.tenant_id) == (
            "test.outbox",
            "QUEUED",
            {"n": 2},
            "t1",
        )

    async def test_a_job_enqueued_by_a_handler_commits_with_the_change(
        self, db: Database, register: Register
    ) -> None:
        async def follow_up(event: Pinged, uow: UnitOfWork) -> None:
            await uow.enqueue("test.follow-up", {"name": event.name})

        register(in_transaction(Pinged), follow_up)
        async with unit_of_work(db) as uow:
            uow.raise_event(Pinged("x"))
        async with db.read() as session:
            payloads = list((await session.execute(select(Job.payload))).scalars())
        assert payloads == [{"name": "x"}]


class TestUsageEvents:
    async def test_usage_recorded_names_new_records_once(self, db: Database) -> None:
        batch = [
            UsageIn(Source.STREAM, "i-1", "s-1", Decimal("0.1")),
            UsageIn(Source.STREAM, "i-1", "s-1", Decimal("0.1")),  # in-batch repeat
            UsageIn(Source.DOCUMENT, "i-2", "d-1", Decimal(2)),
        ]
        async with unit_of_work(db, ADMIN) as uow:
            await usage_service.ingest(uow, ADMIN, batch)
        (event,) = uow.events
        assert isinstance(event, UsageRecorded)
        assert [(r.external_id, r.credits, r.tenant_id) for r in event.records] == [
            ("s-1", Decimal("0.1"), None),
            ("d-1", Decimal(2), None),
        ]
        async with unit_of_work(db, ADMIN) as uow:
            await usage_service.ingest(uow, ADMIN, batch)  # a redelivery
        assert uow.events == ()

    async def test_interaction_moved_carries_the_records_that_changed_owner(
        self, db: Database
    ) -> None:
        at = datetime(2026, 3, 1, tzinfo=UTC)
        usage = UsageIn(Source.DOCUMENT, "i-1", "d-1", Decimal("1.25"), at)
        async with unit_of_work(db, ADMIN) as uow:
            await usage_service.record(uow, ADMIN, usage)
        moves: list[InteractionMoved] = []
        for tenant, user in (("t1", "u1"), ("t1", "u1"), ("t2", "u2")):
            async with unit_of_work(db, ADMIN) as uow:
                await usage_service.register_interaction(
                    uow, ADMIN, interaction_id="i-1", tenant_id=tenant, user_id=user
                )
            moves.extend(e for e in uow.events if isinstance(e, InteractionMoved))
        assert [(m.old_owner, m.new_owner) for m in moves] == [
            (None, ("t1", "u1")),
            (("t1", "u1"), ("t2", "u2")),
        ]
        for move in moves:
            (record,) = move.records
            assert (record.external_id, record.credits, record.created_at) == (
                "d-1",
                Decimal("1.25"),
                at,
            )
            assert (record.tenant_id, record.user_id) == move.new_owner
