"""CSV and NDJSON exports: columns, totals equal to GraphQL, filters and scope."""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from collections.abc import AsyncIterator, MutableMapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from starlette.requests import Request

from service.config import Settings
from service.db.models import UsageRecord
from service.db.session import Database
from service.export.queries import ExportFilter, daily_totals
from service.export.routes import Exports
from service.state import AppState
from tests.fixtures.app import (
    GraphQLClient,
    Server,
    make_key,
    start_server,
    stop_server,
)
from tests.fixtures.seed import Usage, iso, midnight, seed

pytestmark = pytest.mark.asyncio

COLUMNS = "interactionId,userId,tenantId,source,externalId,credits,createdAt"
TENANT_CREDITS = """
query($t: ID!, $r: TimeRange) {
  tenant(id: $t) { credits(range: $r) { total stream transcript document records } }
}"""
DAILY = """
query($t: ID!, $r: TimeRange!, $z: String!) {
  tenant(id: $t) { usage(range: $r, granularity: DAY, timeZone: $z) {
    start credits { total records } } }
}"""


@pytest_asyncio.fixture
async def seeded(gql: GraphQLClient) -> list[Usage]:
    return await seed(gql)


@pytest_asyncio.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


async def export(
    http: httpx.AsyncClient, path: str, key: str | None, **params: str
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return await http.get(path, params=params, headers=headers)


def rows(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


def summed(found: list[dict[str, str]]) -> dict[str, Any]:
    by_source: dict[str, Decimal] = defaultdict(Decimal)
    for row in found:
        by_source[row["source"].lower()] += Decimal(row["credits"])
    return {
        "total": sum(by_source.values(), Decimal(0)),
        **{s: by_source[s] for s in ("stream", "transcript", "document")},
        "records": len(found),
    }


def exact(credits: dict[str, Any]) -> dict[str, Any]:
    return {k: v if k == "records" else Decimal(v) for k, v in credits.items()}


class TestUsageExport:
    async def test_csv_columns_and_rows(
        self, http: httpx.AsyncClient, admin_key: str, seeded: list[Usage]
    ) -> None:
        response = await export(http, "/export/usage.csv", admin_key)
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert response.text.splitlines()[0] == COLUMNS
        found = rows(response)
        assert [r["externalId"] for r in found] == [u.external_id for u in seeded]
        first = found[0]
        assert first == {
            "interactionId": "int-a",
            "userId": "u1",
            "tenantId": "t1",
            "source": "TRANSCRIPT",
            "externalId": "tr-a1",
            "credits": "0.1",
            "createdAt": iso(seeded[0].created_at),
        }
        unregistered = next(r for r in found if r["interactionId"] == "int-z")
        assert (unregistered["tenantId"], unregistered["userId"]) == ("", "")

    @pytest.mark.parametrize(
        "window",
        [None, (-1, 0), (-2, -1), (-30, 30)],
        ids=["all", "yesterday", "day-before", "wide"],
    )
    async def test_totals_equal_graphql_totals(
        self,
        http: httpx.AsyncClient,
        gql: GraphQLClient,
        admin_key: str,
        seeded: list[Usage],
        window: tuple[int, int] | None,
    ) -> None:
        today = midnight()
        params: dict[str, str] = {}
        range_: dict[str, str] | None = None
        if window is not None:
            params = {
                "from": iso(today + timedelta(days=window[0])),
                "to": iso(today + timedelta(days=window[1])),
            }
            range_ = {"from": params["from"], "to": params["to"]}
        for tenant in ("t1", "t2"):
            data = await gql.data(TENANT_CREDITS, {"t": tenant, "r": range_})
            expected = exact(data["tenant"]["credits"])
            csv_rows = rows(
                await export(
                    http, "/export/usage.csv", admin_key, tenant=tenant, **params
                )
            )
            assert summed(csv_rows) == expected
            response = await export(
                http, "/export/usage.ndjson", admin_key, tenant=tenant, **params
            )
            assert response.headers["content-type"] == "application/x-ndjson"
            lines = [json.loads(line) for line in response.text.splitlines()]
            assert [list(line) for line in lines] == [COLUMNS.split(",")] * len(lines)
            assert summed(lines) == expected
            assert lines == [dict(r) for r in csv_rows]

    async def test_filters(
        self, http: httpx.AsyncClient, admin_key: str, seeded: list[Usage]
    ) -> None:
        async def ids(**params: str) -> list[str]:
            found = rows(await export(http, "/export/usage.csv", admin_key, **params))
            return [r["externalId"] for r in found]

        assert await ids(user="u2") == ["tr-b1", "tr-b2"]
        assert await ids(tenant="t1", user="u1", source="stream") == ["st-a1"]
        assert await ids(interaction="int-z") == ["st-z1"]
        assert await ids(source="DOCUMENT") == ["doc-a1", "doc-c1"]
        assert await ids(**{"from": iso(midnight())}) == ["tr-b2"]
        assert await ids(to=iso(midnight() - timedelta(days=1))) == [
            "tr-a1",
            "doc-a1",
        ]

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"source": "FAX"}, "source"),
            ({"from": "yesterday"}, "from"),
            ({"from": "2025-01-01T00:00:00"}, "from"),
            ({"tenantId": "t1"}, "tenantId"),
            ({"tenant": " t1"}, "tenant"),
        ],
    )
    async def test_bad_parameters_are_400(
        self,
        http: httpx.AsyncClient,
        admin_key: str,
        params: dict[str, str],
        field: str,
    ) -> None:
        response = await export(http, "/export/usage.csv", admin_key, **params)
        assert response.status_code == 400
        error = response.json()["errors"][0]
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}

    async def test_inverted_range_is_400(
        self, http: httpx.AsyncClient, admin_key: str
    ) -> None:
        response = await export(
            http,
            "/export/usage.csv",
            admin_key,
            **{"from": "2025-02-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"},
        )
        assert response.status_code == 400


