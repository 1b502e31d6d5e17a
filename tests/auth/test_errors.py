"""Unexpected errors: INTERNAL with a request id; no trace, SQL or driver name.

Every response of this suite also passes the leak check of conftest.py.
"""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from service.auth import webhooks
from service.config import Settings
from service.db.base import Base
from service.db.session import Database
from tests.auth.helpers import TENANTS, call, client_for, leaked, new_key, post
from tests.fixtures.app import start_server, stop_server
from tests.fixtures.operations import REGISTER

pytestmark = pytest.mark.asyncio

WEBHOOK_SECRET = "whsec-errors"


def assert_internal(response: httpx.Response) -> None:
    body = response.json()
    errors = body["errors"]
    assert [e["extensions"]["code"] for e in errors] == ["INTERNAL"], body
    request_id = errors[0]["extensions"]["requestId"]
    assert request_id
    assert request_id == response.headers["x-request-id"]
    assert request_id in errors[0]["message"]
    assert not leaked(response.text)


async def test_database_failures_are_internal_with_a_request_id(
    bare_database_url: str,
) -> None:
    settings = Settings(database_url=bare_database_url, webhook_secret=WEBHOOK_SECRET)
    uv, task, url = await start_server(settings)
    try:
        async with client_for(url) as http:
            # Checking a key needs the database: it fails before execution.
            response = await post(http, TENANTS, key="cul_0123456789ab_secret")
            assert response.status_code == 500
            assert_internal(response)
            # A webhook signature needs the database too (its replay cache):
            # it fails before execution, like a key.
            body = json.dumps(
                {"query": REGISTER, "variables": {"i": "i", "t": "t", "u": "u"}}
            ).encode()
            response = await http.post(
                "/graphql",
                content=body,
                headers={
                    "content-type": "application/json",
                    "x-webhook-signature": webhooks.sign(WEBHOOK_SECRET, body),
                },
            )
            assert response.status_code == 500
            assert_internal(response)
            # With only the key table, keys work and the query fails.
            engine = create_async_engine(bare_database_url)
            async with engine.begin() as conn:
                await conn.run_sync(
                    Base.metadata.create_all, tables=[Base.metadata.tables["api_keys"]]
                )
            await engine.dispose()
            bare = Database.from_url(bare_database_url)
            try:
                _, key = await new_key(bare, "admin")
            finally:
                await bare.dispose()
            response = await post(http, TENANTS, key=key)
            assert response.status_code == 200
            assert_internal(response)
            # The service itself is still up.
            assert (await http.get("/healthz")).status_code == 200
    finally:
        await stop_server(uv, task)


@pytest.mark.parametrize(
    "instant", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"]
)
async def test_out_of_range_instants_are_bad_user_input(
    db: Database, api: httpx.AsyncClient, instant: str
) -> None:
    _, key = await new_key(db, "reader")
    query = 'query($at: DateTime) { tenant(id: "t") { credits(range: {from: $at}) { total } } }'
    literal = (
        f'{{ tenant(id: "t") {{ credits(range: {{from: "{instant}"}}) {{ total }} }} }}'
    )
    for body in (
        await call(api, query, {"at": instant}, key=key),
        await call(api, literal, key=key),
    ):
        assert [e["extensions"]["code"] for e in body["errors"]] == [
            "BAD_USER_INPUT"
        ], body


async def test_nul_characters_in_ids_find_nothing(
    db: Database, api: httpx.AsyncClient
) -> None:
    _, key = await new_key(db, "reader")
    query = "query($i: ID!) { tenant(id: $i) { id } interaction(id: $i) { id } }"
    body = await call(api, query, {"i": "a\u0000b"}, key=key)
    # No stored id can hold a NUL: both lookups answer null, without an error
    # (and without the driver's "invalid byte sequence" becoming INTERNAL).
    assert "errors" not in body, body
    assert body["data"] == {"tenant": None, "interaction": None}, body
