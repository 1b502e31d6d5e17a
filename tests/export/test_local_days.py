"""One local day for GraphQL buckets and the daily export, in several zones across DST.

`usage(granularity: DAY, timeZone:)` and `/export/daily.csv?timeZone=` both
place records among the local midnights that service/db/timebuckets.py
computes (PostgreSQL by `bucket_start` over those edges, SQLite by the same
Python truncation): per local day, both give the same credits and record
counts, and those of each record's own local date.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio

from tests.fixtures.app import GraphQLClient, Server
from tests.fixtures.seed import INGEST, REGISTER

pytestmark = pytest.mark.asyncio

ZONES = (
    "Europe/Copenhagen",
    "America/New_York",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "UTC",
)
# 2025's DST changes of those zones (UTC): spring and autumn.
CHANGES = (
    datetime(2025, 3, 9, 7, tzinfo=UTC),  # New York
    datetime(2025, 3, 30, 1, tzinfo=UTC),  # Copenhagen
    datetime(2025, 4, 5, 15, tzinfo=UTC),  # Lord Howe (back 30 minutes)
    datetime(2025, 10, 4, 15, 30, tzinfo=UTC),  # Lord Howe
    datetime(2025, 10, 26, 1, tzinfo=UTC),  # Copenhagen
    datetime(2025, 11, 2, 6, tzinfo=UTC),  # New York
)
RANGE = {"from": "2025-03-01T00:00:00Z", "to": "2025-11-15T00:00:00Z"}
DAILY = """
query($r: TimeRange!, $z: String!) {
  tenant(id: "zones") { usage(range: $r, granularity: DAY, timeZone: $z) {
    start credits { total records } } }
}"""


def instants() -> list[datetime]:
    """Every 47 minutes from 36 hours before to 36 hours after each change."""
    found = []
    for change in CHANGES:
        at = change - timedelta(hours=36)
        while at < change + timedelta(hours=36):
            found.append(at)
            at += timedelta(minutes=47)
    return found


@pytest_asyncio.fixture
async def seeded(gql: GraphQLClient) -> list[tuple[datetime, Decimal]]:
    for user in ("a", "b"):
        await gql.data(
            REGISTER, {"i": f"zi-{user}", "t": "zones", "u": user, "at": None}
        )
    records = [(at, Decimal(n % 7 + 1) / 10) for n, at in enumerate(instants())]
    batch = [
        {
            "source": ("STREAM", "TRANSCRIPT", "DOCUMENT")[n % 3],
            "interactionId": f"zi-{'ab'[n % 2]}",
            "externalId": f"z-{n}",
            "credits": str(credits),
            "createdAt": at.isoformat(),
        }
        for n, (at, credits) in enumerate(records)
    ]
    assert (await gql.data(INGEST, {"r": batch}))["ingestUsage"]["accepted"] == len(
        batch
    )
    return records


@pytest_asyncio.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


@pytest.mark.parametrize("zone_name", ZONES)
async def test_buckets_and_daily_export_give_the_same_days(
    gql: GraphQLClient,
    http: httpx.AsyncClient,
    seeded: list[tuple[datetime, Decimal]],
    zone_name: str,
) -> None:
    tz = ZoneInfo(zone_name)
    expected: dict[str, tuple[Decimal, int]] = {}
    for at, credits in seeded:
        day = at.astimezone(tz).date().isoformat()
        total, count = expected.get(day, (Decimal(0), 0))
        expected[day] = (total + credits, count + 1)

    data = await gql.data(DAILY, {"r": RANGE, "z": zone_name})
    buckets = {
        datetime.fromisoformat(b["start"]).astimezone(tz).date().isoformat(): (
            Decimal(b["credits"]["total"]),
            b["credits"]["records"],
        )
        for b in data["tenant"]["usage"]
        if b["credits"]["records"]
    }

    response = await http.get(
        "/export/daily.csv",
        params={"tenant": "zones", "timeZone": zone_name},
        headers={"Authorization": f"Bearer {gql.key}"},
    )
    assert response.status_code == 200, response.text
    sums: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for row in csv.DictReader(io.StringIO(response.text)):
        sums[row["date"]][0] += Decimal(row["credits"])
        sums[row["date"]][1] += int(row["records"])
    exported = {day: (total, int(count)) for day, (total, count) in sums.items()}

    assert buckets == exported == expected
    # The DST days themselves are among them (23, 25 or 23.5 hours long).
    assert len(expected) >= 2 * len(CHANGES)
