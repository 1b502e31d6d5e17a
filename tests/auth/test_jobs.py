"""Job mutations: the same roles and tenant scope as ingestion (no webhooks)."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import func, select

from service.auth import webhooks
from service.db.models import Job
from service.db.session import Database
from tests.auth.helpers import JOB, call, data, new_key, only_code
from tests.fixtures.operations import REGISTER

pytestmark = pytest.mark.asyncio

CREATE = """mutation($t: ID!) {
  createInteraction(input: {tenantId: $t, userId: "u1", encounterIdentifier: "enc-1"}) {
    id kind status
  }
}"""
DOCUMENT = """mutation($i: ID!) {
  requestDocument(input: {interactionId: $i, templateKey: "soap", context: ["note"]}) {
    id kind
  }
}"""


async def job_count(db: Database) -> int:
    async with db.read() as session:
        count: int = (
            await session.execute(select(func.count()).select_from(Job))
        ).scalar_one()
    return count


async def _register(api: httpx.AsyncClient, admin: str) -> None:
    for interaction, tenant in (("int-t1", "t1"), ("int-t2", "t2")):
        await data(api, REGISTER, {"i": interaction, "t": tenant, "u": "u1"}, key=admin)


async def test_ingest_queues_jobs_for_its_tenant_and_reads_them(
    db: Database, api: httpx.AsyncClient
) -> None:
    _, admin = await new_key(db, "admin")
    await _register(api, admin)
    _, ingest = await new_key(db, "ingest", "t1")
    created = (await data(api, CREATE, {"t": "t1"}, key=ingest))["createInteraction"]
    document = (await data(api, DOCUMENT, {"i": "int-t1"}, key=ingest))[
        "requestDocument"
    ]
    for job in (created, document):
        assert (await data(api, JOB, {"j": job["id"]}, key=ingest))["job"]["id"] == job[
            "id"
        ]
    _, other_ingest = await new_key(db, "ingest", "t1")
    assert (await data(api, JOB, {"j": created["id"]}, key=other_ingest))["job"] is None
    _, reader_t2 = await new_key(db, "reader", "t2")
    assert (await data(api, JOB, {"j": created["id"]}, key=reader_t2))["job"] is None


async def test_job_mutations_refuse_readers_webhooks_and_other_tenants(
    db: Database, api: httpx.AsyncClient
) -> None:
    _, admin = await new_key(db, "admin")
    await _register(api, admin)
    _, reader = await new_key(db, "reader")
    _, ingest = await new_key(db, "ingest", "t1")
    before = await job_count(db)
    for operation, variables in ((CREATE, {"t": "t1"}), (DOCUMENT, {"i": "int-t1"})):
        assert (
            only_code(await call(api, operation, variables, key=reader)) == "FORBIDDEN"
        )
        body = json.dumps({"query": operation, "variables": variables}).encode()
        response = await api.post(
            "/graphql",
            content=body,
            headers={
                "content-type": "application/json",
                "x-webhook-signature": webhooks.sign("whsec-test-one", body),
            },
        )
        assert only_code(response.json()) == "FORBIDDEN"
    assert only_code(await call(api, CREATE, {"t": "t2"}, key=ingest)) == "FORBIDDEN"
    refused = await call(api, DOCUMENT, {"i": "int-t2"}, key=ingest)
    assert only_code(refused) in ("FORBIDDEN", "NOT_FOUND")
    assert "t2" not in refused["errors"][0]["message"].replace("int-t2", "")
    assert await job_count(db) == before
