"""usage(range, granularity, timeZone) over HTTP: every bucket, DST, zones, edges."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio

from tests.fixtures.app import GraphQLClient
from tests.fixtures.seed import INGEST

pytestmark = pytest.mark.asyncio

REGISTER = """
mutation($i: ID!, $t: ID!, $u: ID!) {
  registerInteraction(input: {interactionId: $i, tenantId: $t, userId: $u,
                              createdAt: "2024-01-01T00:00:00Z"}) { id }
}"""
USAGE = """
query($r: TimeRange!, $g: Granularity!, $z: String!) {
  tenant(id: "t1") {
    usage(range: $r, granularity: $g, timeZone: $z) {
      start end credits { total stream transcript document records }
    }
    user(id: "u1") {
      usage(range: $r, granularity: $g, timeZone: $z) { start end credits { total } }
    }
  }
}"""
EMPTY = {"total": "0", "stream": "0", "transcript": "0", "document": "0", "records": 0}


@pytest_asyncio.fixture
async def ledger(gql: GraphQLClient) -> GraphQLClient:
    """Tenant t1 with users u1 (interaction i1) and u2 (interaction i2)."""
    await gql.data(REGISTER, {"i": "i1", "t": "t1", "u": "u1"})
    await gql.data(REGISTER, {"i": "i2", "t": "t1", "u": "u2"})
    return gql


async def record(
    gql: GraphQLClient, *items: tuple[str, str] | tuple[str, str, str]
) -> None:
    """Stream records as (createdAt, credits[, interactionId]); ids are numbered."""
    batch = [
        {
            "source": "STREAM",
            "interactionId": item[2] if len(item) == 3 else "i1",
            "externalId": f"s{n}",
            "credits": item[1],
            "createdAt": item[0],
        }
        for n, item in enumerate(items)
    ]
    result = await gql.data(INGEST, {"r": batch})
    assert result["ingestUsage"]["accepted"] == len(batch)


async def usage(
    gql: GraphQLClient, start: str, end: str, granularity: str, zone: str = "UTC"
) -> list[tuple[str, str, str]]:
    """Tenant buckets as (start, end, total); checks the user's line up with them."""
    variables = {"r": {"from": start, "to": end}, "g": granularity, "z": zone}
    tenant = (await gql.data(USAGE, variables))["tenant"]
    buckets = tenant["usage"]
    assert [(b["start"], b["end"]) for b in tenant["user"]["usage"]] == [
        (b["start"], b["end"]) for b in buckets
    ]
    for bucket in buckets:
        if bucket["credits"]["records"] == 0:
            assert bucket["credits"] == EMPTY
    return [(b["start"], b["end"], b["credits"]["total"]) for b in buckets]


