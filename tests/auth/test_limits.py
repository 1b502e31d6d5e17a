"""Limits: depth, aliases, tokens, cost, body size, rate, time, suggestions."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import insert, text

from service.config import Settings
from service.db.models import Interaction, Tenant, UsageRecord, User
from service.db.session import Database
from service.graphql.limits import MAX_COST
from service.graphql.schema import MAX_ALIASES, MAX_DEPTH, MAX_TOKENS
from tests.auth.helpers import TENANTS, call, client_for, data, new_key, only_code, post
from tests.fixtures.app import Server, start_server, stop_server
from tests.fixtures.database import BACKEND

pytestmark = pytest.mark.asyncio


@asynccontextmanager
async def other_server(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A second API server with other settings, and a leak-checking client for it."""
    uv, task, url = await start_server(settings)
    try:
        async with client_for(url) as http:
            yield http
    finally:
        await stop_server(uv, task)


CHAIN = [
    "tenants(first: 1)",
    "nodes",
    "users(first: 1)",
    "nodes",
    "interactions(first: 1)",
    "nodes",
    "user",
    "interactions(first: 1)",
    "nodes",
    "user",
    "interactions(first: 1)",
    "nodes",
]


def nested(depth: int) -> str:
    """A query whose deepest leaf sits under `depth` object fields."""
    query = "__typename"
    for field in reversed(CHAIN[:depth]):
        query = f"{field} {{ {query} }}"
    return "{ " + query + " }"


async def test_depth_limit(db: Database, api: httpx.AsyncClient) -> None:
    _, key = await new_key(db, "admin")
    assert "errors" not in await call(api, nested(MAX_DEPTH), key=key)
    body = await call(api, nested(MAX_DEPTH + 1), key=key)
    assert only_code(body) == "BAD_USER_INPUT"
    assert "depth" in body["errors"][0]["message"]
    assert body["data"] is None
    # The same depth hidden in fragments is counted too.
    deep = (
        "query { ...A } fragment A on Query { tenants(first: 1) { nodes { ...B } } } "
        "fragment B on Tenant { users(first: 1) { nodes { ...C } } } "
        "fragment C on User { interactions(first: 1) { nodes { user { ...D } } } } "
        "fragment D on User { interactions(first: 1) { nodes { user { ...E } } } } "
        "fragment E on User { interactions(first: 1) { nodes { id } } }"
    )
    body = await call(api, deep, key=key)
    assert only_code(body) == "BAD_USER_INPUT"
    assert "depth" in body["errors"][0]["message"]


async def test_alias_limit(db: Database, api: httpx.AsyncClient) -> None:
    _, key = await new_key(db, "reader")
    allowed = "{ " + " ".join(f"a{n}: __typename" for n in range(MAX_ALIASES)) + " }"
    assert "errors" not in await call(api, allowed, key=key)
    refused = (
        "{ "
        + " ".join(f"a{n}: tenants {{ totalCount }}" for n in range(MAX_ALIASES + 1))
        + " }"
    )
    body = await call(api, refused, key=key)
    assert only_code(body) == "BAD_USER_INPUT"
    assert "aliases" in body["errors"][0]["message"]


async def test_token_limit(db: Database, api: httpx.AsyncClient) -> None:
    _, key = await new_key(db, "reader")
    body = await call(api, "{ " + "__typename " * (MAX_TOKENS + 1) + "}", key=key)
    assert only_code(body) == "BAD_USER_INPUT"
    assert "tokens" in body["errors"][0]["message"]


WIDE = """query($first: Int = 100) {
  tenants(first: $first) { nodes { users(first: $first) { nodes {
    interactions(first: $first) { nodes { records { id } } } } } } }
}"""


