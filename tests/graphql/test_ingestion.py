"""Ingestion mutations over HTTP: idempotency, conflicts, attribution, batches."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.fixtures.app import GraphQLClient

pytestmark = pytest.mark.asyncio

REGISTER = """
mutation($i: ID!, $t: ID!, $u: ID!, $at: DateTime) {
  registerInteraction(input: {interactionId: $i, tenantId: $t, userId: $u, createdAt: $at}) {
    id createdAt tenant { id } user { id }
  }
}"""
TRANSCRIPT = """
mutation($i: ID!, $x: ID!, $c: Decimal!, $at: DateTime) {
  recordTranscriptUsage(input: {interactionId: $i, transcriptId: $x, creditsConsumed: $c,
                                createdAt: $at}) {
    id source externalId credits createdAt interactionId interaction { id }
  }
}"""
DOCUMENT = """
mutation($i: ID!, $x: ID!, $c: Decimal!) {
  recordDocumentUsage(input: {interactionId: $i, documentId: $x, creditsConsumed: $c}) {
    id source externalId credits
  }
}"""
STREAM = """
mutation($i: ID!, $x: ID!, $c: Decimal!) {
  recordStreamUsage(input: {interactionId: $i, streamId: $x, credits: $c}) {
    id source externalId credits
  }
}"""
INGEST = """
mutation($r: [UsageRecordInput!]!) {
  ingestUsage(records: $r) { accepted duplicates records { source externalId credits } }
}"""
TENANT_CREDITS = """
query($t: ID!) { tenant(id: $t) { credits { total stream transcript document records } } }
"""


def code(body: dict[str, Any]) -> str:
    """The code of the only error."""
    assert len(body["errors"]) == 1, body
    result: str = body["errors"][0]["extensions"]["code"]
    return result


async def tenant_total(gql: GraphQLClient, tenant: str) -> dict[str, Any] | None:
    data = await gql.data(TENANT_CREDITS, {"t": tenant})
    return data["tenant"]["credits"] if data["tenant"] else None


class TestRecordUsage:
    async def test_each_source_is_recorded_and_summed_exactly(
        self, gql: GraphQLClient
    ) -> None:
        await gql.data(REGISTER, {"i": "int-1", "t": "t1", "u": "u1"})
        await gql.data(TRANSCRIPT, {"i": "int-1", "x": "tr-1", "c": "0.1"})
        await gql.data(DOCUMENT, {"i": "int-1", "x": "doc-1", "c": 0.1})
        stream = await gql.data(STREAM, {"i": "int-1", "x": "st-1", "c": "0.1"})
        assert stream["recordStreamUsage"]["source"] == "STREAM"
        assert stream["recordStreamUsage"]["credits"] == "0.1"
        assert await tenant_total(gql, "t1") == {
            "total": "0.3",
            "stream": "0.1",
            "transcript": "0.1",
            "document": "0.1",
            "records": 3,
        }

    async def test_redelivery_succeeds_and_changes_nothing(
        self, gql: GraphQLClient
    ) -> None:
        await gql.data(REGISTER, {"i": "int-1", "t": "t1", "u": "u1"})
        first = await gql.data(TRANSCRIPT, {"i": "int-1", "x": "tr-1", "c": "1.5"})
        again = await gql.data(TRANSCRIPT, {"i": "int-1", "x": "tr-1", "c": "1.50"})
        assert again == first
        assert (await tenant_total(gql, "t1")) == {
            "total": "1.5",
            "stream": "0",
            "transcript": "1.5",
            "document": "0",
            "records": 1,
        }

    async def test_same_key_with_other_credits_is_a_conflict(
        self, gql: GraphQLClient
    ) -> None:
        await gql.data(REGISTER, {"i": "int-1", "t": "t1", "u": "u1"})
        await gql.data(TRANSCRIPT, {"i": "int-1", "x": "tr-1", "c": "1.5"})
        body = await gql(TRANSCRIPT, {"i": "int-1", "x": "tr-1", "c": "2"})
        assert code(body) == "CONFLICT"
        assert (await tenant_total(gql, "t1"))["total"] == "1.5"  # type: ignore[index]

    async def test_usage_before_registration_is_kept_then_attributed(
        self, gql: GraphQLClient
    ) -> None:
        early = await gql.data(TRANSCRIPT, {"i": "late", "x": "tr-9", "c": "2.25"})
        assert early["recordTranscriptUsage"]["interaction"] is None
        assert await tenant_total(gql, "t9") is None
        await gql.data(REGISTER, {"i": "late", "t": "t9", "u": "u9"})
        assert (await tenant_total(gql, "t9"))["total"] == "2.25"  # type: ignore[index]

    async def test_reregistration_moves_usage(self, gql: GraphQLClient) -> None:
        await gql.data(REGISTER, {"i": "int-1", "t": "t1", "u": "u1"})
        await gql.data(STREAM, {"i": "int-1", "x": "st-1", "c": "4"})
        moved = await gql.data(REGISTER, {"i": "int-1", "t": "t2", "u": "u2"})
        assert moved["registerInteraction"]["tenant"] == {"id": "t2"}
        assert (await tenant_total(gql, "t1"))["total"] == "0"  # type: ignore[index]
        assert (await tenant_total(gql, "t2"))["total"] == "4"  # type: ignore[index]

    async def test_hundred_simultaneous_deliveries_count_once(
        self, gql: GraphQLClient
    ) -> None:
        await gql.data(REGISTER, {"i": "int-1", "t": "t1", "u": "u1"})
        variables = {"i": "int-1", "x": "tr-same", "c": "0.7"}
        bodies = await asyncio.gather(*[gql(TRANSCRIPT, variables) for _ in range(100)])
        assert all("errors" not in b for b in bodies), [
            b for b in bodies if "errors" in b
        ][:1]
        assert len({b["data"]["recordTranscriptUsage"]["id"] for b in bodies}) == 1
        assert (await tenant_total(gql, "t1")) == {
            "total": "0.7",
            "stream": "0",
            "transcript": "0.7",
            "document": "0",
            "records": 1,
        }


class TestIngestBatch:
    async def test_five_thousand_records_in_one_call(self, gql: GraphQLClient) -> None:
        await gql.data(REGISTER, {"i": "int-1", "t": "t1", "u": "u1"})
        records = [
            {
                "source": "STREAM",
                "interactionId": "int-1",
                "externalId": f"s-{n}",
                "credits": "0.001",
            }
            for n in range(5000)
        ]
        result = (await gql.data(INGEST, {"r": records}))["ingestUsage"]
        assert (result["accepted"], result["duplicates"]) == (5000, 0)
        assert len(result["records"]) == 5000
        assert (await tenant_total(gql, "t1"))["total"] == "5"  # type: ignore[index]
        again = (await gql.data(INGEST, {"r": records[:10]}))["ingestUsage"]
        assert (again["accepted"], again["duplicates"]) == (0, 10)

    async def test_one_bad_record_names_its_index_and_writes_nothing(
        self, gql: GraphQLClient
    ) -> None:
        records = [
            {
                "source": "DOCUMENT",
                "interactionId": "i",
                "externalId": "d1",
                "credits": "1",
            },
            {
                "source": "DOCUMENT",
                "interactionId": "i",
                "externalId": "d2",
                "credits": "-1",
            },
        ]
        body = await gql(INGEST, {"r": records})
        assert code(body) == "BAD_USER_INPUT"
        assert "records[1].credits" in body["errors"][0]["message"]
        await gql.data(REGISTER, {"i": "i", "t": "t1", "u": "u1"})
        assert (await tenant_total(gql, "t1"))["records"] == 0  # type: ignore[index]

    async def test_conflict_inside_a_batch_names_the_later_index(
        self, gql: GraphQLClient
    ) -> None:
        records = [
            {
                "source": "STREAM",
                "interactionId": "i",
                "externalId": "s",
                "credits": "1",
            },
            {
                "source": "STREAM",
                "interactionId": "i",
                "externalId": "s",
                "credits": "1",
            },
            {
                "source": "STREAM",
                "interactionId": "i",
                "externalId": "s",
                "credits": "2",
            },
        ]
        body = await gql(INGEST, {"r": records})
        assert code(body) == "CONFLICT"
        assert "records[2]" in body["errors"][0]["message"]

    async def test_redelivered_batch_counts_duplicates(
        self, gql: GraphQLClient
    ) -> None:
        records = [
            {
                "source": "STREAM",
                "interactionId": "i",
                "externalId": "s",
                "credits": "1",
            },
            {
                "source": "STREAM",
                "interactionId": "i",
                "externalId": "s",
                "credits": "1.0",
            },
            {
                "source": "TRANSCRIPT",
                "interactionId": "i",
                "externalId": "s",
                "credits": "3",
            },
        ]
        result = (await gql.data(INGEST, {"r": records}))["ingestUsage"]
        assert (result["accepted"], result["duplicates"]) == (2, 1)


class TestUserCreditsInAPage:
    async def test_users_page_credits_equal_a_direct_lookup(
        self, gql: GraphQLClient
    ) -> None:
        """User.credits under users(range:) equals the same user's credits looked up alone."""
        await gql.data(REGISTER, {"i": "a", "t": "t1", "u": "u1"})
        await gql.data(REGISTER, {"i": "b", "t": "t1", "u": "u2"})
        await gql.data(REGISTER, {"i": "c", "t": "t1", "u": "u3"})
        at = "2025-05-01T10:00:00Z"
        for i, x, c in (("a", "s1", "0.1"), ("a", "s2", "0.2"), ("b", "s3", "0")):
            await gql.data(
                INGEST,
                {
                    "r": [
                        {
                            "source": "STREAM",
                            "interactionId": i,
                            "externalId": x,
                            "credits": c,
                            "createdAt": at,
                        }
                    ]
                },
            )
        await gql.data(TRANSCRIPT, {"i": "a", "x": "t1", "c": "1.25", "at": at})
        await gql.data(
            TRANSCRIPT, {"i": "c", "x": "t-out", "c": "9", "at": "2025-07-01T00:00:00Z"}
        )
        summary = "credits(range: $r) { total stream transcript document records }"
        page = await gql.data(
            f'query($r: TimeRange) {{ tenant(id: "t1") {{ users(range: $r) {{'
            f" nodes {{ id {summary} }} }} }} }}",
            {"r": {"from": "2025-04-01T00:00:00Z", "to": "2025-06-01T00:00:00Z"}},
        )
        nodes = page["tenant"]["users"]["nodes"]
        assert [n["id"] for n in nodes] == ["u1", "u2"]
        assert nodes[0]["credits"] == {
            "total": "1.55",
            "stream": "0.3",
            "transcript": "1.25",
            "document": "0",
            "records": 3,
        }
        for node in nodes:
            direct = await gql.data(
                f'query($r: TimeRange, $u: ID!) {{ tenant(id: "t1") {{ user(id: $u) {{'
                f" {summary} }} }} }}",
                {
                    "r": {"from": "2025-04-01T00:00:00Z", "to": "2025-06-01T00:00:00Z"},
                    "u": node["id"],
                },
            )
            assert direct["tenant"]["user"]["credits"] == node["credits"]
        everyone = await gql.data(
            f'query($r: TimeRange) {{ tenant(id: "t1") {{ users(orderBy: ID_ASC) {{'
            f" nodes {{ id {summary} }} }} }} }}",
            {"r": None},
        )
        assert [
            n["credits"]["total"] for n in everyone["tenant"]["users"]["nodes"]
        ] == [
            "1.55",
            "0",
            "9",
        ]
