"""Roles: admin everything, reader queries, ingest writes and its own jobs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio

from service.db.session import Database
from tests.auth.helpers import (
    INTERACTION,
    JOB,
    TENANTS,
    call,
    data,
    insert_job,
    new_key,
    only_code,
    seed_two_tenants,
)
from tests.fixtures.operations import (
    DOCUMENT,
    INGEST,
    REGISTER,
    STREAM,
    TENANT,
    TRANSCRIPT,
)

pytestmark = pytest.mark.asyncio

WRITES: list[tuple[str, str, dict[str, Any]]] = [
    ("registerInteraction", REGISTER, {"i": "int-new", "t": "t1", "u": "u1"}),
    ("recordTranscriptUsage", TRANSCRIPT, {"i": "int-t1-a", "x": "tr-new", "c": "1"}),
    ("recordDocumentUsage", DOCUMENT, {"i": "int-t1-a", "x": "doc-new", "c": "1"}),
    ("recordStreamUsage", STREAM, {"i": "int-t1-a", "x": "st-new", "c": "1"}),
    (
        "ingestUsage",
        INGEST,
        {
            "r": [
                {
                    "source": "STREAM",
                    "interactionId": "int-t1-a",
                    "externalId": "st-batch",
                    "credits": "1",
                }
            ]
        },
    ),
]
READS: list[tuple[str, str, dict[str, Any]]] = [
    ("tenants", TENANTS, {}),
    ("tenant", TENANT, {"t": "t1"}),
    ("interaction", INTERACTION, {"i": "int-t1-a"}),
]
T1_CREDITS = 'query { tenant(id: "t1") { credits { total records } } }'
OWNER = "query($i: ID!) { interaction(id: $i) { tenant { id } user { id } } }"


@pytest_asyncio.fixture
async def admin(db: Database, api: httpx.AsyncClient) -> str:
    _, key = await new_key(db, "admin")
    await seed_two_tenants(api, key)
    return key


async def t1_credits(api: httpx.AsyncClient, admin: str) -> dict[str, Any]:
    result: dict[str, Any] = (await data(api, T1_CREDITS, key=admin))["tenant"][
        "credits"
    ]
    return result


@pytest.mark.parametrize(
    ("name", "operation", "variables"), WRITES, ids=[w[0] for w in WRITES]
)
@pytest.mark.parametrize("tenant", [None, "t1"], ids=["unbound", "bound"])
async def test_reader_cannot_write(
    db: Database,
    api: httpx.AsyncClient,
    admin: str,
    name: str,
    operation: str,
    variables: dict[str, Any],
    tenant: str | None,
) -> None:
    _, reader = await new_key(db, "reader", tenant)
    before = await t1_credits(api, admin)
    body = await call(api, operation, variables, key=reader)
    assert only_code(body) == "FORBIDDEN", body
    assert body["data"] is None
    assert await t1_credits(api, admin) == before
    assert (await data(api, INTERACTION, {"i": "int-new"}, key=admin))[
        "interaction"
    ] is None


@pytest.mark.parametrize(
    ("name", "operation", "variables"), READS, ids=[r[0] for r in READS]
)
@pytest.mark.parametrize("tenant", [None, "t1"], ids=["unbound", "bound"])
async def test_ingest_cannot_query(
    db: Database,
    api: httpx.AsyncClient,
    admin: str,
    name: str,
    operation: str,
    variables: dict[str, Any],
    tenant: str | None,
) -> None:
    _, ingest = await new_key(db, "ingest", tenant)
    body = await call(api, operation, variables, key=ingest)
    assert only_code(body) == "FORBIDDEN", body
    assert body["data"] is None or body["data"][name] is None


@pytest.mark.parametrize(
    ("name", "operation", "variables"), WRITES, ids=[w[0] for w in WRITES]
)
async def test_ingest_can_write(
    db: Database,
    api: httpx.AsyncClient,
    admin: str,
    name: str,
    operation: str,
    variables: dict[str, Any],
) -> None:
    _, ingest = await new_key(db, "ingest", "t1")
    before = await t1_credits(api, admin)
    result = await data(api, operation, variables, key=ingest)
    after = await t1_credits(api, admin)
    if name == "registerInteraction":
        assert result[name]["id"] == "int-new"
        owner = await data(api, OWNER, {"i": "int-new"}, key=admin)
        assert owner["interaction"] == {"tenant": {"id": "t1"}, "user": {"id": "u1"}}
        assert after == before
        return
    if name == "ingestUsage":
        assert result[name] == {"accepted": 1, "duplicates": 0}
    else:
        assert result[name]["id"]
    # The write reached t1's totals: one more record, one more credit.
    assert after["records"] == before["records"] + 1
    assert Decimal(after["total"]) == Decimal(before["total"]) + 1


async def test_ingest_reads_only_the_jobs_it_created(
    db: Database, api: httpx.AsyncClient, admin: str
) -> None:
    key_id, ingest = await new_key(db, "ingest")
    other_id, other = await new_key(db, "ingest")
    mine = await insert_job(db, tenant="t1", interaction="int-t1-a", api_key_id=key_id)
    theirs = await insert_job(
        db, tenant="t1", interaction="int-t1-a", api_key_id=other_id
    )
    nobody = await insert_job(db, tenant="t1", interaction="int-t1-a")
    job = (await data(api, JOB, {"j": mine}, key=ingest))["job"]
    assert job == {"id": mine, "kind": "requestTranscript", "status": "QUEUED"}
    for hidden in (theirs, nobody):
        assert (await data(api, JOB, {"j": hidden}, key=ingest))["job"] is None
    assert (await data(api, JOB, {"j": theirs}, key=other))["job"]["id"] == theirs
    # Readers and admins see them all (by tenant).
    _, reader = await new_key(db, "reader")
    for key in (reader, admin):
        for job_id in (mine, theirs, nobody):
            assert (await data(api, JOB, {"j": job_id}, key=key))["job"]["id"] == job_id


async def test_admin_reads_and_writes_everything(
    db: Database, api: httpx.AsyncClient, admin: str
) -> None:
    for name, operation, variables in WRITES:
        assert (await data(api, operation, variables, key=admin))[name]
    tenants = (await data(api, TENANTS, key=admin))["tenants"]
    assert tenants == {"totalCount": 2, "nodes": [{"id": "t1"}, {"id": "t2"}]}
    assert (await data(api, TENANT, {"t": "t2"}, key=admin))["tenant"] == {"id": "t2"}
    interaction = await data(api, INTERACTION, {"i": "int-t2-a"}, key=admin)
    assert interaction["interaction"] == {"id": "int-t2-a"}
    job = await insert_job(db, tenant=None)
    assert (await data(api, JOB, {"j": job}, key=admin))["job"]["id"] == job


# An ingest credential may write, and a mutation's payload (or its job) leads to an
# Interaction, whose fields lead on to the tenant's users, credits and usage. Those
# are reads: ingest keys (and webhook signatures, which act for every tenant) get
# ids back, never usage.
ESCALATIONS = [
    pytest.param(
        'mutation { registerInteraction(input: {interactionId: "int-t1-a", '
        'tenantId: "t1", userId: "u1"}) { tenant { credits { total } } } }',
        id="register-payload-tenant-credits",
    ),
    pytest.param(
        'mutation { registerInteraction(input: {interactionId: "int-t1-a", '
        'tenantId: "t1", userId: "u1"}) { tenant { users { nodes { id } } } } }',
        id="register-payload-tenant-users",
    ),
    pytest.param(
        'mutation { recordStreamUsage(input: {interactionId: "int-t1-a", '
        'streamId: "st-x", credits: "1"}) { interaction { records { externalId } } } }',
        id="record-payload-interaction-records",
    ),
]


@pytest.mark.parametrize("operation", ESCALATIONS)
async def test_ingest_cannot_read_through_mutation_payloads(
    db: Database, api: httpx.AsyncClient, admin: str, operation: str
) -> None:
    _, ingest = await new_key(db, "ingest", "t1")
    body = await call(api, operation, key=ingest)
    assert "FORBIDDEN" in [e["extensions"]["code"] for e in body.get("errors", [])]
    assert "tr-t1-a" not in str(body)
    assert "u1" not in str(body)


async def test_ingest_cannot_read_through_its_job(
    db: Database, api: httpx.AsyncClient, admin: str
) -> None:
    key_id, ingest = await new_key(db, "ingest")
    job = await insert_job(db, tenant="t1", interaction="int-t1-a", api_key_id=key_id)
    query = """query($j: ID!) { job(id: $j) {
      interaction { credits { total } tenant { users { nodes { id } } } } } }"""
    body = await call(api, query, {"j": job}, key=ingest)
    assert "FORBIDDEN" in [e["extensions"]["code"] for e in body.get("errors", [])]
    assert "u1" not in str(body.get("data"))