class TestDays:
    async def test_every_day_listed_with_empty_ones_at_zero(
        self, ledger: GraphQLClient
    ) -> None:
        await record(
            ledger,
            ("2025-03-01T10:00:00Z", "0.1"),
            ("2025-03-01T23:59:59.999999Z", "0.2"),
            ("2025-03-03T00:00:00Z", "4"),
            ("2025-03-04T00:00:00Z", "99"),  # the range's end: excluded
        )
        assert await usage(
            ledger, "2025-03-01T00:00:00Z", "2025-03-04T00:00:00Z", "DAY"
        ) == [
            ("2025-03-01T00:00:00Z", "2025-03-02T00:00:00Z", "0.3"),
            ("2025-03-02T00:00:00Z", "2025-03-03T00:00:00Z", "0"),
            ("2025-03-03T00:00:00Z", "2025-03-04T00:00:00Z", "4"),
        ]

    async def test_a_record_on_an_edge_lands_in_the_later_bucket(
        self, ledger: GraphQLClient
    ) -> None:
        # Local midnight of 2025-03-30 in Copenhagen is 2025-03-29T23:00Z.
        await record(
            ledger,
            ("2025-03-29T22:59:59.999999Z", "1"),
            ("2025-03-29T23:00:00Z", "2"),
        )
        result = await usage(
            ledger,
            "2025-03-29T00:00:00+01:00",
            "2025-03-31T00:00:00+02:00",
            "DAY",
            "Europe/Copenhagen",
        )
        assert [total for _, _, total in result] == ["1", "2"]

    async def test_spring_forward_day_is_23_hours(self, ledger: GraphQLClient) -> None:
        await record(
            ledger,
            ("2025-03-30T21:59:59Z", "1"),  # 23:59:59 CEST on the 30th
            ("2025-03-30T22:00:00Z", "2"),  # midnight of the 31st
        )
        result = await usage(
            ledger,
            "2025-03-29T00:00:00+01:00",
            "2025-04-01T00:00:00+02:00",
            "DAY",
            "Europe/Copenhagen",
        )
        assert result == [
            ("2025-03-28T23:00:00Z", "2025-03-29T23:00:00Z", "0"),
            ("2025-03-29T23:00:00Z", "2025-03-30T22:00:00Z", "1"),
            ("2025-03-30T22:00:00Z", "2025-03-31T22:00:00Z", "2"),
        ]

    async def test_fall_back_day_is_25_hours(self, ledger: GraphQLClient) -> None:
        await record(
            ledger,
            ("2025-10-25T22:00:00Z", "1"),  # midnight of the 26th (CEST)
            ("2025-10-26T22:59:59Z", "2"),  # 23:59:59 CET on the 26th
            ("2025-10-26T23:00:00Z", "4"),  # midnight of the 27th
        )
        result = await usage(
            ledger,
            "2025-10-26T00:00:00+02:00",
            "2025-10-28T00:00:00+01:00",
            "DAY",
            "Europe/Copenhagen",
        )
        assert result == [
            ("2025-10-25T22:00:00Z", "2025-10-26T23:00:00Z", "3"),
            ("2025-10-26T23:00:00Z", "2025-10-27T23:00:00Z", "4"),
        ]

    async def test_kolkata_days_start_at_half_past(self, ledger: GraphQLClient) -> None:
        await record(
            ledger,
            ("2025-03-30T18:29:59Z", "1"),
            ("2025-03-30T18:30:00Z", "2"),
        )
        result = await usage(
            ledger,
            "2025-03-30T00:00:00+05:30",
            "2025-04-01T00:00:00+05:30",
            "DAY",
            "Asia/Kolkata",
        )
        assert result == [
            ("2025-03-29T18:30:00Z", "2025-03-30T18:30:00Z", "1"),
            ("2025-03-30T18:30:00Z", "2025-03-31T18:30:00Z", "2"),
        ]

    async def test_range_inside_buckets_counts_only_its_own_usage(
        self, ledger: GraphQLClient
    ) -> None:
        await record(
            ledger,
            ("2025-03-01T06:00:00Z", "1"),  # before the range, same day
            ("2025-03-01T13:00:00Z", "2"),
            ("2025-03-02T11:59:59Z", "4"),
            ("2025-03-02T12:00:00Z", "8"),  # at the range's end, same day
        )
        result = await usage(
            ledger, "2025-03-01T12:00:00Z", "2025-03-02T12:00:00Z", "DAY"
        )
        assert result == [
            ("2025-03-01T00:00:00Z", "2025-03-02T00:00:00Z", "2"),
            ("2025-03-02T00:00:00Z", "2025-03-03T00:00:00Z", "4"),
        ]

    async def test_an_empty_range_has_no_buckets(self, ledger: GraphQLClient) -> None:
        await record(ledger, ("2025-03-01T12:00:00Z", "1"))
        at = "2025-03-01T12:00:00Z"
        assert await usage(ledger, at, at, "DAY") == []


class TestHours:
    async def test_fall_back_day_has_25_hourly_buckets(
        self, ledger: GraphQLClient
    ) -> None:
        await record(
            ledger,
            ("2025-10-26T00:30:00Z", "1"),  # 02:30 CEST
            ("2025-10-26T01:30:00Z", "2"),  # 02:30 CET, an hour later
        )
        result = await usage(
            ledger,
            "2025-10-26T00:00:00+02:00",
            "2025-10-27T00:00:00+01:00",
            "HOUR",
            "Europe/Copenhagen",
        )
        assert len(result) == 25
        assert result[2] == ("2025-10-26T00:00:00Z", "2025-10-26T01:00:00Z", "1")
        assert result[3] == ("2025-10-26T01:00:00Z", "2025-10-26T02:00:00Z", "2")
        assert [total for _, _, total in result].count("0") == 23

    async def test_spring_forward_day_has_23_hourly_buckets(
        self, ledger: GraphQLClient
    ) -> None:
        result = await usage(
            ledger,
            "2025-03-30T00:00:00+01:00",
            "2025-03-31T00:00:00+02:00",
            "HOUR",
            "Europe/Copenhagen",
        )
        assert len(result) == 23
        assert result[0][0] == "2025-03-29T23:00:00Z"
        assert result[-1][1] == "2025-03-30T22:00:00Z"

    async def test_kolkata_hours_start_at_half_past_utc(
        self, ledger: GraphQLClient
    ) -> None:
        await record(
            ledger,
            ("2025-03-30T00:29:59Z", "1"),
            ("2025-03-30T00:30:00Z", "2"),
            ("2025-03-30T02:59:59Z", "4"),
        )
        result = await usage(
            ledger,
            "2025-03-30T00:00:00Z",
            "2025-03-30T03:00:00Z",
            "HOUR",
            "Asia/Kolkata",
        )
        assert result == [
            ("2025-03-29T23:30:00Z", "2025-03-30T00:30:00Z", "1"),
            ("2025-03-30T00:30:00Z", "2025-03-30T01:30:00Z", "2"),
            ("2025-03-30T01:30:00Z", "2025-03-30T02:30:00Z", "0"),
            ("2025-03-30T02:30:00Z", "2025-03-30T03:30:00Z", "4"),
        ]

    async def test_a_thousand_buckets_is_the_most(self, ledger: GraphQLClient) -> None:
        await record(ledger, ("2025-02-11T15:59:59Z", "1"))
        result = await usage(
            ledger, "2025-01-01T00:00:00Z", "2025-02-11T16:00:00Z", "HOUR"
        )
        assert len(result) == 1000
        assert result[-1] == ("2025-02-11T15:00:00Z", "2025-02-11T16:00:00Z", "1")

    async def test_lord_howe_half_hour_dst_shift(self, ledger: GraphQLClient) -> None:
        # 2025-04-06 02:00 +11:00 (15:00Z) goes back to 01:30 +10:30.
        await record(
            ledger,
            ("2025-04-05T14:59:59Z", "1"),  # 01:59:59 +11:00
            ("2025-04-05T15:10:00Z", "2"),  # 01:40 +10:30
            ("2025-04-05T15:30:00Z", "4"),  # 02:00 +10:30
        )
        result = await usage(
            ledger,
            "2025-04-05T14:00:00Z",
            "2025-04-05T16:00:00Z",
            "HOUR",
            "Australia/Lord_Howe",
        )
        assert result == [
            ("2025-04-05T14:00:00Z", "2025-04-05T15:00:00Z", "1"),
            ("2025-04-05T15:00:00Z", "2025-04-05T15:30:00Z", "2"),
            ("2025-04-05T15:30:00Z", "2025-04-05T16:30:00Z", "4"),
        ]