async def test_cost_limit_and_cost_reporting(
    db: Database, api: httpx.AsyncClient
) -> None:
    _, key = await new_key(db, "reader")
    normal = await call(api, TENANTS, key=key)
    assert normal["extensions"]["cost"]["limit"] == MAX_COST
    assert 0 < normal["extensions"]["cost"]["requested"] <= MAX_COST
    cheap = await call(api, WIDE, {"first": 2}, key=key)
    assert "errors" not in cheap
    # Connections of 2, 4 and 8 objects, their `nodes` lists, and 8 pages of
    # records of the default size (RECORDS_PAGE).
    assert cheap["extensions"]["cost"]["requested"] == 2 * (2 + 4 + 8) + 8 * 100
    for variables in ({"first": 100}, {}):  # given, or the variable's default
        body = await call(api, WIDE, variables, key=key)
        assert only_code(body) == "BAD_USER_INPUT", body
        assert body["data"] is None
        cost = body["extensions"]["cost"]
        assert cost["limit"] == MAX_COST
        assert cost["requested"] > MAX_COST
        assert str(MAX_COST) in body["errors"][0]["message"]


async def test_cost_counts_fragments_and_buckets(
    db: Database, api: httpx.AsyncClient
) -> None:
    _, key = await new_key(db, "reader")
    spread = """
    query { tenants(first: 100) { nodes { ...T } } }
    fragment T on Tenant { users(first: 100) { nodes { ... on User { interactions(first: 100) { nodes { id } } } } } }
    """
    body = await call(api, spread, key=key)
    assert only_code(body) == "BAD_USER_INPUT"
    hourly = """
    query { tenants(first: 100) { nodes { users(first: 100) { nodes {
      usage(range: {from: "2025-01-01T00:00:00Z", to: "2025-02-01T00:00:00Z"}, granularity: HOUR) { start }
    } } } } }"""
    body = await call(api, hourly, key=key)
    assert only_code(body) == "BAD_USER_INPUT"
    assert body["extensions"]["cost"]["requested"] >= 100 * 100 * 744


async def test_a_20_mb_body_is_413_and_the_server_stays_up(
    server: Server, db: Database, api: httpx.AsyncClient
) -> None:
    _, key = await new_key(db, "reader")
    payload = json.dumps({"query": "{ __typename }", "padding": "x" * 20_000_000})
    assert len(payload) > server.settings.max_body_bytes
    response = await api.post(
        "/graphql",
        content=payload.encode(),
        headers={"content-type": "application/json", "Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 413
    assert only_code(response.json()) == "BAD_USER_INPUT"
    assert (await data(api, TENANTS, key=key))["tenants"]["totalCount"] == 0


async def test_an_expect_100_continue_client_gets_413_before_sending(
    server: Server,
) -> None:
    """curl asks before sending large bodies; the answer comes without the body."""
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 20000000\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), timeout=10)
    finally:
        writer.close()
    assert status.startswith(b"HTTP/1.1 413")


async def test_a_streamed_body_over_the_limit_is_413(
    database_url: str, db: Database
) -> None:
    """No Content-Length (chunked): the limit applies while the body arrives."""
    _, key = await new_key(db, "reader")

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ __typename }", "padding": "'
        for _ in range(64):
            yield b"x" * 1024
        yield b'"}'

    settings = Settings(database_url=database_url, max_body_bytes=16 * 1024)
    async with other_server(settings) as http:
        response = await http.post(
            "/graphql",
            content=chunks(),
            headers={
                "content-type": "application/json",
                "Authorization": f"Bearer {key}",
            },
        )
        assert response.status_code == 413
        small = await post(http, "{ __typename }", key=key)
        assert small.json()["data"] == {"__typename": "Query"}


async def test_rate_limit_is_per_key_with_retry_after(
    database_url: str, db: Database
) -> None:
    _, first = await new_key(db, "reader")
    _, second = await new_key(db, "reader")
    settings = Settings(database_url=database_url, rate_limit_per_minute=3)
    async with other_server(settings) as http:
        for _ in range(3):
            assert (await post(http, TENANTS, key=first)).status_code == 200
        refused = await post(http, TENANTS, key=first)
        assert refused.status_code == 429
        retry_after = int(refused.headers["retry-after"])
        assert 1 <= retry_after <= 60
        error = refused.json()["errors"][0]
        assert error["extensions"]["retryAfter"] == retry_after
        assert refused.json()["data"] is None
        # Another key has its own budget.
        assert (await post(http, TENANTS, key=second)).status_code == 200