class TestExportAccess:
    @pytest.mark.parametrize(
        "path", ["/export/usage.csv", "/export/usage.ndjson", "/export/daily.csv"]
    )
    async def test_no_key_or_a_bad_key_is_401(
        self, http: httpx.AsyncClient, path: str
    ) -> None:
        for key in (None, "cul_nope_nope"):
            response = await export(http, path, key)
            assert response.status_code == 401
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.json()["errors"][0]["extensions"]["code"] == (
                "UNAUTHENTICATED"
            )

    async def test_ingest_key_is_403(
        self, http: httpx.AsyncClient, db: Database
    ) -> None:
        key = await make_key(db, "ingest")
        response = await export(http, "/export/usage.csv", key)
        assert response.status_code == 403
        assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"

    async def test_tenant_key_sees_its_tenant_only(
        self, http: httpx.AsyncClient, db: Database, seeded: list[Usage]
    ) -> None:
        key = await make_key(db, "reader", "t1")
        found = rows(await export(http, "/export/usage.csv", key))
        assert {r["tenantId"] for r in found} == {"t1"}
        assert len(found) == sum(1 for u in seeded if u.tenant == "t1")
        assert rows(await export(http, "/export/usage.csv", key, tenant="t1")) == found
        daily = rows(await export(http, "/export/daily.csv", key))
        assert {r["tenantId"] for r in daily} == {"t1"}
        for path in ("/export/usage.csv", "/export/daily.csv"):
            response = await export(http, path, key, tenant="t2")
            assert response.status_code == 403
        by_interaction = await export(
            http, "/export/usage.csv", key, interaction="int-c"
        )
        assert rows(by_interaction) == []


