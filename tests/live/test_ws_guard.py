"""Websockets follow the HTTP rules: revocation closes them, subscriptions only (issue 10, 4-5)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed

from service.auth import keys
from service.config import Settings
from service.db.models import Interaction
from service.db.session import Database
from service.graphql import schema as schema_module
from service.graphql import ws
from tests.auth.helpers import new_key
from tests.fixtures.app import start_server, stop_server
from tests.live.client import USAGE_RECORDED, bearer, socket

pytestmark = pytest.mark.asyncio


async def _read_until_closed(connection: Any) -> None:
    async with asyncio.timeout(20):
        while True:
            await connection.recv()


async def test_token_limit_matches_the_schema() -> None:
    assert ws.MAX_TOKENS == schema_module.MAX_TOKENS


async def test_a_revoked_key_loses_its_open_socket(
    database_url: str, db: Database
) -> None:
    key_id, key = await new_key(db, "admin")
    settings = Settings(database_url=database_url, ws_key_recheck_seconds=0.2)
    uv, task, url = await start_server(settings)
    try:
        async with socket(url, bearer(key)) as live:
            await live.subscribe(USAGE_RECORDED, {"t": "acme"})
            assert await live.nothing_within(0.5)
            async with db.write() as session:
                assert await keys.revoke_key(session, str(key_id))
            with pytest.raises(ConnectionClosed) as closed:
                await _read_until_closed(live.ws)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4403
    finally:
        await stop_server(uv, task)


QUERY = "{ tenants { totalCount } }"
MUTATION = (
    'mutation { registerInteraction(input: {interactionId: "ws-i", '
    'tenantId: "ws-t", userId: "ws-u"}) { id } }'
)


@pytest.mark.parametrize("operation", [QUERY, MUTATION, "query Q { __typename }"])
async def test_queries_and_mutations_are_refused_over_the_socket(
    database_url: str, db: Database, operation: str
) -> None:
    _, key = await new_key(db, "admin")
    settings = Settings(database_url=database_url)
    uv, task, url = await start_server(settings)
    try:
        async with socket(url, bearer(key)) as live:
            op_id = await live.subscribe(operation, {})
            message = await live.receive(5)
            assert message["type"] == "error", message
            assert message["id"] == op_id
            assert message["payload"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            # A subscription still works on the same socket.
            await live.subscribe(USAGE_RECORDED, {"t": "acme"})
            assert await live.nothing_within(0.3)
    finally:
        await stop_server(uv, task)
    async with db.read() as session:
        assert (await session.scalar(select(Interaction.id))) is None


async def test_subscribe_spends_the_rate_limit(database_url: str, db: Database) -> None:
    _, key = await new_key(db, "reader")
    settings = Settings(database_url=database_url, rate_limit_per_minute=2)
    uv, task, url = await start_server(settings)
    try:
        async with socket(url, bearer(key)) as live:
            for _ in range(2):
                await live.subscribe(USAGE_RECORDED, {"t": "acme"})
            op_id = await live.subscribe(USAGE_RECORDED, {"t": "acme"})
            message = await live.receive(5)
            assert message["type"] == "error", message
            assert message["id"] == op_id
            assert message["payload"][0]["extensions"]["reason"] == "RATE_LIMITED"
    finally:
        await stop_server(uv, task)
