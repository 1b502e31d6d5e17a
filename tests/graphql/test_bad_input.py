"""Bad input is BAD_USER_INPUT naming the field, and writes nothing.

Unexpected failures are INTERNAL with a request id, and nothing else reaches
the client.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text

from service.db.session import Database
from tests.fixtures.app import GraphQLClient
from tests.fixtures.operations import REGISTER_INPUT as REGISTER
from tests.fixtures.seed import INGEST

pytestmark = pytest.mark.asyncio

TRANSCRIPT = """
mutation($in: TranscriptUsageInput!) { recordTranscriptUsage(input: $in) { id } }
"""
DOCUMENT = """
mutation($in: DocumentUsageInput!) { recordDocumentUsage(input: $in) { id } }
"""
STREAM = "mutation($in: StreamUsageInput!) { recordStreamUsage(input: $in) { id } }"
STORED = """
{ tenants { totalCount }
  tenant(id: "t1") { credits { total records } } }
"""
LONG_ID = "x" * 129


def bad_input(body: dict[str, Any], field: str) -> str:
    """The message of the only error, which must be BAD_USER_INPUT naming `field`."""
    assert body.get("errors"), body
    assert len(body["errors"]) == 1, body
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert field in error["message"], error
    message: str = error["message"]
    return message


async def stored(gql: GraphQLClient) -> dict[str, Any]:
    """How many tenants exist and what t1 holds."""
    data = await gql.data(STORED)
    return {
        "tenants": data["tenants"]["totalCount"],
        "t1": data["tenant"]["credits"] if data["tenant"] else None,
    }


@pytest_asyncio.fixture
async def registered(gql: GraphQLClient) -> GraphQLClient:
    """Interaction i1 of t1/u1 registered, no usage yet."""
    await gql.data(
        REGISTER, {"in": {"interactionId": "i1", "tenantId": "t1", "userId": "u1"}}
    )
    return gql


NOTHING = {"tenants": 1, "t1": {"total": "0", "records": 0}}

BAD_CREDITS = [
    pytest.param("-0.1", "negative", id="negative"),
    pytest.param(-1, "negative", id="negative-number"),
    pytest.param("NaN", "finite", id="nan"),
    pytest.param("sNaN", "finite", id="signaling-nan"),
    pytest.param("Infinity", "finite", id="infinity"),
    pytest.param("-Infinity", "finite", id="minus-infinity"),
    pytest.param("abc", "decimal", id="unparseable"),
    pytest.param("", "decimal", id="empty"),
    pytest.param("1,5", "decimal", id="comma"),
    pytest.param("0.0000000001", "decimal places", id="ten-decimals"),
    pytest.param("1.0000000001", "decimal places", id="ten-decimals-above-one"),
    pytest.param("1000000000000", "integer digits", id="thirteen-digits"),
    pytest.param("1e12", "integer digits", id="exponent-thirteen-digits"),
    pytest.param("1E+100000", "integer digits", id="huge-exponent"),
]


class TestCredits:
    @pytest.mark.parametrize(("credits", "reason"), BAD_CREDITS)
    async def test_record_transcript(
        self, registered: GraphQLClient, credits: Any, reason: str
    ) -> None:
        body = await registered(
            TRANSCRIPT,
            {
                "in": {
                    "interactionId": "i1",
                    "transcriptId": "x1",
                    "creditsConsumed": credits,
                }
            },
        )
        assert reason in bad_input(body, "creditsConsumed")
        assert await stored(registered) == NOTHING

    @pytest.mark.parametrize(
        "credits", ["-0.1", "NaN", "Infinity", "abc", "0.0000000001", "1000000000000"]
    )
    async def test_record_stream_and_document(
        self, registered: GraphQLClient, credits: str
    ) -> None:
        body = await registered(
            STREAM,
            {"in": {"interactionId": "i1", "streamId": "s1", "credits": credits}},
        )
        bad_input(body, "credits")
        body = await registered(
            DOCUMENT,
            {
                "in": {
                    "interactionId": "i1",
                    "documentId": "d1",
                    "creditsConsumed": credits,
                }
            },
        )
        bad_input(body, "creditsConsumed")
        assert await stored(registered) == NOTHING

    @pytest.mark.parametrize(("credits", "reason"), BAD_CREDITS[:6] + BAD_CREDITS[9:])
    async def test_batch_names_the_index(
        self, registered: GraphQLClient, credits: Any, reason: str
    ) -> None:
        records = [
            {
                "source": "STREAM",
                "interactionId": "i1",
                "externalId": "ok",
                "credits": "1",
            },
            {
                "source": "STREAM",
                "interactionId": "i1",
                "externalId": "bad",
                "credits": credits,
            },
        ]
        body = await registered(INGEST, {"r": records})
        assert reason in bad_input(body, "records[1].credits")
        assert await stored(registered) == NOTHING

    async def test_unparseable_credits_in_a_batch_name_the_index(
        self, registered: GraphQLClient
    ) -> None:
        records = [
            {
                "source": "STREAM",
                "interactionId": "i1",
                "externalId": "ok",
                "credits": "1",
            },
            {
                "source": "STREAM",
                "interactionId": "i1",
                "externalId": "bad",
                "credits": "abc",
            },
        ]
        body = await registered(INGEST, {"r": records})
        bad_input(body, "[1].credits")
        assert await stored(registered) == NOTHING

    @pytest.mark.parametrize(
        ("credits", "shown"),
        [
            ("999999999999.999999999", "999999999999.999999999"),
            ("0.000000001", "0.000000001"),
            ("0", "0"),
            ("-0", "0"),
            (0.1, "0.1"),
            ("1.5000000000", "1.5"),
        ],
    )
    async def test_values_at_the_limits_are_accepted(
        self, registered: GraphQLClient, credits: Any, shown: str
    ) -> None:
        await registered.data(
            TRANSCRIPT,
            {
                "in": {
                    "interactionId": "i1",
                    "transcriptId": "x1",
                    "creditsConsumed": credits,
                }
            },
        )
        assert await stored(registered) == {
            "tenants": 1,
            "t1": {"total": shown, "records": 1},
        }


class TestIds:
    @pytest.mark.parametrize("field", ["interactionId", "tenantId", "userId"])
    @pytest.mark.parametrize(
        ("value", "reason"),
        [("", "empty"), ("   ", "empty"), (LONG_ID, "128"), (" padded", "white space")],
    )
    async def test_register_interaction(
        self, gql: GraphQLClient, field: str, value: str, reason: str
    ) -> None:
        ids = {"interactionId": "i1", "tenantId": "t1", "userId": "u1", field: value}
        body = await gql(REGISTER, {"in": ids})
        assert reason in bad_input(body, field)
        assert (await stored(gql))["tenants"] == 0
        assert (await gql.data('{ interaction(id: "i1") { id } }'))[
            "interaction"
        ] is None

    @pytest.mark.parametrize(
        ("query", "field", "values"),
        [
            (TRANSCRIPT, "transcriptId", {"creditsConsumed": "1"}),
            (DOCUMENT, "documentId", {"creditsConsumed": "1"}),
            (STREAM, "streamId", {"credits": "1"}),
        ],
    )
    @pytest.mark.parametrize("value", ["", LONG_ID])
    async def test_record_usage(
        self,
        registered: GraphQLClient,
        query: str,
        field: str,
        values: dict[str, str],
        value: str,
    ) -> None:
        for inputs in (
            {field: value, "interactionId": "i1"},
            {field: "ok", "interactionId": value},
        ):
            body = await registered(query, {"in": {**values, **inputs}})
            bad_input(body, field if inputs[field] == value else "interactionId")
        assert await stored(registered) == NOTHING

    @pytest.mark.parametrize("field", ["interactionId", "externalId"])
    @pytest.mark.parametrize("value", ["", LONG_ID])
    async def test_batch(
        self, registered: GraphQLClient, field: str, value: str
    ) -> None:
        good = {
            "source": "DOCUMENT",
            "interactionId": "i1",
            "externalId": "d",
            "credits": "1",
        }
        body = await registered(
            INGEST, {"r": [good, {**good, "externalId": "e", field: value}]}
        )
        bad_input(body, f"records[1].{field}")
        assert await stored(registered) == NOTHING

    async def test_ids_of_128_characters_are_accepted(self, gql: GraphQLClient) -> None:
        longest = "y" * 128
        await gql.data(
            REGISTER,
            {"in": {"interactionId": longest, "tenantId": longest, "userId": longest}},
        )
        await gql.data(
            TRANSCRIPT,
            {
                "in": {
                    "interactionId": longest,
                    "transcriptId": longest,
                    "creditsConsumed": "1",
                }
            },
        )
        data = await gql.data(
            "query($i: ID!) { interaction(id: $i) { tenant { id } credits { total } } }",
            {"i": longest},
        )
        assert data["interaction"] == {
            "tenant": {"id": longest},
            "credits": {"total": "1"},
        }


BAD_DATES = [
    pytest.param("yesterday", "ISO-8601", id="words"),
    pytest.param("2025-13-01T00:00:00Z", "ISO-8601", id="month-13"),
    pytest.param("2025-02-30T00:00:00Z", "ISO-8601", id="february-30"),
    pytest.param("", "ISO-8601", id="empty"),
    pytest.param(1743292800, "ISO-8601", id="epoch-number"),
    # Refused rather than read as UTC: billing data read in the wrong zone is wrong
    # without anyone noticing (see scalars.py and the DateTime description).
    pytest.param("2025-03-30T10:00:00", "offset", id="no-offset"),
    pytest.param("2025-03-30", "offset", id="date-only"),
    pytest.param("0001-01-01T00:00:00+01:00", "range", id="before-year-1-in-utc"),
]


class TestDates:
    @pytest.mark.parametrize(("value", "reason"), BAD_DATES)
    async def test_created_at(
        self, registered: GraphQLClient, value: Any, reason: str
    ) -> None:
        body = await registered(
            TRANSCRIPT,
            {
                "in": {
                    "interactionId": "i1",
                    "transcriptId": "x1",
                    "creditsConsumed": "1",
                    "createdAt": value,
                }
            },
        )
        assert reason in bad_input(body, "createdAt")
        body = await registered(
            REGISTER,
            {
                "in": {
                    "interactionId": "i2",
                    "tenantId": "t2",
                    "userId": "u",
                    "createdAt": value,
                }
            },
        )
        bad_input(body, "createdAt")
        assert await stored(registered) == NOTHING

    @pytest.mark.parametrize(("value", "reason"), BAD_DATES)
    async def test_range(
        self, registered: GraphQLClient, value: Any, reason: str
    ) -> None:
        query = (
            'query($r: TimeRange) { tenant(id: "t1") { credits(range: $r) { total } } }'
        )
        body = await registered(query, {"r": {"from": value}})
        assert reason in bad_input(body, "from")
        body = await registered(query, {"r": {"to": value}})
        bad_input(body, "to")

    async def test_a_literal_without_offset_is_refused(
        self, registered: GraphQLClient
    ) -> None:
        body = await registered(
            'mutation { recordTranscriptUsage(input: {interactionId: "i1", transcriptId: "x",'
            ' creditsConsumed: "1", createdAt: "2025-03-30T10:00:00"}) { id } }'
        )
        assert "offset" in bad_input(body, "DateTime")
        assert await stored(registered) == NOTHING

    async def test_a_literal_past_year_one_in_utc_is_bad_input(
        self, registered: GraphQLClient
    ) -> None:
        body = await registered(
            '{ tenant(id: "t1") { credits(range: {from: "0001-01-01T00:00:00+01:00"})'
            " { total } } }"
        )
        bad_input(body, "DateTime")


USAGE = """
query($r: TimeRange!, $g: Granularity!, $z: String!) {
  tenant(id: "t1") { usage(range: $r, granularity: $g, timeZone: $z) { start } }
}"""
DAY = {"from": "2025-03-01T00:00:00Z", "to": "2025-03-02T00:00:00Z"}


class TestReadArguments:
    @pytest.mark.parametrize(
        "zone",
        [
            "Mars/Olympus",
            "",
            "utc ",
            "Europe/Copenhagen ",
            "../../etc/passwd",
            "localtime",
        ],
    )
    async def test_unknown_time_zone(
        self, registered: GraphQLClient, zone: str
    ) -> None:
        body = await registered(USAGE, {"r": DAY, "g": "DAY", "z": zone})
        assert "unknown time zone" in bad_input(body, "timeZone")

    @pytest.mark.parametrize(
        "field",
        [
            "credits(range: $r) { total }",
            "users(range: $r) { totalCount }",
            "interactions(range: $r) { totalCount }",
            'user(id: "u1") { credits(range: $r) { total } }',
            "usage(range: $r, granularity: DAY) { start }",
        ],
    )
    async def test_from_after_to(self, registered: GraphQLClient, field: str) -> None:
        body = await registered(
            f'query($r: TimeRange!) {{ tenant(id: "t1") {{ {field} }} }}',
            {"r": {"from": "2025-03-02T00:00:00Z", "to": "2025-03-01T23:59:59Z"}},
        )
        assert "after" in bad_input(body, "range")

    @pytest.mark.parametrize(
        "window",
        [{"from": "2025-03-01T00:00:00Z"}, {"to": "2025-03-01T00:00:00Z"}, {}],
    )
    async def test_usage_needs_both_ends(
        self, registered: GraphQLClient, window: dict[str, str]
    ) -> None:
        body = await registered(USAGE, {"r": window, "g": "DAY", "z": "UTC"})
        assert "from and to" in bad_input(body, "range")

    @pytest.mark.parametrize(
        ("granularity", "end"),
        [("HOUR", "2025-02-11T16:00:01Z"), ("DAY", "2027-09-28T00:00:01Z")],
    )
    async def test_more_than_a_thousand_buckets(
        self, registered: GraphQLClient, granularity: str, end: str
    ) -> None:
        window = {"from": "2025-01-01T00:00:00Z", "to": end}
        body = await registered(USAGE, {"r": window, "g": granularity, "z": "UTC"})
        assert "1000 buckets" in bad_input(body, "range")

    async def test_buckets_past_year_9999(self, registered: GraphQLClient) -> None:
        window = {"from": "9999-12-01T00:00:00Z", "to": "9999-12-31T00:00:00Z"}
        body = await registered(USAGE, {"r": window, "g": "MONTH", "z": "UTC"})
        assert "supported dates" in bad_input(body, "range")

    @pytest.mark.parametrize(
        "field",
        [
            "tenants(first: $n) { totalCount }",
            'tenant(id: "t1") { users(first: $n) { totalCount } }',
            'tenant(id: "t1") { interactions(first: $n) { totalCount } }',
            'tenant(id: "t1") { user(id: "u1") { interactions(first: $n) { totalCount } } }',
        ],
    )
    @pytest.mark.parametrize("first", [101, -1])
    async def test_first_out_of_bounds(
        self, registered: GraphQLClient, field: str, first: int
    ) -> None:
        body = await registered(f"query($n: Int!) {{ {field} }}", {"n": first})
        assert "between 0 and 100" in bad_input(body, "first")

    @pytest.mark.parametrize(
        "cursor",
        [
            "garbage",
            "",
            "%%%",
            base64.urlsafe_b64encode(b"offset:-1").decode(),
            base64.urlsafe_b64encode(b"offset: 1").decode(),
            base64.urlsafe_b64encode(b"offset:1_0").decode(),
            base64.urlsafe_b64encode(b"hello").decode(),
            base64.urlsafe_b64encode(b"offset:99999999999999999999999").decode(),
            base64.urlsafe_b64encode(b"offset:9223372036854775807").decode(),
            base64.urlsafe_b64encode(b"offset:" + b"9" * 5000).decode(),
            base64.urlsafe_b64encode("offset:\u0663".encode()).decode(),
        ],
    )
    @pytest.mark.parametrize(
        "field",
        [
            "tenants(after: $a) { totalCount }",
            'tenant(id: "t1") { users(after: $a) { totalCount } }',
            'tenant(id: "t1") { interactions(after: $a) { totalCount } }',
        ],
    )
    async def test_bad_cursor(
        self, registered: GraphQLClient, cursor: str, field: str
    ) -> None:
        body = await registered(f"query($a: String) {{ {field} }}", {"a": cursor})
        assert "cursor" in bad_input(body, "after")


@pytest_asyncio.fixture
async def missing_table(db: Database) -> AsyncIterator[None]:
    """usage_records renamed away for the test: the database is broken underneath."""
    async with db.write() as session:
        await session.execute(
            text("ALTER TABLE usage_records RENAME TO usage_records_away")
        )
    try:
        yield
    finally:
        async with db.write() as session:
            await session.execute(
                text("ALTER TABLE usage_records_away RENAME TO usage_records")
            )


class TestUnexpectedFailure:
    async def test_internal_with_request_id_and_no_details(
        self,
        registered: GraphQLClient,
        missing_table: None,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        caplog.set_level(logging.ERROR, logger="service.graphql")
        # records reads usage_records itself (credits read a rollup).
        response = await registered.post(
            'query { interaction(id: "i1") { records { id } } }',
        )
        body = response.json()
        [error] = body["errors"]
        request_id = response.headers["x-request-id"]
        assert error["extensions"] == {"code": "INTERNAL", "requestId": request_id}
        assert request_id in error["message"]
        raw = response.text.lower()
        for secret in (
            "usage_records",
            "select",
            "traceback",
            "sqlalchemy",
            "sqlite",
            "asyncpg",
            'File "',
        ):
            assert secret.lower() not in raw, secret
        # The details are in the server log.
        [logged] = [r for r in caplog.records if r.name == "service.graphql"]
        assert logged.exc_info is not None
        assert "usage_records" in str(logged.exc_info[1])