class TestLegacyZoneNames:
    async def test_cet_has_summer_time_on_both_databases(
        self, ledger: GraphQLClient
    ) -> None:
        # "CET" is an IANA zone with DST; PostgreSQL alone would read it as the
        # fixed +01:00 abbreviation.
        await record(
            ledger,
            ("2025-08-09T21:59:59Z", "1"),  # 23:59:59 CEST on the 9th
            ("2025-08-09T22:30:00Z", "2"),  # 00:30 CEST on the 10th
        )
        result = await usage(
            ledger,
            "2025-08-09T00:00:00+02:00",
            "2025-08-11T00:00:00+02:00",
            "DAY",
            "CET",
        )
        assert result == [
            ("2025-08-08T22:00:00Z", "2025-08-09T22:00:00Z", "1"),
            ("2025-08-09T22:00:00Z", "2025-08-10T22:00:00Z", "2"),
        ]


class TestWeeks:
    async def test_weeks_start_on_monday(self, ledger: GraphQLClient) -> None:
        await record(
            ledger,
            ("2025-03-02T23:59:59Z", "1"),  # Sunday
            ("2025-03-03T00:00:00Z", "2"),  # Monday
        )
        # 2025-03-01 is a Saturday.
        result = await usage(
            ledger, "2025-03-01T00:00:00Z", "2025-03-20T00:00:00Z", "WEEK"
        )
        assert result == [
            ("2025-02-24T00:00:00Z", "2025-03-03T00:00:00Z", "1"),
            ("2025-03-03T00:00:00Z", "2025-03-10T00:00:00Z", "2"),
            ("2025-03-10T00:00:00Z", "2025-03-17T00:00:00Z", "0"),
            ("2025-03-17T00:00:00Z", "2025-03-24T00:00:00Z", "0"),
        ]

    async def test_weeks_in_new_york_across_dst(self, ledger: GraphQLClient) -> None:
        await record(
            ledger,
            ("2025-03-10T03:59:59Z", "1"),  # Sunday 23:59:59 EDT
            ("2025-03-10T04:00:00Z", "2"),  # Monday 00:00 EDT
        )
        result = await usage(
            ledger,
            "2025-03-03T00:00:00-05:00",
            "2025-03-17T00:00:00-04:00",
            "WEEK",
            "America/New_York",
        )
        assert result == [
            ("2025-03-03T05:00:00Z", "2025-03-10T04:00:00Z", "1"),
            ("2025-03-10T04:00:00Z", "2025-03-17T04:00:00Z", "2"),
        ]

    async def test_weeks_in_copenhagen_start_sunday_evening_utc(
        self, ledger: GraphQLClient
    ) -> None:
        await record(ledger, ("2025-03-02T23:30:00Z", "1"))  # Monday 00:30 CET
        result = await usage(
            ledger,
            "2025-03-03T00:00:00+01:00",
            "2025-03-04T00:00:00+01:00",
            "WEEK",
            "Europe/Copenhagen",
        )
        assert result == [("2025-03-02T23:00:00Z", "2025-03-09T23:00:00Z", "1")]


