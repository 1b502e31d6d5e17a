"""Alerts decided in the writing transaction: exactly one per (budget, period,
threshold), whether usage comes one record at a time, in a batch, as a
redelivery, back-dated, concurrently, or by moving an interaction; never taken
back; each written to the webhook outbox and announced to subscribers."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event

from service.auth.principal import ADMIN
from service.budgets import handlers
from service.budgets.feed import alert_feed
from service.budgets.periods import Period
from service.budgets.status import statuses, window_at
from service.db.base import utcnow
from service.db.session import Database
from service.events import UsageRecorded, in_transaction, remove_handler
from service.uow import unit_of_work
from service.usage.service import usage_service
from tests.budgets.alerting import (
    alerts,
    body_of,
    budget,
    deliveries,
    delivery_jobs,
    endpoint,
    ingest,
    owners,
    register,
    thresholds_of,
    usage,
)
from tests.fixtures.app import GraphQLClient, Server
from tests.fixtures.database import BACKEND
from tests.fixtures.operations import INGEST, REGISTER
from tests.live.client import bearer, socket, until

pytestmark = pytest.mark.asyncio

DAY = datetime(2026, 3, 10, tzinfo=UTC)  # a Tuesday
NOON = DAY + timedelta(hours=12)


async def test_one_record_at_a_time_inclusive_thresholds(db: Database) -> None:
    await register(db, "i1", "t1", "u1")
    day = await budget(db, "t1", limit="10")
    steps = [("a", "4", []), ("b", "1", [50]), ("c", "3", [50, 80])]
    steps += [("d", "1.999999999", [50, 80]), ("e", "0.000000001", [50, 80, 100])]
    for external, credits, expected in steps:
        before = utcnow()
        await ingest(db, usage(external, credits, NOON, interaction="i1"))
        assert await thresholds_of(db, day.id) == expected
    rows = await alerts(db)
    assert [(a.threshold, a.used) for a in rows] == [
        (50, Decimal(5)),
        (80, Decimal(8)),
        (100, Decimal(10)),
    ]
    assert {(a.period_start, a.period_end) for a in rows} == {
        (DAY, DAY + timedelta(days=1))
    }
    assert rows[-1].crossed_at >= before  # when the crossing usage was recorded


async def test_a_batch_crosses_several_at_once(db: Database) -> None:
    await register(db, "i1", "t1", "u1")
    day = await budget(db, "t1", limit="10")
    batch = [usage(f"x{n}", "1.2", NOON, interaction="i1") for n in range(10)]
    assert await ingest(db, *batch) == 10
    rows = await alerts(db)
    assert [(a.threshold, a.used) for a in rows] == [
        (t, Decimal(12)) for t in (50, 80, 100)
    ]
    assert {a.budget_id for a in rows} == {day.id}


async def test_redeliveries_alert_nothing_more(db: Database) -> None:
    await register(db, "i1", "t1", "u1")
    day = await budget(db, "t1", limit="10")
    first = usage("a", "6", NOON, interaction="i1")
    await ingest(db, first)
    await endpoint(db, "http://127.0.0.1:9/hook", "t1")
    for _ in range(3):
        assert await ingest(db, first, first) == 0
    assert await thresholds_of(db, day.id) == [50]
    assert await deliveries(db) == []  # the endpoint came after the only alert


async def test_late_usage_alerts_in_its_own_period(db: Database) -> None:
    await register(db, "i1", "t1", "u1")
    day = await budget(db, "t1", limit="10")
    month = await budget(
        db, "t1", period=Period.MONTH, limit="20", time_zone="Europe/Copenhagen"
    )
    await ingest(db, usage("today", "2", NOON, interaction="i1"))
    await ingest(
        db, usage("yesterday", "8", NOON - timedelta(days=1), interaction="i1")
    )
    # Back-dated to the last evening of February (UTC): 23:30 UTC is already
    # March in Copenhagen, 22:30 UTC is not.
    await ingest(
        db,
        usage(
            "late", "10", datetime(2026, 2, 28, 23, 30, tzinfo=UTC), interaction="i1"
        ),
    )
    await ingest(
        db,
        usage(
            "early", "10", datetime(2026, 2, 28, 22, 30, tzinfo=UTC), interaction="i1"
        ),
    )
    got = {(a.budget_id, a.period_start, a.threshold): a.used for a in await alerts(db)}
    february_28 = datetime(2026, 2, 28, tzinfo=UTC)
    march_cph = datetime(2026, 2, 28, 23, tzinfo=UTC)
    february_cph = datetime(2026, 1, 31, 23, tzinfo=UTC)
    assert got == {
        (day.id, DAY - timedelta(days=1), 50): Decimal(8),
        (day.id, DAY - timedelta(days=1), 80): Decimal(8),
        (day.id, february_28, 50): Decimal(10),
        (day.id, february_28, 80): Decimal(10),
        (day.id, february_28, 100): Decimal(10),
        (month.id, march_cph, 50): Decimal(10),
        (month.id, march_cph, 80): Decimal(20),
        (month.id, march_cph, 100): Decimal(20),
        (month.id, february_cph, 50): Decimal(10),
    }
    # today's day (2 of 10) has none
    assert (day.id, DAY, 50) not in got


async def test_user_budgets_count_only_their_user(db: Database) -> None:
    await register(db, "i1", "t1", "u1")
    await register(db, "i2", "t1", "u2")
    tenant = await budget(db, "t1", limit="10")
    user = await budget(db, "t1", "u1", limit="4")
    await ingest(db, usage("a", "5", NOON, interaction="i2"))
    assert await thresholds_of(db, tenant.id) == [50]
    assert await thresholds_of(db, user.id) == []
    await ingest(db, usage("b", "2", NOON, tenant="t1", user="u1"))  # direct
    assert await thresholds_of(db, user.id) == [50]
    assert await thresholds_of(db, tenant.id) == [50]
    await ingest(db, usage("c", "1.2", NOON, interaction="i1"))
    assert await thresholds_of(db, user.id) == [50, 80]
    assert await thresholds_of(db, tenant.id) == [50, 80]


async def test_moves_alert_the_new_owner_and_take_nothing_back(db: Database) -> None:
    await owners(db, ("t2", "u3"), ("t1", "u2"))
    await register(db, "i1", "t1", "u1")
    u1 = await budget(db, "t1", "u1", limit="10")
    u2 = await budget(db, "t1", "u2", limit="10")
    t1 = await budget(db, "t1", limit="100")
    t2 = await budget(db, "t2", limit="10")
    await ingest(db, usage("a", "6", NOON, interaction="i1"))
    assert await thresholds_of(db, u1.id) == [50]
    await register(db, "i1", "t1", "u2")  # the 6 credits arrive at u2
    assert await thresholds_of(db, u2.id) == [50]
    assert await thresholds_of(db, u1.id) == [50]  # never taken back
    await register(db, "i1", "t2", "u3")  # and at tenant t2
    assert await thresholds_of(db, t2.id) == [50]
    await ingest(db, usage("b", "3", NOON, interaction="i1"))
    assert await thresholds_of(db, t2.id) == [50, 80]
    await register(db, "i1", "t1", "u1")  # 9 back at u1: 80 is new, 50 is not
    assert await thresholds_of(db, u1.id) == [50, 80]
    assert await thresholds_of(db, u2.id) == [50]
    assert await thresholds_of(db, t1.id) == []
    assert len(await alerts(db)) == 5


async def test_registration_attributes_earlier_usage(db: Database) -> None:
    await owners(db, ("t1", "u1"))
    day = await budget(db, "t1", limit="10")
    await ingest(db, usage("a", "9", NOON, interaction="i-later"))  # nobody's yet
    assert await alerts(db) == []
    await register(db, "i-later", "t1", "u1")
    assert await thresholds_of(db, day.id) == [50, 80]


async def test_a_rolled_back_write_decides_and_sends_nothing(db: Database) -> None:
    await register(db, "i1", "t1", "u1")
    await budget(db, "t1", limit="10")
    await endpoint(db, "http://127.0.0.1:9/hook", "t1")

    async def failing_write() -> None:
        async with unit_of_work(db, ADMIN) as uow:
            await usage_service.ingest(
                uow, ADMIN, [usage("a", "20", NOON, interaction="i1")]
            )
            raise RuntimeError("the caller fails after the write")

    with pytest.raises(RuntimeError):
        await failing_write()
    assert await alerts(db) == []
    assert await deliveries(db) == []
    assert await delivery_jobs(db) == []


async def test_each_alert_goes_to_matching_endpoints_in_the_outbox(
    db: Database,
) -> None:
    await register(db, "i1", "t1", "u1")
    await owners(db, ("t2", "u2"))
    mine = await endpoint(db, "http://127.0.0.1:9/mine", "t1")
    everyone = await endpoint(db, "http://127.0.0.1:9/all")
    await endpoint(db, "http://127.0.0.1:9/other", "t2")
    user = await budget(db, "t1", "u1", limit="10", thresholds=[50, 80])
    await ingest(db, usage("a", "8.5", NOON, interaction="i1"))
    rows = await alerts(db)
    sent = await deliveries(db)
    assert len(rows) == 2
    assert sorted(
        (d.endpoint_id, body_of(d)["data"]["threshold"]) for d in sent
    ) == sorted((e, t) for e in (mine.id, everyone.id) for t in (50, 80))
    jobs = await delivery_jobs(db)
    assert sorted(j.payload["delivery_id"] for j in jobs) == sorted(
        str(d.id) for d in sent
    )
    assert {(j.status, j.tenant_id) for j in jobs} == {("QUEUED", "t1")}
    alert = next(a for a in rows if a.threshold == 80)
    body = next(
        body_of(d)
        for d in sent
        if d.endpoint_id == mine.id and body_of(d)["data"]["threshold"] == 80
    )
    crossed = alert.crossed_at.isoformat().replace("+00:00", "Z")
    assert body == {
        "type": "budget.threshold_crossed",
        "timestamp": crossed,
        "data": {
            "alertId": str(alert.id),
            "budgetId": str(user.id),
            "tenantId": "t1",
            "userId": "u1",
            "period": "DAY",
            "periodStart": "2026-03-10T00:00:00Z",
            "periodEnd": "2026-03-11T00:00:00Z",
            "threshold": 80,
            "limit": "10",
            "used": "8.5",
            "crossedAt": crossed,
        },
    }


async def test_set_budget_crossings_are_sent_too(db: Database) -> None:
    await register(db, "i1", "t1", "u1")
    await ingest(db, usage("a", "6", utcnow(), interaction="i1"))
    await endpoint(db, "http://127.0.0.1:9/hook", "t1")
    day = await budget(db, "t1", limit="10")
    assert await thresholds_of(db, day.id) == [50]
    [sent] = await deliveries(db)
    assert body_of(sent)["data"]["threshold"] == 50
    assert len(await delivery_jobs(db)) == 1


async def test_concurrent_writers_cross_each_threshold_once(db: Database) -> None:
    """Twenty writers at once, one credit each, a threshold every credit."""
    await owners(db, ("t1", "u1"))
    for n in range(10):
        await register(db, f"i{n}", "t1", f"u{n % 3}")
    tenant = await budget(
        db, "t1", limit="20", thresholds=[5 * k for k in range(1, 21)]
    )
    user = await budget(db, "t1", "u1", limit="4", thresholds=[25, 50, 75, 100, 200])
    # Each in its own hour, so no two share a rollup row: only the budget
    # lock orders them.
    writes = [
        usage(f"c{n}", "1", DAY + timedelta(hours=n), interaction=f"i{n % 10}")
        if n % 2
        else usage(f"c{n}", "1", DAY + timedelta(hours=n), tenant="t1", user="u1")
        for n in range(20)
    ]
    await asyncio.gather(*(ingest(db, w) for w in writes))
    rows = await alerts(db)
    tenant_rows = [a for a in rows if a.budget_id == tenant.id]
    assert [a.threshold for a in tenant_rows] == [5 * k for k in range(1, 21)]
    for alert in tenant_rows:  # each decided on the usage that reached it
        assert alert.used >= Decimal(alert.threshold) / 5
    # u1: ten direct credits and those of i1, i4, i7 (u1's interactions)
    assert await thresholds_of(db, user.id) == [25, 50, 75, 100, 200]


async def test_two_writers_that_cross_together_alert_once(db: Database) -> None:
    """A writes and decides, then waits before committing while B writes to
    other rollup rows: B's decision must see A's credits (the budget lock
    makes it wait for A's commit), or the 100 % alert is never decided.

    SQLite serialises writers (B cannot begin before A commits), so there
    the two simply run at once."""
    await owners(db, ("t1", "u1"), ("t1", "u2"))
    day = await budget(db, "t1", limit="2", thresholds=[50, 100])
    postgresql = db.engine.dialect.name == "postgresql"
    b_written = asyncio.Event()
    a_decided = asyncio.Event()

    async def gate(event: UsageRecorded, uow: Any) -> None:
        if postgresql and not a_decided.is_set():
            a_decided.set()  # A only
            await b_written.wait()
            await asyncio.sleep(0.3)  # B's decision runs now, unless it waits

    in_transaction(UsageRecorded)(gate)
    try:

        async def a() -> None:
            await ingest(db, usage("a", "1", DAY, tenant="t1", user="u1"))

        async def b() -> None:
            if postgresql:
                await a_decided.wait()
            async with unit_of_work(db, ADMIN) as uow:
                record = usage(
                    "b", "1", DAY + timedelta(hours=5), tenant="t1", user="u2"
                )
                await usage_service.ingest(uow, ADMIN, [record])
                b_written.set()

        await asyncio.gather(a(), b())
    finally:
        remove_handler(gate)
    assert await thresholds_of(db, day.id) == [50, 100]


async def test_concurrent_moves_and_batches_neither_deadlock_nor_miss(
    db: Database,
) -> None:
    """Batches (shared interaction locks) and moves (exclusive) of the same
    interactions at once: each transaction takes budget locks last."""
    await owners(db, ("t2", "u9"), ("t1", "u2"))
    for n in range(4):
        await register(db, f"i{n}", "t1", "u1")
    budgets = [
        await budget(db, "t1", "u1", limit="10", thresholds=[10, 50, 100]),
        await budget(db, "t1", "u2", limit="10", thresholds=[10, 50, 100]),
        await budget(db, "t1", limit="20", thresholds=[10, 50, 100]),
        await budget(db, "t2", limit="20", thresholds=[10, 50, 100]),
    ]

    async def batch(k: int) -> None:
        await ingest(
            db,
            *(usage(f"b{k}-{n}", "0.5", NOON, interaction=f"i{n}") for n in range(4)),
        )

    async def move(k: int) -> None:
        target = [("t1", "u2"), ("t2", "u9"), ("t1", "u1")][k % 3]
        await register(db, f"i{k % 4}", *target)

    await asyncio.gather(*(batch(k) for k in range(8)), *(move(k) for k in range(6)))
    # 16 credits in all; whatever the interleaving, every threshold the final
    # usage reaches has its alert, and none appears twice (UNIQUE).
    async with db.read() as session:
        final = await statuses(
            session, [(b, window_at(b, NOON)) for b in budgets], utcnow()
        )
    for status in final:
        reached = [
            t
            for t in status.budget.thresholds
            if status.total * 100 >= status.budget.limit * t
        ]
        got = await thresholds_of(db, status.budget.id)
        assert set(reached) <= set(got)
        assert len(got) == len(set(got))
    assert final[0].total + final[1].total == final[2].total
    assert final[2].total + final[3].total == Decimal(16)


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements run on `db` while the block runs."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_without_budgets_the_handler_costs_one_query(db: Database) -> None:
    await register(db, "i1", "t1", "u1")
    await owners(db, ("t2", "u2"))
    await budget(db, "t2", limit="1")  # another tenant's budget changes nothing

    async def count(external: str, interaction: str) -> int:
        with statements(db) as seen:
            await ingest(db, usage(external, "5", NOON, interaction=interaction))
        return len(seen)

    await count("warm", "i1")
    with_handler = await count("a", "i1")
    unowned_with = await count("b", "i-nobody")
    remove_handler(handlers.on_usage)
    try:
        without = await count("c", "i1")
        unowned_without = await count("d", "i-nobody2")
    finally:
        in_transaction(UsageRecorded)(handlers.on_usage)
    assert with_handler == without + 1
    assert unowned_with == unowned_without  # no owner yet: no query at all
    assert await alerts(db) == []


ALERTS = """
subscription($t: ID!) {
  budgetAlerts(tenantId: $t) { id threshold periodStart used budget { id } }
}"""


async def test_subscribers_get_alerts_of_usage_writes(
    server: Server, gql: GraphQLClient, admin_key: str, db: Database
) -> None:
    await gql.data(REGISTER, {"i": "i1", "t": "t1", "u": "u1"})
    day = await budget(db, "t1", limit="10")
    at = NOON.isoformat().replace("+00:00", "Z")
    async with socket(server.url, bearer(admin_key)) as ws:
        await ws.subscribe(ALERTS, {"t": "t1"})
        await until(lambda: alert_feed.subscriber_count("t1") == 1)
        record = {
            "source": "TRANSCRIPT",
            "interactionId": "i1",
            "externalId": "a",
            "credits": "8",
            "createdAt": at,
        }
        await gql.data(INGEST, {"r": [record]})
        got = [await ws.receive(5) for _ in range(2)]
    assert [m["type"] for m in got] == ["next", "next"]
    payloads = [m["payload"]["data"]["budgetAlerts"] for m in got]
    assert [(p["threshold"], p["used"], p["budget"]["id"]) for p in payloads] == [
        (50, "8", str(day.id)),
        (80, "8", str(day.id)),
    ]
    assert {p["periodStart"] for p in payloads} == {"2026-03-10T00:00:00Z"}
    assert {p["id"] for p in payloads} == {str(a.id) for a in await alerts(db)}


# What a worker process does when its job records usage: its own engine, its
# own process, the same database.
OTHER_PROCESS = """
import asyncio, sys
from datetime import datetime
from decimal import Decimal
from service import domains
from service.auth.principal import ADMIN
from service.db.session import Database
from service.uow import unit_of_work
from service.usage.records import Source, UsageIn
from service.usage.service import usage_service

async def main() -> None:
    domains.load()
    db = Database.from_url(sys.argv[1])
    usage = UsageIn(source=Source.STREAM, interaction_id="i1", external_id="s1",
                    credits=Decimal("8"), created_at=datetime.fromisoformat(sys.argv[2]))
    async with unit_of_work(db) as uow:
        await usage_service.ingest(uow, ADMIN, [usage])
    await db.dispose()

asyncio.run(main())
"""


@pytest.mark.skipif(BACKEND != "postgresql", reason="NOTIFY: PostgreSQL only")
async def test_subscribers_get_alerts_decided_in_another_process(
    server: Server, gql: GraphQLClient, admin_key: str, db: Database, database_url: str
) -> None:
    await gql.data(REGISTER, {"i": "i1", "t": "t1", "u": "u1"})
    day = await budget(db, "t1", limit="10")
    async with socket(server.url, bearer(admin_key)) as ws:
        await ws.subscribe(ALERTS, {"t": "t1"})
        await until(lambda: alert_feed.subscriber_count("t1") == 1)
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", OTHER_PROCESS, database_url, NOON.isoformat()
        )
        assert await process.wait() == 0
        got = [await ws.receive(5) for _ in range(2)]
    payloads = [m["payload"]["data"]["budgetAlerts"] for m in got]
    assert [(p["threshold"], p["used"], p["budget"]["id"]) for p in payloads] == [
        (50, "8", str(day.id)),
        (80, "8", str(day.id)),
    ]
    assert {p["id"] for p in payloads} == {str(a.id) for a in await alerts(db)}
