"""The BI views agree with GraphQL, work without the service, and suit a read-only role."""

from __future__ import annotations

import sqlite3
import uuid
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.engine import make_url

from service.db.session import Database
from tests.fixtures.app import GraphQLClient
from tests.fixtures.database import BACKEND
from tests.fixtures.seed import Usage, iso, midnight, seed

pytestmark = pytest.mark.asyncio

TENANT = """
query($t: ID!, $r: TimeRange!) {
  tenant(id: $t) {
    credits { total records }
    users(first: 10, orderBy: ID_ASC) { nodes { id credits { total } } }
    usage(range: $r, granularity: DAY) { start credits { total records } }
  }
}"""


@pytest_asyncio.fixture
async def seeded(gql: GraphQLClient) -> list[Usage]:
    return await seed(gql)


async def view_rows(db: Database, sql: str) -> list[dict[str, Any]]:
    async with db.read() as session:
        result = await session.execute(text(sql))
        return [dict(row._mapping) for row in result]


class TestViews:
    async def test_views_equal_graphql(
        self, db: Database, gql: GraphQLClient, seeded: list[Usage]
    ) -> None:
        today = midnight()
        records = await view_rows(
            db, "SELECT tenant_id, user_id, source, credits FROM usage_records_v"
        )
        assert len(records) == len(seeded)
        daily = await view_rows(
            db,
            "SELECT day, tenant_id, user_id, source, credits, records FROM daily_usage_v",
        )
        for tenant in ("t1", "t2"):
            range_ = {
                "from": iso(today - timedelta(days=5)),
                "to": iso(today + timedelta(days=1)),
            }
            data = (await gql.data(TENANT, {"t": tenant, "r": range_}))["tenant"]
            mine = [r for r in records if r["tenant_id"] == tenant]
            assert sum(Decimal(str(r["credits"])) for r in mine) == Decimal(
                data["credits"]["total"]
            )
            per_user: dict[str, Decimal] = defaultdict(Decimal)
            for row in mine:
                per_user[row["user_id"]] += Decimal(str(row["credits"]))
            assert per_user == {
                u["id"]: Decimal(u["credits"]["total"]) for u in data["users"]["nodes"]
            }
            per_day: dict[str, tuple[Decimal, int]] = {}
            for row in daily:
                if row["tenant_id"] != tenant:
                    continue
                day = str(row["day"])
                credits, count = per_day.get(day, (Decimal(0), 0))
                per_day[day] = (
                    credits + Decimal(str(row["credits"])),
                    count + row["records"],
                )
            assert per_day == {
                b["start"][:10]: (
                    Decimal(b["credits"]["total"]),
                    b["credits"]["records"],
                )
                for b in data["usage"]
                if b["credits"]["records"]
            }
        unattributed = [r for r in daily if r["tenant_id"] is None]
        assert [(r["source"], Decimal(str(r["credits"]))) for r in unattributed] == [
            ("STREAM", Decimal(7))
        ]

    async def test_exact_sums(self, db: Database, gql: GraphQLClient) -> None:
        await gql.data(
            "mutation($r: [UsageRecordInput!]!) { ingestUsage(records: $r) { accepted } }",
            {
                "r": [
                    {
                        "source": "DOCUMENT",
                        "interactionId": "i",
                        "externalId": f"d{n}",
                        "credits": credits,
                        "createdAt": iso(midnight()),
                    }
                    for n, credits in enumerate(
                        ["0.1", "0.1", "0.1", "999999999999.999999999"]
                    )
                ]
            },
        )
        rows = await view_rows(db, "SELECT credits, records FROM daily_usage_v")
        assert [(Decimal(str(r["credits"])), r["records"]) for r in rows] == [
            (Decimal("1000000000000.299999999"), 4)
        ]


@pytest.mark.skipif(BACKEND != "sqlite", reason="SQLite only")
async def test_sqlite_views_need_no_service_functions(
    database_url: str, seeded: list[Usage]
) -> None:
    path = make_url(database_url).database
    assert path is not None
    with sqlite3.connect(path) as plain:  # no credit_sum, no tz_trunc
        records = plain.execute(
            "SELECT external_id, credits FROM usage_records_v ORDER BY created_at"
        ).fetchall()
        daily = plain.execute(
            "SELECT credits FROM daily_usage_v WHERE tenant_id = 't1' AND source = 'DOCUMENT'"
        ).fetchall()
    assert records[0] == ("tr-a1", "0.100000000")
    assert daily == [("0.200000000",)]


@pytest.mark.skipif(BACKEND != "postgresql", reason="PostgreSQL only")
async def test_read_only_role_recipe(database_url: str, seeded: list[Usage]) -> None:
    """The README's recipe: the role reads the views and nothing else."""
    url = make_url(database_url)
    role = f"bi_reader_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    owner = await asyncpg.connect(dsn)
    try:
        for statement in (
            f"CREATE ROLE {role} LOGIN PASSWORD '{password}'",
            f'GRANT CONNECT ON DATABASE "{url.database}" TO {role}',
            f"GRANT USAGE ON SCHEMA public TO {role}",
            f"GRANT SELECT ON usage_records_v, daily_usage_v TO {role}",
            f"ALTER ROLE {role} SET default_transaction_read_only = on",
        ):
            await owner.execute(statement)
        bi_dsn = url.set(
            drivername="postgresql", username=role, password=password
        ).render_as_string(hide_password=False)
        bi = await asyncpg.connect(bi_dsn)
        try:
            total = await bi.fetchval(
                "SELECT sum(credits) FROM usage_records_v WHERE tenant_id = 't1'"
            )
            assert total == Decimal("1.75")
            assert await bi.fetchval("SELECT count(*) FROM daily_usage_v") > 0
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await bi.fetch("SELECT * FROM api_keys")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await bi.fetch("SELECT * FROM usage_records")
        finally:
            await bi.close()
    finally:
        await owner.execute(f"REVOKE ALL ON usage_records_v, daily_usage_v FROM {role}")
        await owner.execute(f'REVOKE ALL ON DATABASE "{url.database}" FROM {role}')
        await owner.execute(f"REVOKE ALL ON SCHEMA public FROM {role}")
        await owner.execute(f"DROP ROLE {role}")
        await owner.close()