class TestMonths:
    async def test_months_in_new_york(self, ledger: GraphQLClient) -> None:
        await record(
            ledger,
            ("2025-03-01T04:59:59Z", "1"),  # still February in New York
            ("2025-03-01T05:00:00Z", "2"),
            ("2025-04-01T03:59:59Z", "4"),  # March 31, 23:59:59 EDT
        )
        result = await usage(
            ledger,
            "2025-02-01T00:00:00-05:00",
            "2025-05-01T00:00:00-04:00",
            "MONTH",
            "America/New_York",
        )
        assert result == [
            ("2025-02-01T05:00:00Z", "2025-03-01T05:00:00Z", "1"),
            ("2025-03-01T05:00:00Z", "2025-04-01T04:00:00Z", "6"),
            ("2025-04-01T04:00:00Z", "2025-05-01T04:00:00Z", "0"),
        ]

    async def test_months_in_utc_kolkata_and_copenhagen(
        self, ledger: GraphQLClient
    ) -> None:
        await record(ledger, ("2025-02-28T18:30:00Z", "1"))
        assert await usage(
            ledger, "2025-02-01T00:00:00Z", "2025-04-01T00:00:00Z", "MONTH"
        ) == [
            ("2025-02-01T00:00:00Z", "2025-03-01T00:00:00Z", "1"),
            ("2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z", "0"),
        ]
        kolkata = await usage(
            ledger,
            "2025-02-01T00:00:00+05:30",
            "2025-04-01T00:00:00+05:30",
            "MONTH",
            "Asia/Kolkata",
        )
        assert kolkata == [
            ("2025-01-31T18:30:00Z", "2025-02-28T18:30:00Z", "0"),
            ("2025-02-28T18:30:00Z", "2025-03-31T18:30:00Z", "1"),
        ]
        copenhagen = await usage(
            ledger,
            "2025-02-01T00:00:00+01:00",
            "2025-04-01T00:00:00+02:00",
            "MONTH",
            "Europe/Copenhagen",
        )
        assert copenhagen == [
            ("2025-01-31T23:00:00Z", "2025-02-28T23:00:00Z", "1"),
            ("2025-02-28T23:00:00Z", "2025-03-31T22:00:00Z", "0"),
        ]


class TestOwners:
    async def test_users_and_tenants_have_their_own_buckets(
        self, ledger: GraphQLClient
    ) -> None:
        await ledger.data(REGISTER, {"i": "i3", "t": "t2", "u": "u1"})
        await record(
            ledger,
            ("2025-03-01T01:00:00Z", "1", "i1"),
            ("2025-03-01T02:00:00Z", "2", "i2"),
            ("2025-03-02T01:00:00Z", "4", "i2"),
            ("2025-03-01T03:00:00Z", "8", "i3"),
        )
        data = await ledger.data(
            """
            query($r: TimeRange!) {
              tenants(first: 5) { nodes { id
                usage(range: $r, granularity: DAY) { credits { total records } }
                users(first: 5, orderBy: ID_ASC) { nodes { id
                  usage(range: $r, granularity: DAY) { credits { total } } } } } }
            }""",
            {"r": {"from": "2025-03-01T00:00:00Z", "to": "2025-03-03T00:00:00Z"}},
        )
        tenants: list[dict[str, Any]] = data["tenants"]["nodes"]
        totals = {t["id"]: [b["credits"]["total"] for b in t["usage"]] for t in tenants}
        assert totals == {"t1": ["3", "4"], "t2": ["8", "0"]}
        users = {
            (t["id"], u["id"]): [b["credits"]["total"] for b in u["usage"]]
            for t in tenants
            for u in t["users"]["nodes"]
        }
        assert users == {
            ("t1", "u1"): ["1", "0"],
            ("t1", "u2"): ["2", "4"],
            ("t2", "u1"): ["8", "0"],
        }

    async def test_per_source_credits_in_a_bucket(self, ledger: GraphQLClient) -> None:
        at = "2025-03-01T12:00:00Z"
        batch = [
            {
                "source": s,
                "interactionId": "i1",
                "externalId": s,
                "credits": c,
                "createdAt": at,
            }
            for s, c in (("STREAM", "0.1"), ("TRANSCRIPT", "0.2"), ("DOCUMENT", "0.4"))
        ]
        await ledger.data(INGEST, {"r": batch})
        data = await ledger.data(
            USAGE,
            {
                "r": {"from": "2025-03-01T00:00:00Z", "to": "2025-03-02T00:00:00Z"},
                "g": "DAY",
                "z": "UTC",
            },
        )
        assert data["tenant"]["usage"][0]["credits"] == {
            "total": "0.7",
            "stream": "0.1",
            "transcript": "0.2",
            "document": "0.4",
            "records": 3,
        }