async def test_rate_limit_is_off_unless_configured(
    server: Server, db: Database, api: httpx.AsyncClient
) -> None:
    assert server.settings.rate_limit_per_minute == 0
    _, key = await new_key(db, "reader")
    statuses = await asyncio.gather(
        *(post(api, "{ __typename }", key=key) for _ in range(40))
    )
    assert {r.status_code for r in statuses} == {200}


async def test_request_timeout(database_url: str, db: Database) -> None:
    _, key = await new_key(db, "admin")
    settings = Settings(database_url=database_url, request_timeout_seconds=0.001)
    query = (
        "{ tenants { nodes { users { nodes { interactions { nodes { id } } } } } } }"
    )
    async with other_server(settings) as http:
        started = time.monotonic()
        response = await post(http, query, key=key)
        assert time.monotonic() - started < 10
        assert response.status_code == 504
        body = response.json()
        assert only_code(body) == "INTERNAL"
        assert (
            body["errors"][0]["extensions"]["requestId"]
            == response.headers["x-request-id"]
        )
        assert (await http.get("/healthz")).status_code == 200


async def _many_records(db: Database, count: int) -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    async with db.write() as session:
        await session.execute(insert(Tenant).values(id="t-big", created_at=start))
        await session.execute(
            insert(User).values(tenant_id="t-big", id="u", created_at=start)
        )
        await session.execute(
            insert(Interaction).values(
                id="int-big",
                tenant_id="t-big",
                user_id="u",
                created_at=start,
                updated_at=start,
            )
        )
        await session.execute(
            insert(UsageRecord),
            [
                {
                    "id": uuid.uuid4(),
                    "source": "TRANSCRIPT",
                    "external_id": f"tr-{n}",
                    "interaction_id": "int-big",
                    "credits": Decimal("0.1"),
                    "created_at": start + timedelta(minutes=n),
                    "received_at": start,
                }
                for n in range(count)
            ],
        )


@pytest.mark.skipif(
    BACKEND != "postgresql",
    reason="SQLite has no statement timeout; the request timeout covers it there",
)
async def test_postgresql_statement_timeout(
    database_url: str, db: Database, api: httpx.AsyncClient
) -> None:
    _, key = await new_key(db, "admin")
    await _many_records(db, 20_000)
    query = """{ tenant(id: "t-big") {
      usage(range: {from: "2025-01-01T00:00:00Z", to: "2025-02-01T00:00:00Z"},
            granularity: HOUR, timeZone: "Europe/Copenhagen") { credits { total } } } }"""
    # Without the tiny timeout the query answers (so the failure below is the timeout).
    full = await data(api, query, key=key)
    assert len(full["tenant"]["usage"]) == 744
    settings = Settings(database_url=database_url, statement_timeout_ms=5)
    # The totals come from small rollup tables and can answer within 5 ms, so
    # another transaction holds the usage tables: the request's statement waits
    # for the lock, and waiting counts towards statement_timeout.
    async with other_server(settings) as http, db.write() as blocker:
        await blocker.execute(
            text(
                "LOCK TABLE usage_records, usage_tenant_hours, usage_user_days"
                " IN ACCESS EXCLUSIVE MODE"
            )
        )
        response = await post(http, query, key=key)
        body = response.json()
        assert "INTERNAL" in [e["extensions"]["code"] for e in body["errors"]], body
        error = body["errors"][0]
        assert error["extensions"]["requestId"] == response.headers["x-request-id"]
        assert "statement" not in response.text
        assert "cancel" not in response.text
        assert (await http.get("/healthz")).status_code == 200


