"""A nested selection costs the same number of SQL statements for 10 or 1,000 rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, insert, text
from sqlalchemy.engine import Engine

from service.db.models import Interaction, Tenant, UsageRecord, User
from service.db.session import Database
from service.usage import rollups
from tests.fixtures.app import GraphQLClient

pytestmark = pytest.mark.asyncio

NESTED = """
query($r: TimeRange) {
  tenants(first: 10) {
    totalCount
    nodes {
      id
      credits(range: $r) { total records }
      users(first: 10, range: $r) {
        totalCount
        nodes {
          id
          credits(range: $r) { total stream transcript document records }
          interactions(first: 10, range: $r) {
            totalCount
            nodes {
              id
              user { id }
              credits(range: $r) { total records }
              records { source credits interaction { id } }
            }
          }
        }
      }
    }
  }
}"""
START = datetime(2025, 3, 1, tzinfo=UTC)


async def seed(db: Database, tenants: int, users: int, interactions: int) -> None:
    """tenants x users x interactions interactions, each with one usage record."""
    rows: dict[type[Any], list[dict[str, Any]]] = {
        Tenant: [],
        User: [],
        Interaction: [],
        UsageRecord: [],
    }
    for t in range(tenants):
        tenant = f"t{t:02d}"
        rows[Tenant].append({"id": tenant, "created_at": START})
        for u in range(users):
            user = f"u{u:02d}"
            rows[User].append({"tenant_id": tenant, "id": user, "created_at": START})
            for i in range(interactions):
                interaction = f"{tenant}-{user}-i{i:02d}"
                at = START + timedelta(minutes=t * 1000 + u * 10 + i)
                rows[Interaction].append(
                    {
                        "id": interaction,
                        "tenant_id": tenant,
                        "user_id": user,
                        "created_at": at,
                        "updated_at": at,
                        "last_usage_at": at,
                    }
                )
                rows[UsageRecord].append(
                    {
                        "id": uuid.uuid4(),
                        "source": "STREAM",
                        "external_id": f"s-{interaction}",
                        "interaction_id": interaction,
                        "tenant_id": tenant,
                        "user_id": user,
                        "credits": Decimal("0.1"),
                        "created_at": at,
                        "received_at": at,
                    }
                )
    async with db.write() as session:
        for model, values in rows.items():
            await session.execute(insert(model), values)
        # Bulk-loaded past UsageService, so the rollups are summed afterwards.
        await rollups.rebuild(session)


class StatementsGrew(AssertionError):
    """More rows cost more statements."""


class StatementCounter:
    """Counts statements on every engine in the process (the server builds its own)."""

    def __init__(self) -> None:
        self.statements: list[str] = []

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        self.statements.append(statement)


@pytest.fixture
def counter() -> Iterator[StatementCounter]:
    counting = StatementCounter()
    event.listen(Engine, "before_cursor_execute", counting)
    try:
        yield counting
    finally:
        event.remove(Engine, "before_cursor_execute", counting)


async def run(
    gql: GraphQLClient, counter: StatementCounter, variables: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """Statements the server ran for the nested query, and its data."""
    counter.statements.clear()
    data = await gql.data(NESTED, variables)
    return len(counter.statements), data


def rows(data: dict[str, Any]) -> int:
    """Interactions returned."""
    return sum(
        len(user["interactions"]["nodes"])
        for tenant in data["tenants"]["nodes"]
        for user in tenant["users"]["nodes"]
    )


@pytest.mark.parametrize(
    "window",
    [None, {"from": "2025-03-01T00:00:00Z", "to": "2025-04-01T00:00:00Z"}],
    ids=["all-time", "range"],
)
async def test_statements_do_not_grow_with_rows(
    gql: GraphQLClient,
    db: Database,
    counter: StatementCounter,
    window: dict[str, str] | None,
) -> None:
    await seed(db, tenants=1, users=2, interactions=5)
    small, data = await run(gql, counter, {"r": window})
    assert rows(data) == 10
    assert data["tenants"]["nodes"][0]["credits"] == {"total": "1", "records": 10}

    await seed_more(db)
    large, data = await run(gql, counter, {"r": window})
    assert rows(data) == 1000
    assert data["tenants"]["totalCount"] == 10
    first = data["tenants"]["nodes"][0]
    assert first["credits"] == {"total": "10", "records": 100}
    interaction = first["users"]["nodes"][0]["interactions"]["nodes"][0]
    assert interaction["records"] == [
        {"source": "STREAM", "credits": "0.1", "interaction": {"id": interaction["id"]}}
    ]

    # One per level and field, plus authentication (and BEGINs on SQLite).
    assert small <= 20, counter.statements
    if small != large:
        raise StatementsGrew(f"{small} statements for 10 rows, {large} for 1,000")


async def seed_more(db: Database) -> None:
    """Replace the small data set with 10 tenants x 10 users x 10 interactions."""
    async with db.write() as session:
        for table in ("usage_records", "interactions", "users", "tenants"):
            await session.execute(text(f"DELETE FROM {table}"))
    await seed(db, tenants=10, users=10, interactions=10)
