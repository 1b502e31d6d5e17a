"""Signed webhook requests are accepted once, by every API process (issue 10 item 10)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, insert, select

from service.auth.models import SeenWebhookSignature
from service.auth.webhooks import prune, sign
from service.db.session import Database
from tests.auth.helpers import new_key, only_code
from tests.auth.test_limits import other_server
from tests.fixtures.app import Server
from tests.fixtures.operations import REGISTER

pytestmark = pytest.mark.asyncio


def _signed(tenant: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {"query": REGISTER, "variables": {"i": "int-replay", "t": tenant, "u": "u1"}}
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Webhook-Signature": sign("whsec-test-one", body),
    }
    return body, headers


async def _owner(http: httpx.AsyncClient, key: str) -> str:
    response = await http.post(
        "/graphql",
        json={"query": '{ interaction(id: "int-replay") { tenant { id } } }'},
        headers={"Authorization": f"Bearer {key}"},
    )
    owner: str = response.json()["data"]["interaction"]["tenant"]["id"]
    return owner


async def test_a_replayed_signature_is_refused(
    server: Server, db: Database, api: httpx.AsyncClient
) -> None:
    _, admin = await new_key(db, "admin")
    old_body, old_headers = _signed("tenant-old")
    first = await api.post("/graphql", content=old_body, headers=old_headers)
    assert "errors" not in first.json(), first.json()
    new_body, new_headers = _signed("tenant-new")
    moved = await api.post("/graphql", content=new_body, headers=new_headers)
    assert "errors" not in moved.json(), moved.json()
    assert await _owner(api, admin) == "tenant-new"
    # The attacker replays the first request inside the 5-minute window.
    replay = await api.post("/graphql", content=old_body, headers=old_headers)
    assert replay.status_code == 401
    assert only_code(replay.json()) == "UNAUTHENTICATED"
    assert await _owner(api, admin) == "tenant-new"


async def test_two_api_processes_share_the_cache(
    server: Server, db: Database, api: httpx.AsyncClient
) -> None:
    body, headers = _signed("tenant-a")
    assert (
        "errors"
        not in (await api.post("/graphql", content=body, headers=headers)).json()
    )
    async with other_server(server.settings) as second:
        replay = await second.post("/graphql", content=body, headers=headers)
        assert replay.status_code == 401
        assert only_code(replay.json()) == "UNAUTHENTICATED"
        fresh_body, fresh_headers = _signed("tenant-b")
        ok = await second.post("/graphql", content=fresh_body, headers=fresh_headers)
        assert "errors" not in ok.json(), ok.json()


async def test_expired_rows_are_pruned(db: Database) -> None:
    now = datetime.now(UTC)
    async with db.write() as session:
        await session.execute(
            insert(SeenWebhookSignature),
            [
                {"digest": "a" * 64, "expires_at": now - timedelta(minutes=1)},
                {"digest": "b" * 64, "expires_at": now + timedelta(minutes=5)},
            ],
        )
    async with db.write() as session:
        await prune(session)
    async with db.read() as session:
        left = await session.scalar(
            select(func.count()).select_from(SeenWebhookSignature)
        )
    assert left == 1
