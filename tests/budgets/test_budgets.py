"""setBudget, deleteBudget, statuses, history and who may do what."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from service.budgets.models import Budget, BudgetAlert
from service.db.session import Database
from tests.budgets.ops import (
    BUDGET,
    CREDITS,
    DELETE_BUDGET,
    HISTORY,
    SET_BUDGET,
    TENANT_BUDGETS,
    USER_CREDITS,
    codes,
    set_budget,
    status,
)
from tests.fixtures.app import GraphQLClient, make_key
from tests.fixtures.seed import INGEST, REGISTER, iso

pytestmark = pytest.mark.asyncio


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


async def usage(
    gql: GraphQLClient,
    interaction: str,
    tenant: str,
    user: str,
    *items: tuple[str, str, datetime],
) -> None:
    """Register `interaction` and ingest (external id, credits, createdAt) records."""
    await gql.data(REGISTER, {"i": interaction, "t": tenant, "u": user})
    records = [
        {
            "source": "TRANSCRIPT",
            "interactionId": interaction,
            "externalId": ext,
            "credits": credits,
            "createdAt": iso(at),
        }
        for ext, credits, at in items
    ]
    if records:
        await gql.data(INGEST, {"r": records})


async def count(db: Database, model: Any) -> int:
    async with db.read() as session:
        return int(
            (
                await session.execute(select(func.count()).select_from(model))
            ).scalar_one()
        )


class TestSetBudget:
    async def test_creates_then_updates_the_same_budget(
        self, gql: GraphQLClient
    ) -> None:
        await usage(gql, "i-1", "t1", "u1")
        first = await set_budget(gql, tenantId="t1", period="MONTH", limit="100")
        assert first["thresholds"] == [50, 80, 100]
        assert first["timeZone"] == "UTC"
        assert first["enforce"] is False
        assert first["user"] is None
        again = await set_budget(
            gql,
            tenantId="t1",
            period="MONTH",
            limit="50.5",
            thresholds=[90, 10],
            timeZone="Europe/Copenhagen",
            enforce=True,
        )
        assert again["id"] == first["id"]
        assert (again["limit"], again["thresholds"], again["enforce"]) == (
            "50.5",
            [10, 90],
            True,
        )
        user = await set_budget(
            gql, tenantId="t1", userId="u1", period="MONTH", limit="5"
        )
        assert user["id"] != first["id"]
        assert user["user"] == {"id": "u1"}
        data = await gql.data(TENANT_BUDGETS, {"t": "t1", "u": "u1"})
        assert {b["id"] for b in data["tenant"]["budgets"]} == {first["id"], user["id"]}
        assert [b["id"] for b in data["tenant"]["user"]["budgets"]] == [user["id"]]

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"tenantId": "nobody"}, "input.tenantId"),
            ({"userId": "ghost"}, "input.userId"),
            ({"limit": "0"}, "input.limit"),
            ({"limit": "-1"}, "input.limit"),
            ({"thresholds": [0]}, "input.thresholds"),
            ({"thresholds": [1001]}, "input.thresholds"),
            ({"thresholds": [50, 50]}, "input.thresholds"),
            ({"timeZone": "Mars/Olympus"}, "input.timeZone"),
            ({"timeZone": "localtime"}, "input.timeZone"),
        ],
    )
    async def test_bad_input_writes_nothing(
        self, gql: GraphQLClient, db: Database, fields: dict[str, Any], field: str
    ) -> None:
        await usage(gql, "i-1", "t1", "u1")
        given = {"tenantId": "t1", "period": "DAY", "limit": "10", **fields}
        body = await gql(SET_BUDGET, {"i": given})
        assert codes(body) == ["BAD_USER_INPUT"], body
        assert body["errors"][0]["extensions"]["field"] == field
        assert await count(db, Budget) == 0

    async def test_roles(self, gql: GraphQLClient, db: Database) -> None:
        await usage(gql, "i-1", "t1", "u1")
        await usage(gql, "i-2", "t2", "u2")
        given = {"tenantId": "t1", "period": "DAY", "limit": "10"}
        reader = await make_key(db, "reader")
        ingest = await make_key(db, "ingest")
        bound = await make_key(db, "admin", "t2")
        for key in (reader, ingest, bound):
            assert codes(await gql(SET_BUDGET, {"i": given}, key=key)) == ["FORBIDDEN"]
        assert await count(db, Budget) == 0
        budget = await set_budget(gql, **given)
        own = await set_budget(gql, key=bound, tenantId="t2", period="DAY", limit="1")
        # reader reads its tenant; a key bound to another tenant sees nothing
        t1_reader = await make_key(db, "reader", "t1")
        found = await gql.data(BUDGET, {"id": budget["id"]}, key=t1_reader)
        assert found["budget"]["id"] == budget["id"]
        assert (await gql.data(BUDGET, {"id": budget["id"]}, key=bound))[
            "budget"
        ] is None
        assert codes(await gql(BUDGET, {"id": budget["id"]}, key=ingest)) == [
            "FORBIDDEN"
        ]
        # deleting: admin only, bound admin its own tenant only
        assert codes(await gql(DELETE_BUDGET, {"id": budget["id"]}, key=reader)) == [
            "FORBIDDEN"
        ]
        gone = await gql.data(DELETE_BUDGET, {"id": budget["id"]}, key=bound)
        assert gone["deleteBudget"] is False
        assert await count(db, Budget) == 2
        assert (await gql.data(DELETE_BUDGET, {"id": own["id"]}, key=bound))[
            "deleteBudget"
        ]
        assert (await gql.data(DELETE_BUDGET, {"id": budget["id"]}))["deleteBudget"]
        assert await count(db, Budget) == 0


class TestStatus:
    async def test_used_equals_credits_over_the_period(
        self, gql: GraphQLClient
    ) -> None:
        now = datetime.now(UTC)
        start = month_start(now)
        previous = month_start(start - timedelta(days=1))
        await usage(
            gql,
            "i-1",
            "t1",
            "u1",
            ("a", "0.1", start),
            ("b", "0.2", now),
            ("c", "7", start - timedelta(microseconds=1)),
        )
        await usage(gql, "i-2", "t1", "u2", ("d", "1.05", start + timedelta(minutes=7)))
        tenant = await set_budget(
            gql, tenantId="t1", period="MONTH", limit="3", thresholds=[10, 99]
        )
        user = await set_budget(
            gql, tenantId="t1", userId="u1", period="MONTH", limit="0.9"
        )
        got = await status(gql, tenant["id"])
        end = (start + timedelta(days=32)).replace(day=1)
        want = await gql.data(CREDITS, {"t": "t1", "from": iso(start), "to": iso(end)})
        assert got["used"] == want["tenant"]["credits"]
        assert got["used"]["total"] == "1.35"
        assert (got["periodStart"], got["periodEnd"]) == (iso(start), iso(end))
        assert got["remaining"] == "1.65"
        assert got["percentUsed"] == "45"  # Decimal output drops trailing zeros
        # setBudget crossed 10 % at once; 99 % is not crossed
        assert [a["threshold"] for a in got["alerts"]] == [10]
        assert got["alerts"][0]["used"] == "1.35"
        assert got["alerts"][0]["periodStart"] == iso(start)
        assert Decimal(got["projected"]) >= Decimal("1.35")
        mine = await status(gql, user["id"])
        want_user = await gql.data(
            USER_CREDITS, {"t": "t1", "u": "u1", "from": iso(start), "to": iso(end)}
        )
        assert mine["used"] == want_user["tenant"]["user"]["credits"]
        assert mine["remaining"] == "0.6"
        assert mine["percentUsed"] == "33.33"
        # a past period: status(at:) and history(last:)
        past = await status(gql, tenant["id"], iso(start - timedelta(days=1)))
        assert past["periodStart"] == iso(previous)
        assert past["used"]["total"] == "7"
        assert past["projected"] == "7"  # the period has ended
        assert (
            past["alerts"] == []
        )  # nothing was written into it since the budget exists
        history = (await gql.data(HISTORY, {"id": tenant["id"], "last": 3}))["budget"][
            "history"
        ]
        assert [h["periodStart"] for h in history][:2] == [iso(start), iso(previous)]
        assert [h["used"]["total"] for h in history][:2] == ["1.35", "7"]
        assert codes(await gql(HISTORY, {"id": tenant["id"], "last": 0})) == [
            "BAD_USER_INPUT"
        ]

    async def test_percent_rounds_half_even(self, gql: GraphQLClient) -> None:
        now = datetime.now(UTC)
        await usage(gql, "i-1", "t1", "u1", ("a", "0.01125", now))
        budget = await set_budget(
            gql, tenantId="t1", period="MONTH", limit="1", thresholds=[]
        )
        # 1.125 % is a tie: half-even gives 1.12 (half-up would give 1.13)
        assert (await status(gql, budget["id"]))["percentUsed"] == "1.12"
        await usage(gql, "i-2", "t1", "u1", ("b", "0.0001", now))
        # 1.135 % ties to the even 1.14
        assert (await status(gql, budget["id"]))["percentUsed"] == "1.14"

    async def test_projection_extrapolates_the_rate(
        self, gql: GraphQLClient, db: Database
    ) -> None:
        from service.budgets.models import Budget as Row
        from service.budgets.periods import Window
        from service.budgets.status import Status
        from service.usage.queries import Summary

        row = Row(limit=Decimal(10), period="DAY", time_zone="UTC", thresholds=[])
        day = Window(datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC))
        used = Summary()
        used.add("STREAM", Decimal(3), 1)
        quarter = Status(row, day, used, day.start + timedelta(hours=6))
        assert quarter.projected == Decimal(12)
        assert Status(row, day, used, day.end).projected == Decimal(3)
        assert Status(
            row, day, used, day.start + timedelta(hours=7)
        ).projected == Decimal("10.285714286")

    async def test_alerts_survive_until_the_budget_is_deleted(
        self, gql: GraphQLClient, db: Database
    ) -> None:
        await usage(gql, "i-1", "t1", "u1", ("a", "5", datetime.now(UTC)))
        budget = await set_budget(gql, tenantId="t1", period="DAY", limit="5")
        assert [
            a["threshold"] for a in (await status(gql, budget["id"]))["alerts"]
        ] == [
            50,
            80,
            100,
        ]
        # raising the limit takes no alert back, and sets none twice
        await set_budget(gql, tenantId="t1", period="DAY", limit="500")
        assert len((await status(gql, budget["id"]))["alerts"]) == 3
        await set_budget(gql, tenantId="t1", period="DAY", limit="5")
        assert await count(db, BudgetAlert) == 3
        await gql.data(DELETE_BUDGET, {"id": budget["id"]})
        assert await count(db, BudgetAlert) == 0
