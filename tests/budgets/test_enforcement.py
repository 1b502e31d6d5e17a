"""enforce: true refuses Corti job mutations once a period is used up, and
creates no job; usage that still arrives is recorded."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from service.db.models import Job
from service.db.session import Database
from tests.budgets.ops import codes, set_budget, status
from tests.budgets.test_budgets import usage
from tests.fixtures.app import GraphQLClient, make_key

pytestmark = pytest.mark.asyncio

CREATE = """
mutation($t: ID!, $u: ID!) {
  createInteraction(input: {tenantId: $t, userId: $u, encounterIdentifier: "enc-1"}) { id }
}"""
DOCUMENT = """
mutation($i: ID!) {
  requestDocument(input: {interactionId: $i, templateKey: "soap", context: ["note"]}) { id }
}"""


async def jobs(db: Database) -> int:
    async with db.read() as session:
        return int(
            (await session.execute(select(func.count()).select_from(Job))).scalar_one()
        )


async def test_refused_at_the_limit_for_the_tenant_or_user(
    gql: GraphQLClient, db: Database
) -> None:
    now = datetime.now(UTC)
    await usage(gql, "i-1", "t1", "u1", ("a", "0.5", now))
    await usage(gql, "i-2", "t1", "u2")
    user = await set_budget(
        gql, tenantId="t1", userId="u1", period="DAY", limit="1", enforce=True
    )
    await set_budget(gql, tenantId="t1", period="DAY", limit="100", enforce=True)
    # under the limit: allowed
    await gql.data(CREATE, {"t": "t1", "u": "u1"})
    await gql.data(DOCUMENT, {"i": "i-1"})
    assert await jobs(db) == 2
    # exactly at the limit: refused, no job
    await usage(gql, "i-1", "t1", "u1", ("b", "0.5", now))
    for operation, variables in (
        (CREATE, {"t": "t1", "u": "u1"}),
        (DOCUMENT, {"i": "i-1"}),
    ):
        body = await gql(operation, variables)
        assert codes(body) == ["BUDGET_EXCEEDED"], body
        assert body["errors"][0]["extensions"]["budgetId"] == user["id"]
    assert await jobs(db) == 2
    # another user of the tenant is within the tenant's budget
    await gql.data(DOCUMENT, {"i": "i-2"})
    assert await jobs(db) == 3
    # usage still arrives and is recorded
    await usage(gql, "i-1", "t1", "u1", ("c", "3", now))
    assert (await status(gql, user["id"]))["used"]["total"] == "4"


async def test_not_enforced_or_not_visible(gql: GraphQLClient, db: Database) -> None:
    now = datetime.now(UTC)
    await usage(gql, "i-1", "t1", "u1", ("a", "5", now))
    await set_budget(gql, tenantId="t1", period="MONTH", limit="1")
    await gql.data(CREATE, {"t": "t1", "u": "u1"})  # enforce: false
    await set_budget(gql, tenantId="t1", period="MONTH", limit="1", enforce=True)
    assert codes(await gql(CREATE, {"t": "t1", "u": "u1"})) == ["BUDGET_EXCEEDED"]
    # a key of another tenant learns nothing about t1's budget
    other = await make_key(db, "ingest", "t2")
    assert codes(await gql(DOCUMENT, {"i": "i-1"}, key=other)) == ["NOT_FOUND"]
    assert codes(await gql(CREATE, {"t": "t1", "u": "u1"}, key=other)) == ["FORBIDDEN"]
    assert codes(
        await gql(CREATE, {"t": "t1", "u": "u1"}, key=await make_key(db, "reader"))
    ) == ["FORBIDDEN"]
    assert await jobs(db) == 1
