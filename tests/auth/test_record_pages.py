"""Interaction.records is paged (issue 10 item 6): `first` (default 100, at
most 1,000) and `after`, costed by `first`, so aliases of a huge interaction
are bounded and paging returns every record exactly once, in order."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import insert

from service.db.models import Interaction, Tenant, UsageRecord, User
from service.db.session import Database
from service.graphql.args import MAX_RECORDS_PAGE, RECORDS_PAGE
from service.graphql.limits import MAX_COST
from tests.auth.helpers import call, data, new_key, only_code

pytestmark = pytest.mark.asyncio

RECORDS = 3_000
START = datetime(2025, 1, 1, tzinfo=UTC)


async def _big_interaction(db: Database, interaction: str = "int-big") -> list[str]:
    """RECORDS records on one interaction of tenant t-big, two per minute (so
    createdAt ties are broken by the order); their external ids in list order."""
    async with db.write() as session:
        await session.execute(insert(Tenant).values(id="t-big", created_at=START))
        await session.execute(
            insert(User).values(tenant_id="t-big", id="u", created_at=START)
        )
        await session.execute(
            insert(Interaction).values(
                id=interaction,
                tenant_id="t-big",
                user_id="u",
                created_at=START,
                updated_at=START,
            )
        )
        rows = [
            {
                "id": uuid.uuid4(),
                "source": "TRANSCRIPT" if n % 3 else "DOCUMENT",
                "external_id": f"x-{n:05d}",
                "interaction_id": interaction,
                "tenant_id": "t-big",
                "user_id": "u",
                "credits": Decimal("0.1"),
                "created_at": START + timedelta(minutes=n // 2),
                "received_at": START,
            }
            for n in range(RECORDS)
        ]
        await session.execute(insert(UsageRecord), rows)
    return [str(row["external_id"]) for row in rows]


_SELECTIONS = " ".join(
    [f"a{n}: records {{ externalId credits }}" for n in range(10)]
    + [f"b{n}: records(first: 1000) {{ externalId }}" for n in range(10)]
)
ALIASES = f'{{ interaction(id: "int-big") {{ {_SELECTIONS} }} }}'


async def test_aliases_of_a_huge_interaction_are_bounded(
    db: Database, api: httpx.AsyncClient
) -> None:
    ids = await _big_interaction(db)
    _, key = await new_key(db, "reader")
    body = await call(api, ALIASES, key=key)
    assert "errors" not in body, body
    lists = body["data"]["interaction"]
    # Each alias holds one page (the default, or the largest), not all 3,000.
    for n in range(10):
        assert [r["externalId"] for r in lists[f"a{n}"]] == ids[:RECORDS_PAGE]
        assert [r["externalId"] for r in lists[f"b{n}"]] == ids[:MAX_RECORDS_PAGE]
    # Costed by those bounds.
    requested = body["extensions"]["cost"]["requested"]
    assert requested == 1 + 10 * RECORDS_PAGE + 10 * MAX_RECORDS_PAGE


async def test_records_under_many_interactions_are_refused_before_running(
    db: Database, api: httpx.AsyncClient
) -> None:
    _, key = await new_key(db, "reader")
    query = """{ tenants(first: 100) { nodes { interactions(first: 100) {
      nodes { a: records(first: 1000) { id } } } } } }"""
    body = await call(api, query, key=key)
    assert only_code(body) == "BAD_USER_INPUT"
    assert body["data"] is None
    assert body["extensions"]["cost"]["requested"] > MAX_COST
    # A smaller page is the way through.
    small = query.replace("first: 1000", "first: 10")
    assert "errors" not in await call(api, small, key=key)


PAGE = """query($first: Int!, $after: String, $source: UsageSource) {
  interaction(id: "int-big") {
    records(first: $first, after: $after, source: $source) { externalId cursor }
  }
}"""


@pytest.mark.parametrize(("size", "source"), [(700, None), (1000, "DOCUMENT")])
async def test_paging_returns_every_record_once_in_order(
    db: Database, api: httpx.AsyncClient, size: int, source: str | None
) -> None:
    ids = await _big_interaction(db)
    if source == "DOCUMENT":
        ids = [i for n, i in enumerate(ids) if n % 3 == 0]
    _, key = await new_key(db, "reader")
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        variables = {"first": size, "after": after, "source": source}
        records = (await data(api, PAGE, variables, key=key))["interaction"]["records"]
        pages += 1
        if not records:
            break
        assert len(records) <= size
        seen += [r["externalId"] for r in records]
        after = records[-1]["cursor"]
        assert after is not None
    assert seen == ids
    assert pages == -(-len(ids) // size) + 1  # full pages, then an empty one


async def test_page_arguments_are_checked(db: Database, api: httpx.AsyncClient) -> None:
    await _big_interaction(db)
    _, key = await new_key(db, "reader")
    for variables in (
        {"first": MAX_RECORDS_PAGE + 1},
        {"first": -1},
        {"first": 5, "after": "not-a-cursor"},
    ):
        body = await call(api, PAGE, variables, key=key)
        assert only_code(body) == "BAD_USER_INPUT", body
    empty = await data(api, PAGE, {"first": 0}, key=key)
    assert empty["interaction"]["records"] == []


async def test_calls_without_arguments_keep_working(
    db: Database, api: httpx.AsyncClient
) -> None:
    _, admin = await new_key(db, "admin")
    await data(
        api,
        'mutation { registerInteraction(input: {interactionId: "small", '
        'tenantId: "t1", userId: "u1"}) { id } '
        'a: recordStreamUsage(input: {interactionId: "small", streamId: "s1", '
        'credits: "1"}) { id cursor } '
        'b: recordTranscriptUsage(input: {interactionId: "small", transcriptId: '
        '"t1", creditsConsumed: "2"}) { id } }',
        key=admin,
    )
    result = await data(
        api,
        '{ interaction(id: "small") { records { source credits cursor } '
        "docs: records(source: DOCUMENT) { id } } }",
        key=admin,
    )
    records = result["interaction"]["records"]
    assert sorted(r["source"] for r in records) == ["STREAM", "TRANSCRIPT"]
    assert all(r["cursor"] for r in records)
    assert result["interaction"]["docs"] == []