class TestDailyExport:
    @pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
    async def test_days_equal_graphql_buckets(
        self,
        http: httpx.AsyncClient,
        gql: GraphQLClient,
        admin_key: str,
        seeded: list[Usage],
        zone: str,
    ) -> None:
        response = await export(
            http, "/export/daily.csv", admin_key, tenant="t1", timeZone=zone
        )
        found = rows(response)
        assert list(found[0]) == [
            "date",
            "tenantId",
            "userId",
            "source",
            "credits",
            "records",
        ]
        per_day: dict[str, tuple[Decimal, int]] = {}
        for row in found:
            credits, count = per_day.get(row["date"], (Decimal(0), 0))
            per_day[row["date"]] = (
                credits + Decimal(row["credits"]),
                count + int(row["records"]),
            )
        today = midnight()
        range_ = {
            "from": iso(today - timedelta(days=4)),
            "to": iso(today + timedelta(days=2)),
        }
        data = await gql.data(DAILY, {"t": "t1", "r": range_, "z": zone})
        tz = ZoneInfo(zone)
        expected = {
            datetime.fromisoformat(bucket["start"]).astimezone(tz).date().isoformat(): (
                Decimal(bucket["credits"]["total"]),
                bucket["credits"]["records"],
            )
            for bucket in data["tenant"]["usage"]
            if bucket["credits"]["records"]
        }
        assert per_day == expected
        assert len(per_day) >= 2

    async def test_unknown_zone_is_400(
        self, http: httpx.AsyncClient, admin_key: str
    ) -> None:
        response = await export(
            http, "/export/daily.csv", admin_key, timeZone="Mars/Base"
        )
        assert response.status_code == 400
        assert response.json()["errors"][0]["extensions"]["field"] == "timeZone"


class TestExportLimits:
    async def test_rate_limit_is_429(
        self, server: Server, database_url: str, admin_key: str
    ) -> None:
        settings = Settings(database_url=database_url, rate_limit_per_minute=2)
        uv, task, url = await start_server(settings)
        try:
            async with httpx.AsyncClient(base_url=url) as http:
                statuses = [
                    (await export(http, "/export/usage.csv", admin_key)).status_code
                    for _ in range(3)
                ]
                limited = await export(http, "/export/usage.csv", admin_key)
        finally:
            await stop_server(uv, task)
        assert statuses == [200, 200, 429]
        assert int(limited.headers["retry-after"]) >= 1

    async def test_concurrent_exports_are_capped(
        self, server: Server, db: Database, admin_key: str
    ) -> None:
        state = AppState(server.settings, db=db)
        exports = Exports(state, max_concurrent=1)
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/export/usage.csv",
            "query_string": b"",
            "headers": [(b"authorization", f"Bearer {admin_key}".encode())],
        }
        first = await exports.usage_csv(Request(scope))
        busy = await exports.usage_csv(Request(scope))
        assert (first.status_code, busy.status_code) == (200, 429)
        sent: list[MutableMapping[str, Any]] = []

        async def send(message: MutableMapping[str, Any]) -> None:
            sent.append(message)

        async def receive() -> dict[str, Any]:
            return {"type": "http.disconnect"}

        await first({**scope, "asgi": {"spec_version": "2.4"}}, receive, send)
        assert sent[-1] == {
            "type": "http.response.body",
            "body": b"",
            "more_body": False,
        }
        again = await exports.usage_csv(Request(scope))
        assert again.status_code == 200


@pytest.mark.asyncio
async def test_daily_export_days_follow_dst_in_zones_postgresql_abbreviates(
    db: Database,
) -> None:
    """CET has DST; PostgreSQL alone would read 'CET' as a fixed +01:00."""
    summer = datetime(2025, 7, 1, 22, 30, tzinfo=UTC)  # 00:30 on 2 July in CET (+02:00)
    async with db.write() as session:
        session.add(
            UsageRecord(
                source="STREAM",
                external_id="cet-1",
                interaction_id="i-cet",
                credits=Decimal(1),
                created_at=summer,
            )
        )
    async with db.read() as session:
        statement = await daily_totals(ExportFilter(), "CET")(session)
        day = (await session.execute(statement)).one().day
    assert day == datetime(2025, 7, 1, 22, 0, tzinfo=UTC)  # local midnight of 2 July
