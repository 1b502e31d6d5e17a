"""The feed behind usageRecorded: across API processes, reconnects, slow readers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import asyncpg
import httpx
import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url

from service.db.models import UsageRecord
from service.db.session import Database
from service.errors import AppError
from service.events import UsageRecorded
from service.live import UsageFeed, running_feeds
from service.live.events import UsageEvent, parse_payload, payloads
from service.uow import unit_of_work
from tests.fixtures.app import GraphQLClient, Server, start_server, stop_server
from tests.fixtures.database import BACKEND
from tests.fixtures.operations import DOCUMENT, REGISTER
from tests.live.client import USAGE_RECORDED, bearer, socket, subscribed, until

pytestmark = pytest.mark.asyncio

postgresql_only = pytest.mark.skipif(BACKEND != "postgresql", reason="PostgreSQL only")


def event(n: int, tenant: str = "t1") -> UsageEvent:
    now = datetime.now(UTC)
    return UsageEvent(
        id=str(uuid.uuid4()),
        tenant_id=tenant,
        interaction_id="i" * 128,
        source="STREAM",
        external_id=f"{n:0128d}",
        credits=Decimal("123456789012.123456789"),
        created_at=now,
        received_at=now,
    )


def stored_record(external_id: str, credits: str = "1") -> UsageRecord:
    """A STREAM record of int-1 as UsageService writes it (owner copy t1/u1:
    events name this tenant)."""
    now = datetime.now(UTC)
    return UsageRecord(
        id=uuid.uuid4(),
        source="STREAM",
        external_id=external_id,
        interaction_id="int-1",
        credits=Decimal(credits),
        created_at=now,
        received_at=now,
        tenant_id="t1",
        user_id="u1",
    )


@pytest_asyncio.fixture
async def second_server(server: Server) -> AsyncIterator[str]:
    """Another API instance on the same database (as another process would be)."""
    uv, task, url = await start_server(server.settings)
    yield url
    await stop_server(uv, task)


async def test_payloads_fit_notify_and_round_trip() -> None:
    events = [event(n) for n in range(200)]
    chunks = list(payloads(events))
    assert len(chunks) > 1
    assert all(len(chunk.encode()) < 8000 for chunk in chunks)
    assert [e for chunk in chunks for e in parse_payload(chunk)] == events


async def test_payloads_of_stored_records_name_only_those_with_a_tenant() -> None:
    """Records as the write path has them: instants and amounts shared by some,
    the same instant in another zone, and a record without a tenant."""
    records = [stored_record(f"x{n}", "0.10" if n % 2 else "7") for n in range(4)]
    at = records[0].created_at
    for record in records:
        record.created_at = record.received_at = at
    records[1].user_id = None
    records[2].created_at = at.astimezone(timezone(timedelta(hours=2)))
    records[3].tenant_id = None
    (chunk,) = payloads(records)
    got = parse_payload(chunk)
    assert [(e.id, e.external_id, e.credits, e.user_id) for e in got] == [
        (str(r.id), r.external_id, r.credits, r.user_id) for r in records[:3]
    ]
    assert [str(e.credits) for e in got] == ["7", "0.1", "7"]
    assert [e.created_at.utcoffset() for e in got] == [
        timedelta(0),
        timedelta(0),
        timedelta(hours=2),
    ]
    assert len({e.created_at for e in got}) == 1  # one instant, two zones


@pytest.mark.parametrize(
    "payload", ['{"id": "x"}', "[[1, 2]]", '[{"id": "x"}]', "[null]", "not json"]
)
async def test_a_malformed_payload_is_refused(payload: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (json's own errors are ValueErrors)
        parse_payload(payload)


async def test_slow_subscriber_is_ended(db: Database) -> None:
    feed = UsageFeed(db, queue_size=3)
    async with feed.subscribe("t1") as events:
        feed.deliver([event(n) for n in range(5)])
        received: list[UsageEvent] = []

        async def drain() -> None:
            async for item in events:
                received.append(item)

        with pytest.raises(AppError, match="fell behind"):
            await drain()
    assert len(received) == 3
    assert feed.subscriber_count() == 0


@postgresql_only
async def test_across_two_server_instances(
    server: Server, second_server: str, gql: GraphQLClient, admin_key: str
) -> None:
    await gql.data(REGISTER, {"i": "int-1", "t": "t1", "u": "u1"})
    async with (
        socket(server.url, bearer(admin_key)) as first,
        socket(second_server, bearer(admin_key)) as second,
    ):
        await first.subscribe(USAGE_RECORDED, {"t": "t1"})
        await second.subscribe(USAGE_RECORDED, {"t": "t1"})
        await subscribed("t1", 2)
        # Written through the first instance, heard by both.
        await gql.data(DOCUMENT, {"i": "int-1", "x": "doc-1", "c": "1.5"})
        for ws in (first, second):
            message = await ws.receive(seconds=1.0)
            assert message["payload"]["data"]["usageRecorded"]["externalId"] == "doc-1"
        # Written through the second instance, heard by both.
        async with httpx.AsyncClient(base_url=second_server) as http:
            other = GraphQLClient(http=http, key=admin_key)
            await other.data(DOCUMENT, {"i": "int-1", "x": "doc-2", "c": "2"})
        for ws in (first, second):
            message = await ws.receive(seconds=1.0)
            assert message["payload"]["data"]["usageRecorded"]["externalId"] == "doc-2"


@postgresql_only
async def test_worker_process_publishes_with_its_own_database(
    server: Server, database_url: str, gql: GraphQLClient, admin_key: str
) -> None:
    """What the worker does: commit with its own engine, then announce (after commit)."""
    await gql.data(REGISTER, {"i": "int-1", "t": "t1", "u": "u1"})
    worker_db = Database.from_url(database_url)
    try:
        async with socket(server.url, bearer(admin_key)) as ws:
            await ws.subscribe(USAGE_RECORDED, {"t": "t1"})
            await subscribed("t1")
            record = stored_record("job-1", "3.25")
            async with unit_of_work(worker_db) as uow:
                uow.session.add(record)
                uow.raise_event(UsageRecorded([record]))
            message = await ws.receive(seconds=1.0)
        assert message["payload"]["data"]["usageRecorded"]["credits"] == "3.25"
    finally:
        await worker_db.dispose()


async def test_rolled_back_usage_is_not_announced(
    server: Server, database_url: str, gql: GraphQLClient, admin_key: str
) -> None:
    """The announcement commits with the records (PostgreSQL: NOTIFY in the transaction)."""
    await gql.data(REGISTER, {"i": "int-1", "t": "t1", "u": "u1"})
    writer = Database.from_url(database_url)

    class Abort(Exception):
        pass

    async def write_and_abort() -> None:
        async with unit_of_work(writer) as uow:
            rolled_back = stored_record("rolled-back")
            uow.session.add(rolled_back)
            uow.raise_event(UsageRecorded([rolled_back]))
            # The in-transaction handlers (the NOTIFY) run before the commit;
            # fail after them, as a later handler's error would.
            await uow._run_in_transaction()
            raise Abort

    try:
        async with socket(server.url, bearer(admin_key)) as ws:
            await ws.subscribe(USAGE_RECORDED, {"t": "t1"})
            await subscribed("t1")
            with pytest.raises(Abort):
                await write_and_abort()
            async with unit_of_work(writer) as uow:
                control = stored_record("control")
                uow.session.add(control)
                uow.raise_event(UsageRecorded([control]))
            message = await ws.receive(seconds=1.0)
        assert message["payload"]["data"]["usageRecorded"]["externalId"] == "control"
    finally:
        await writer.dispose()


@postgresql_only
async def test_listener_reconnects(
    server: Server, database_url: str, gql: GraphQLClient, admin_key: str
) -> None:
    await gql.data(REGISTER, {"i": "int-1", "t": "t1", "u": "u1"})
    listeners = [f._listener for f in running_feeds() if f._listener is not None]
    await until(lambda: all(listener.ready.is_set() for listener in listeners))
    before = {id(listener): listener.conn for listener in listeners}
    dsn = make_url(database_url).set(drivername="postgresql")
    admin = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    try:
        for conn in before.values():
            assert await admin.fetchval(
                "SELECT pg_terminate_backend($1)", conn.get_server_pid()
            )
    finally:
        await admin.close()
    await until(
        lambda: all(
            listener.ready.is_set() and listener.conn is not before[id(listener)]
            for listener in listeners
        )
    )
    async with socket(server.url, bearer(admin_key)) as ws:
        await ws.subscribe(USAGE_RECORDED, {"t": "t1"})
        await subscribed("t1")
        await gql.data(DOCUMENT, {"i": "int-1", "x": "doc-after", "c": "1"})
        message = await ws.receive(seconds=1.0)
    assert message["payload"]["data"]["usageRecorded"]["externalId"] == "doc-after"


async def test_unregistered_usage_is_not_announced(
    server: Server, gql: GraphQLClient, admin_key: str
) -> None:
    async with socket(server.url, bearer(admin_key)) as ws:
        await ws.subscribe(USAGE_RECORDED, {"t": "t1"})
        await subscribed("t1")
        await gql.data(DOCUMENT, {"i": "not-yet", "x": "doc-early", "c": "1"})
        # Positive control: usage of a registered interaction, recorded after it,
        # arrives, and first; doc-early would have come before it.
        await gql.data(REGISTER, {"i": "int-1", "t": "t1", "u": "u1"})
        await gql.data(DOCUMENT, {"i": "int-1", "x": "doc-control", "c": "1"})
        message = await ws.receive(seconds=5.0)
        assert message["payload"]["data"]["usageRecorded"]["externalId"] == (
            "doc-control"
        )
        assert await ws.nothing_within(0.3)
    await asyncio.sleep(0)
