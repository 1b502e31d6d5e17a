"""Signed webhooks: X-Webhook-Signature t=<unix>,v1=<HMAC-SHA256(secret, "<t>.<body>")>."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from service.auth import webhooks
from service.config import Settings
from service.db.session import Database
from tests.auth.helpers import (
    INTERACTION,
    INTERACTION_STATE,
    JOB,
    TENANTS,
    client_for,
    data,
    insert_job,
    new_key,
    only_code,
)
from tests.fixtures.app import Server, start_server, stop_server
from tests.fixtures.operations import INGEST, REGISTER, TENANT, TRANSCRIPT

pytestmark = pytest.mark.asyncio

SECRETS = ("whsec-test-one", "whsec-test-two")  # the session server's rotation list


def body_of(query: str, variables: dict[str, Any] | None = None) -> bytes:
    return json.dumps({"query": query, "variables": variables or {}}).encode()


async def send(
    api: httpx.AsyncClient, body: bytes, signature: str | bytes
) -> httpx.Response:
    if isinstance(signature, str):
        signature = signature.encode("latin-1")
    return await api.post(
        "/graphql",
        content=body,
        headers=[
            (b"content-type", b"application/json"),
            (b"x-webhook-signature", signature),
        ],
    )


@pytest.mark.parametrize("secret", SECRETS)
async def test_either_rotation_secret_signs_ingestion(
    server: Server, db: Database, api: httpx.AsyncClient, secret: str
) -> None:
    assert server.settings.webhook_secret is not None
    assert server.settings.webhook_secret.get_secret_value() == ",".join(SECRETS)
    register = body_of(REGISTER, {"i": "int-hook", "t": "t1", "u": "u1"})
    response = await send(api, register, webhooks.sign(secret, register))
    assert response.status_code == 200
    assert response.json()["data"]["registerInteraction"] == {"id": "int-hook"}
    usage = body_of(TRANSCRIPT, {"i": "int-hook", "x": "tr-hook", "c": "0.5"})
    response = await send(api, usage, webhooks.sign(secret, usage))
    assert "errors" not in response.json()
    batch = body_of(
        INGEST,
        {
            "r": [
                {
                    "source": "STREAM",
                    "interactionId": "int-hook",
                    "externalId": "s",
                    "credits": "1",
                }
            ]
        },
    )
    response = await send(api, batch, webhooks.sign(secret, batch))
    assert response.json()["data"]["ingestUsage"]["accepted"] == 1
    _, admin = await new_key(db, "admin")
    state = await data(
        api,
        "query($i: ID!) { interaction(id: $i) " + INTERACTION_STATE + " }",
        {"i": "int-hook"},
        key=admin,
    )
    assert state["interaction"]["credits"] == {"total": "1.5", "records": 2}


def _tampered(body: bytes) -> str:
    return webhooks.sign(SECRETS[0], body + b" ")


def _timestamp_only(body: bytes) -> str:
    return f"t={int(time.time())}"


def _v1_only(body: bytes) -> str:
    return webhooks.sign(SECRETS[0], body).split(",", 1)[1]


BAD_SIGNATURES = [
    pytest.param(lambda b: webhooks.sign("whsec-wrong", b), id="wrong-secret"),
    pytest.param(_tampered, id="other-body"),
    pytest.param(
        lambda b: webhooks.sign(SECRETS[0], b, int(time.time()) - 301), id="stale"
    ),
    pytest.param(
        lambda b: webhooks.sign(SECRETS[0], b, int(time.time()) - 3600), id="hour-old"
    ),
    pytest.param(
        lambda b: webhooks.sign(SECRETS[0], b, int(time.time()) + 301), id="future"
    ),
    pytest.param(_timestamp_only, id="missing-v1"),
    pytest.param(_v1_only, id="missing-t"),
    pytest.param(lambda b: f"t={int(time.time())},v1=", id="empty-v1"),
    pytest.param(
        lambda b: webhooks.sign(SECRETS[0], b).replace("t=", "t=x"), id="bad-timestamp"
    ),
    pytest.param(
        lambda b: (
            webhooks.sign(SECRETS[0], b)
            .upper()
            .replace("T=", "t=")
            .replace("V1=", "v1=")
        ),
        id="uppercase-hex",
    ),
    pytest.param(
        lambda b: (
            f"t={int(time.time())},v0=" + webhooks.sign(SECRETS[0], b).split("v1=")[1]
        ),
        id="other-scheme",
    ),
    pytest.param(
        lambda b: f"t={int(time.time())},v1=".encode() + b"\xe9" * 64, id="non-ascii"
    ),
    pytest.param(lambda b: "t=" + "9" * 5000 + ",v1=00", id="huge-timestamp"),
    pytest.param(lambda b: "garbage", id="garbage"),
]


@pytest.mark.parametrize("make", BAD_SIGNATURES)
async def test_bad_signatures_are_401(
    db: Database, api: httpx.AsyncClient, make: Any
) -> None:
    body = body_of(REGISTER, {"i": "int-bad", "t": "t1", "u": "u1"})
    response = await send(api, body, make(body))
    assert response.status_code == 401, response.text
    assert only_code(response.json()) == "UNAUTHENTICATED"
    _, admin = await new_key(db, "admin")
    assert (await data(api, INTERACTION, {"i": "int-bad"}, key=admin))[
        "interaction"
    ] is None


async def test_a_valid_signature_among_wrong_ones_is_accepted(
    db: Database, api: httpx.AsyncClient
) -> None:
    """Senders may list several v1 values while rotating (as Stripe does)."""
    body = body_of(REGISTER, {"i": "int-multi", "t": "t1", "u": "u1"})
    good = webhooks.sign(SECRETS[1], body)
    timestamp, v1 = good.split(",")
    response = await send(api, body, f"{timestamp},v1={'0' * 64},{v1}")
    assert response.status_code == 200
    assert "errors" not in response.json()


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        pytest.param(TENANTS, {}, id="tenants"),
        pytest.param(TENANT, {"t": "t1"}, id="tenant"),
        pytest.param(INTERACTION, {"i": "int-t1"}, id="interaction"),
    ],
)
async def test_a_valid_signature_cannot_query(
    db: Database, api: httpx.AsyncClient, query: str, variables: dict[str, Any]
) -> None:
    _, admin = await new_key(db, "admin")
    await data(api, REGISTER, {"i": "int-t1", "t": "t1", "u": "u1"}, key=admin)
    body = body_of(query, variables)
    response = await send(api, body, webhooks.sign(SECRETS[0], body))
    assert only_code(response.json()) == "FORBIDDEN"
    assert "t1" not in json.dumps(response.json()["data"])


async def test_a_valid_signature_sees_no_job(
    db: Database, api: httpx.AsyncClient
) -> None:
    job = await insert_job(db, tenant="t1")
    body = body_of(JOB, {"j": job})
    response = await send(api, body, webhooks.sign(SECRETS[0], body))
    assert response.json()["data"] == {"job": None}


async def test_signatures_are_ignored_when_no_secret_is_configured(
    database_url: str, db: Database
) -> None:
    uv, task, url = await start_server(Settings(database_url=database_url))
    try:
        async with client_for(url) as http:
            body = body_of(REGISTER, {"i": "int-x", "t": "t1", "u": "u1"})
            for secret in (SECRETS[0], ""):
                response = await send(http, body, webhooks.sign(secret, body))
                assert response.status_code == 401
                assert only_code(response.json()) == "UNAUTHENTICATED"
    finally:
        await stop_server(uv, task)


async def test_verify_compares_in_constant_time_and_checks_every_secret() -> None:
    body = b'{"query": "{ __typename }"}'
    now = 1_700_000_000
    header = webhooks.sign("second", body, now)
    assert webhooks.verify(header, body, ["first", "second"], now=now)
    assert webhooks.verify(header, body, ["first", "second"], now=now + 300)
    assert not webhooks.verify(header, body, ["first", "second"], now=now + 301)
    assert not webhooks.verify(header, body, ["first", "second"], now=now - 301)
    assert not webhooks.verify(header, body, ["first"], now=now)
    assert not webhooks.verify(header, body, [], now=now)
    assert not webhooks.verify(header + "\xe9", body, ["second"], now=now)
