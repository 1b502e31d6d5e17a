"""rollups.rebuild: the rollups recomputed from the records, and on PostgreSQL
the tables it rewrote analyzed, so the next plans do not wait for autovacuum."""

from __future__ import annotations

from decimal import Decimal

import pytest

from service.db.session import Database
from service.usage import rollups
from tests.fixtures.app import GraphQLClient
from tests.fixtures.operations import REGISTER, TRANSCRIPT
from tests.usage.helpers import analyzed

pytestmark = pytest.mark.asyncio

TENANT_CREDITS = 'query { tenant(id: "t1") { credits { total records } } }'
REWRITTEN = (
    "interactions",
    "usage_tenant_hours",
    "usage_user_days",
    "usage_user_hours",
    "usage_user_weeks",
    "usage_interaction_days",
)


async def test_rebuild_keeps_the_totals_and_analyzes_what_it_rewrote(
    gql: GraphQLClient, db: Database
) -> None:
    for n, credits in enumerate(("0.25", "1.5", "2")):
        await gql.data(REGISTER, {"i": f"int-{n}", "t": "t1", "u": f"u{n % 2}"})
        await gql.data(TRANSCRIPT, {"i": f"int-{n}", "x": f"tr-{n}", "c": credits})
    before = await gql.data(TENANT_CREDITS)
    async with db.write() as session:
        await rollups.rebuild(session)
    assert await gql.data(TENANT_CREDITS) == before
    assert Decimal(before["tenant"]["credits"]["total"]) == Decimal("3.75")
    if db.dialect != "postgresql":
        return
    assert await analyzed(db, REWRITTEN) == set(REWRITTEN)
