"""Issue 15: usage without an interaction, attributed to a tenant and user directly.

Over HTTP: the new sources' mutations and ingestUsage items name exactly one
owner; directly attributed usage counts in the tenant's and user's totals (and
exports), in no interaction's; redeliveries and CONFLICT as for other records;
bad attributions are BAD_USER_INPUT and write nothing; a bound key attributes
only to its own tenant.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from service.db.models import UsageRecord, User
from service.db.session import Database
from tests.auth.helpers import call, data, new_key, only_code

pytestmark = pytest.mark.asyncio

FACTS = """
mutation($i: FactsUsageInput!) {
  recordFactsUsage(input: $i) { id source externalId credits interactionId tenantId userId
                                interaction { id } }
}"""
CODING = """
mutation($i: CodingUsageInput!) { recordCodingUsage(input: $i) { id credits } }"""
DICTATION = """
mutation($i: DictationUsageInput!) { recordDictationUsage(input: $i) { id credits } }"""
INGEST = """
mutation($r: [UsageRecordInput!]!) { ingestUsage(records: $r) { accepted duplicates } }"""
TOTALS = """
query {
  tenant(id: "t-direct") {
    credits { total facts coding dictation stream records }
    users(first: 10) { nodes { id credits { total facts coding dictation } } }
    interactions(first: 10) { nodes { id credits { total } } }
  }
}"""


async def _records(db: Database) -> int:
    async with db.read() as session:
        return int(
            await session.scalar(select(func.count()).select_from(UsageRecord)) or 0
        )


async def test_direct_usage_counts_for_tenant_and_user(
    db: Database, api: httpx.AsyncClient
) -> None:
    _, key = await new_key(db, "admin")
    owner = {"tenantId": "t-direct", "userId": "dr-ana"}
    facts = {"requestId": "req-1", "creditsConsumed": "0.25", **owner}
    first = (await data(api, FACTS, {"i": facts}, key=key))["recordFactsUsage"]
    assert first["source"] == "FACTS"
    assert first["externalId"] == "req-1"
    assert first["interactionId"] is None
    assert first["interaction"] is None
    assert (first["tenantId"], first["userId"]) == ("t-direct", "dr-ana")
    again = (await data(api, FACTS, {"i": facts}, key=key))["recordFactsUsage"]
    assert again["id"] == first["id"]
    coding = {"requestId": "req-1", "creditsConsumed": "1.5", **owner}
    await data(api, CODING, {"i": coding}, key=key)
    dictation = {"sessionId": "sess-1", "credits": "2", **owner}
    await data(api, DICTATION, {"i": dictation}, key=key)
    await data(
        api,
        INGEST,
        {
            "r": [
                {"source": "FACTS", "externalId": "req-2", "credits": "0.75", **owner},
                {
                    "source": "STREAM",
                    "interactionId": "i-d",
                    "externalId": "s-1",
                    "credits": "3",
                },
            ]
        },
        key=key,
    )
    await data(
        api,
        """mutation { registerInteraction(input: {interactionId: "i-d",
           tenantId: "t-direct", userId: "dr-bo"}) { id } }""",
        key=key,
    )
    tenant = (await data(api, TOTALS, key=key))["tenant"]
    assert tenant["credits"] == {
        "total": "7.5",
        "facts": "1",
        "coding": "1.5",
        "dictation": "2",
        "stream": "3",
        "records": 5,
    }
    users = {u["id"]: u["credits"] for u in tenant["users"]["nodes"]}
    assert users["dr-ana"] == {
        "total": "4.5",
        "facts": "1",
        "coding": "1.5",
        "dictation": "2",
    }
    assert users["dr-bo"]["total"] == "3"
    # Per-interaction lists leave directly attributed usage out.
    assert [
        (n["id"], n["credits"]["total"]) for n in tenant["interactions"]["nodes"]
    ] == [("i-d", "3")]
    # The user was created with its first usage, like registerInteraction does.
    async with db.read() as session:
        assert await session.get(User, ("t-direct", "dr-ana")) is not None
    csv = await api.get(
        "/export/usage.csv",
        params={"tenant": "t-direct", "source": "DICTATION"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert csv.status_code == 200
    assert csv.text.splitlines()[1].startswith(",dr-ana,t-direct,DICTATION,sess-1,2,")


async def test_redelivery_to_another_owner_is_a_conflict(
    db: Database, api: httpx.AsyncClient
) -> None:
    _, key = await new_key(db, "admin")
    facts = {"requestId": "r", "creditsConsumed": "1", "tenantId": "t", "userId": "u"}
    await data(api, FACTS, {"i": facts}, key=key)
    for changed in (
        {"creditsConsumed": "2"},
        {"userId": "u2"},
        {"tenantId": "t2"},
        {"tenantId": None, "userId": None, "interactionId": "i-1"},
    ):
        body = await call(api, FACTS, {"i": {**facts, **changed}}, key=key)
        assert only_code(body) == "CONFLICT", (changed, body)
    assert await _records(db) == 1


@pytest.mark.parametrize(
    ("owner", "field"),
    [
        ({"interactionId": "i", "tenantId": "t", "userId": "u"}, "interactionId"),
        ({"interactionId": "i", "userId": "u"}, "interactionId"),
        ({}, "interactionId"),
        ({"userId": "u"}, "tenantId"),
        ({"tenantId": "t"}, "userId"),
        ({"tenantId": " t", "userId": "u"}, "tenantId"),
    ],
)
async def test_bad_attribution_writes_nothing(
    db: Database, api: httpx.AsyncClient, owner: dict[str, str], field: str
) -> None:
    _, key = await new_key(db, "admin")
    body = await call(
        api, FACTS, {"i": {"requestId": "r", "creditsConsumed": "1", **owner}}, key=key
    )
    assert only_code(body) == "BAD_USER_INPUT", body
    assert body["errors"][0]["extensions"]["field"] == f"input.{field}"
    batch = [
        {
            "source": "CODING",
            "externalId": "ok",
            "credits": "1",
            "tenantId": "t",
            "userId": "u",
        },
        {"source": "CODING", "externalId": "bad", "credits": "1", **owner},
    ]
    body = await call(api, INGEST, {"r": batch}, key=key)
    assert only_code(body) == "BAD_USER_INPUT", body
    assert body["errors"][0]["extensions"]["field"] == f"records[1].{field}"
    assert await _records(db) == 0
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(User)) == 0


async def test_a_bound_key_attributes_to_its_own_tenant_only(
    db: Database, api: httpx.AsyncClient
) -> None:
    _, mine = await new_key(db, "ingest", tenant="t1")
    facts = {"requestId": "r", "creditsConsumed": "1", "userId": "u"}
    body = await call(api, FACTS, {"i": {**facts, "tenantId": "t2"}}, key=mine)
    assert only_code(body) == "FORBIDDEN", body
    batch = [
        {
            "source": "FACTS",
            "externalId": "a",
            "credits": "1",
            "tenantId": "t1",
            "userId": "u",
        },
        {
            "source": "FACTS",
            "externalId": "b",
            "credits": "1",
            "tenantId": "t2",
            "userId": "u",
        },
    ]
    body = await call(api, INGEST, {"r": batch}, key=mine)
    assert only_code(body) == "FORBIDDEN", body
    assert await _records(db) == 0
    await data(api, FACTS, {"i": {**facts, "tenantId": "t1"}}, key=mine)
    # Another tenant's key may not redeliver (and so learn about) it.
    _, theirs = await new_key(db, "ingest", tenant="t2")
    body = await call(api, FACTS, {"i": {**facts, "tenantId": "t2"}}, key=theirs)
    assert only_code(body) == "FORBIDDEN", body
    assert await _records(db) == 1