SUGGESTION_BAITS = [
    pytest.param("{ tenantz { totalCount } }", id="field"),
    pytest.param("{ tenants(firs: 1) { totalCount } }", id="argument"),
    pytest.param(
        'query($r: TimeRang) { tenant(id: "t") { credits(range: $r) { total } } }',
        id="type",
    ),
    pytest.param("{ tenants { nodes { ... on Tenat { id } } } }", id="fragment-type"),
    pytest.param(
        '{ tenant(id: "t") { credits(range: {fro: "2025-01-01T00:00:00Z"}) { total } } }',
        id="input-field",
    ),
    pytest.param(
        '{ tenant(id: "t") { usage(range: {from: "2025-01-01T00:00:00Z", '
        'to: "2025-01-02T00:00:00Z"}, granularity: DAYY) { start } } }',
        id="enum-value",
    ),
    pytest.param(
        'mutation { ingestUsage(records: [{source: STREEM, interactionId: "i", '
        'externalId: "x", credits: "1"}]) { accepted } }',
        id="enum-in-mutation",
    ),
]


@pytest.mark.parametrize("query", SUGGESTION_BAITS)
async def test_no_suggestions_in_error_messages(
    db: Database, api: httpx.AsyncClient, query: str
) -> None:
    _, key = await new_key(db, "admin")
    for accept in ("application/json", "application/graphql-response+json"):
        response = await api.post(
            "/graphql",
            json={"query": query},
            headers={"Authorization": f"Bearer {key}", "Accept": accept},
        )
        body = response.json()
        assert only_code(body) == "BAD_USER_INPUT", body
        assert "did you mean" not in response.text.lower(), body


async def test_no_suggestions_for_variable_values(
    db: Database, api: httpx.AsyncClient
) -> None:
    _, key = await new_key(db, "admin")
    query = """query($g: Granularity!, $r: TimeRange!) { tenant(id: "t") {
      usage(range: $r, granularity: $g) { start } } }"""
    for variables in (
        {
            "g": "DAYY",
            "r": {"from": "2025-01-01T00:00:00Z", "to": "2025-01-02T00:00:00Z"},
        },
        {
            "g": "DAY",
            "r": {"fro": "2025-01-01T00:00:00Z", "to": "2025-01-02T00:00:00Z"},
        },
    ):
        response = await post(api, query, variables, key=key)
        assert only_code(response.json()) == "BAD_USER_INPUT"
        assert "did you mean" not in response.text.lower()


async def test_graphiql_loads_without_a_key_but_introspection_needs_one(
    db: Database, api: httpx.AsyncClient
) -> None:
    page = await api.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "graphiql" in page.text.lower()
    introspection = "{ __schema { queryType { name } types { name } } }"
    for response in (
        await post(api, introspection),
        await api.get("/graphql", params={"query": introspection}),
        await post(api, '{ __type(name: "Tenant") { fields { name } } }'),
        await post(api, "{ __typename }"),
    ):
        assert response.status_code == 401
        assert only_code(response.json()) == "UNAUTHENTICATED"
        assert "Tenant" not in response.text
    _, key = await new_key(db, "reader")
    allowed = await data(api, introspection, key=key)
    assert allowed["__schema"]["queryType"] == {"name": "Query"}


async def test_no_batching_no_get_mutations_no_simple_posts(
    db: Database, api: httpx.AsyncClient
) -> None:
    _, key = await new_key(db, "admin")
    auth = {"Authorization": f"Bearer {key}"}
    batch = await api.post("/graphql", json=[{"query": TENANTS}] * 2, headers=auth)
    assert batch.status_code == 400
    mutation = 'mutation { registerInteraction(input: {interactionId: "g", tenantId: "t", userId: "u"}) { id } }'
    via_get = await api.get("/graphql", params={"query": mutation}, headers=auth)
    assert via_get.status_code in (400, 405)
    form = await api.post(
        "/graphql",
        content=f"query={TENANTS}",
        headers={**auth, "content-type": "text/plain"},
    )
    assert form.status_code in (400, 415)
    assert (await data(api, '{ interaction(id: "g") { id } }', key=key))[
        "interaction"
    ] is None
