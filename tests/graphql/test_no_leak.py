"""A key bound to one tenant walks every field of the schema and sees nothing of another.

The operations come from introspection (tests/graphql/schema_walk.py), so a
field added later is walked too. Tenant t2 (the victim) has users,
interactions, usage records, a job and a budget; the intruder's key (reader,
bound to t1) walks the schema twice: with t2's ids as arguments, and with its
own ids (so nested fields run under its own objects, among them a job whose
interaction moved to t2). Every answer must be null, empty, FORBIDDEN or
NOT_FOUND wherever t2 would show: no id, external id or credit figure of t2
appears anywhere.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from graphql import GraphQLSchema

from service.db.session import Database
from service.graphql.schema import schema
from tests.auth.helpers import (
    T2_MARKS,
    insert_job,
    mentions,
    new_key,
    seed_two_tenants,
)
from tests.fixtures.app import GraphQLClient
from tests.fixtures.operations import INGEST
from tests.graphql.schema_walk import Walk, reached

pytestmark = pytest.mark.asyncio
ALLOWED = {"FORBIDDEN", "NOT_FOUND"}
SET_BUDGET = """
mutation($t: ID!) { setBudget(input: {tenantId: $t, period: MONTH, limit: "5"}) { id } }
"""
RECORD_ID = "query($i: ID!) { interaction(id: $i) { records { id } } }"


def graphql_schema() -> GraphQLSchema:
    return schema._schema


async def discover(gql: GraphQLClient, key: str, job: str) -> Walk:
    """The walk with the ids that `key` can see, found by walking until none are new.

    Jobs are found by id only, so the seeded job's id is given.
    """
    walk = Walk(graphql_schema(), ids={"Job": [job]})
    for _ in range(6):
        before = json.dumps(walk.ids, sort_keys=True)
        for _, operation in walk.operations():
            body = await gql(operation, key=key)
            walk.learn(body.get("data"))
        if json.dumps(walk.ids, sort_keys=True) == before:
            return walk
    raise AssertionError("ids keep appearing")


async def seed(gql: GraphQLClient, db: Database) -> dict[str, str]:
    """Both tenants' data; returns each tenant's job id (jobs are not listed)."""
    await seed_two_tenants(gql.http, gql.key or "")
    for tenant in ("t1", "t2"):
        await gql.data(SET_BUDGET, {"t": tenant})
    # Usage of this month past the budgets' limit, so they have alerts.
    await gql.data(
        INGEST,
        {
            "r": [
                {"source": "STREAM", "interactionId": i, "externalId": x, "credits": c}
                for i, x, c in (
                    ("int-t1-a", "now-t1", "5"),
                    ("int-t2-a", "now-t2", "9.99"),
                )
            ]
        },
    )
    victim = await gql.data(RECORD_ID, {"i": "int-t2-a"})
    record = victim["interaction"]["records"][0]["id"]
    t2_job = await insert_job(db, tenant="t2", interaction="int-t2-b")
    # A t1 job whose interaction (and record) now belong to t2.
    t1_job = await insert_job(
        db, tenant="t1", interaction="int-t2-a", usage_record_id=uuid.UUID(record)
    )
    return {"t1": t1_job, "t2": t2_job}


def leaks(body: dict[str, Any], marks: tuple[str, ...]) -> list[str]:
    """Marks of the victim in the data, and errors other than ALLOWED."""
    found = mentions(body.get("data"), *marks)
    found += [
        f"{e.get('extensions', {}).get('code')}: {e.get('message')}"
        for e in body.get("errors", [])
        if e.get("extensions", {}).get("code") not in ALLOWED
    ]
    return found


async def test_the_walk_reaches_every_field_as_admin(
    gql: GraphQLClient, db: Database
) -> None:
    """The walker's own check: every operation runs cleanly and reaches data."""
    jobs = await seed(gql, db)
    walk = await discover(gql, gql.key or "", jobs["t2"])
    paths = walk.paths()
    got_to: set[str] = set()
    for name, operation in walk.operations():
        body = await gql(operation)
        assert "errors" not in body, (name, body["errors"])
        if reached(body["data"], paths[name]):
            got_to.add(name)
    unreached = set(paths) - got_to
    # Not seeded: webhook endpoints and deliveries (their URLs must be public),
    # budget alerts (the usage above is stored before alerts are decided here).
    assert unreached <= {"WebhookEndpoint", "WebhookDelivery", "BudgetAlert"}
    assert {"Tenant", "User", "Interaction", "UsageRecord", "Job", "Budget"} <= set(
        paths
    )
    assert len(walk.fields()) > 80


@pytest.mark.parametrize("ids_of", ["victim", "intruder"])
async def test_a_key_bound_to_another_tenant_sees_nothing_of_it(
    gql: GraphQLClient, db: Database, ids_of: str
) -> None:
    jobs = await seed(gql, db)
    _, intruder = await new_key(db, "reader", "t1")
    _, victim = await new_key(db, "reader", "t2")
    theirs = await discover(gql, victim, jobs["t2"])
    own = await discover(gql, intruder, jobs["t1"])
    assert (theirs.ids["Tenant"], own.ids["Tenant"]) == (["t2"], ["t1"])
    # Every id the victim sees (record, job, budget ids...) marks a leak, but
    # user ids, which are unique only within a tenant ("shared" is in both).
    marks = T2_MARKS + tuple(
        {i for kind, ids in theirs.ids.items() if kind != "User" for i in ids}
    )
    walk = theirs if ids_of == "victim" else own
    found = {}
    for name, operation in walk.operations():
        body = await gql(operation, key=intruder)
        if problems := leaks(body, marks):
            found[name] = problems
    assert found == {}
