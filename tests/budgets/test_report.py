"""GET /export/budgets.csv: a row per budget and period, same scope as exports."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from service.db.session import Database
from tests.budgets.ops import set_budget
from tests.budgets.test_budgets import month_start, usage
from tests.fixtures.app import GraphQLClient, Server, make_key
from tests.fixtures.seed import iso

pytestmark = pytest.mark.asyncio

HEADER = (
    "tenantId,userId,period,periodStart,periodEnd,limit,used,remaining,"
    "percentUsed,thresholdsCrossed"
)


async def report(server: Server, key: str, **params: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        return await http.get(
            "/export/budgets.csv",
            params=params,
            headers={"Authorization": f"Bearer {key}"},
        )


async def test_rows_per_budget_and_period(
    gql: GraphQLClient, server: Server, admin_key: str, db: Database
) -> None:
    now = datetime.now(UTC)
    start = month_start(now)
    before = month_start(start - timedelta(days=1))
    await usage(
        gql,
        "i-1",
        "t1",
        "u1",
        ("a", "40", start + timedelta(seconds=1)),
        ("b", "6", before + timedelta(days=3)),
    )
    await usage(gql, "i-2", "t2", "u2", ("c", "1", start + timedelta(seconds=1)))
    await set_budget(
        gql, tenantId="t1", period="MONTH", limit="50", thresholds=[10, 80, 100]
    )
    await set_budget(gql, tenantId="t1", userId="u1", period="MONTH", limit="20")
    await set_budget(gql, tenantId="t2", period="MONTH", limit="10")
    response = await report(
        server, admin_key, tenant="t1", **{"from": iso(before), "to": iso(now)}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.splitlines()
    assert lines[0] == HEADER
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["userId"], r["periodStart"]) for r in rows] == [
        ("", iso(before)),
        ("", iso(start)),
        ("u1", iso(before)),
        ("u1", iso(start)),
    ]
    tenant_now = rows[1]
    assert tenant_now["used"] == "40"
    assert tenant_now["remaining"] == "10"
    assert tenant_now["percentUsed"] == "80"
    assert tenant_now["thresholdsCrossed"] == "10;80"
    assert rows[0]["used"] == "6"
    assert rows[0]["thresholdsCrossed"] == "10"
    assert rows[3]["remaining"] == "-20"
    assert rows[3]["thresholdsCrossed"] == "50;80;100"
    # without tenant an unbound key gets every tenant; no range: the current period
    every = list(csv.DictReader(io.StringIO((await report(server, admin_key)).text)))
    assert [(r["tenantId"], r["userId"]) for r in every] == [
        ("t1", ""),
        ("t1", "u1"),
        ("t2", ""),
    ]
    assert {r["periodStart"] for r in every} == {iso(start)}
    # scope: a bound key sees its tenant only, 403 for another; ingest 403; no key 401
    bound = await make_key(db, "reader", "t2")
    mine = list(csv.DictReader(io.StringIO((await report(server, bound)).text)))
    assert [r["tenantId"] for r in mine] == ["t2"]
    assert (await report(server, bound, tenant="t1")).status_code == 403
    assert (await report(server, await make_key(db, "ingest"))).status_code == 403
    assert (await report(server, "nope")).status_code == 401
    assert (await report(server, admin_key, bogus="1")).status_code == 400
    assert (
        await report(server, admin_key, **{"from": iso(now), "to": iso(before)})
    ).status_code == 400
