"""Keys, webhook secrets and the Corti client secret never reach the logs."""

from __future__ import annotations

import json

import pytest
import websockets
from websockets.typing import Subprotocol

from service.auth import webhooks
from service.config import Settings
from service.db.session import Database
from tests.auth.helpers import TENANTS, call, client_for, new_key, post
from tests.fixtures.app import Server, start_server, stop_server
from tests.fixtures.operations import REGISTER, TRANSCRIPT

pytestmark = pytest.mark.asyncio

WEBHOOK_SECRETS = ("whsec-log-first-3f9a1c", "whsec-log-second-77b2e0")
CORTI_SECRET = "corti-client-secret-5d1e8b2a"


async def test_no_secret_in_any_log_line(
    database_url: str, bare_database_url: str, db: Database, log_lines: list[str]
) -> None:
    settings = Settings(
        database_url=database_url,
        webhook_secret=",".join(WEBHOOK_SECRETS),
        corti_tenant_name="base",
        corti_client_id="client-id",
        corti_client_secret=CORTI_SECRET,
        corti_base_url="http://127.0.0.1:9/v2",
    )
    _, admin = await new_key(db, "admin")
    _, reader = await new_key(db, "reader", "t1")
    _, ingest = await new_key(db, "ingest", "t1")
    prefix = admin.split("_")[1]
    wrong = f"cul_{prefix}_not-the-secret-91c3"
    unknown = "cul_0000000000aa_unknown-secret-5b1f"
    uv, task, url = await start_server(settings)
    try:
        async with client_for(url) as http:
            await call(
                http, REGISTER, {"i": "int-log", "t": "t1", "u": "u1"}, key=admin
            )
            await call(http, TENANTS, key=reader)
            await call(http, TENANTS, key=ingest)  # FORBIDDEN
            await call(http, REGISTER, {"i": "int-x", "t": "t2", "u": "u"}, key=ingest)
            for key in (wrong, unknown):
                assert (await post(http, TENANTS, key=key)).status_code == 401
            await http.post(
                "/graphql", json={"query": TENANTS}, headers={"Authorization": admin}
            )
            for secret in (*WEBHOOK_SECRETS, "whsec-wrong"):
                body = json.dumps(
                    {
                        "query": TRANSCRIPT,
                        "variables": {"i": "int-log", "x": secret[-6:], "c": "1"},
                    }
                ).encode()
                await http.post(
                    "/graphql",
                    content=body,
                    headers={
                        "content-type": "application/json",
                        "x-webhook-signature": webhooks.sign(secret, body),
                    },
                )
            # A Corti-bound job mutation with the configured client secret.
            await call(
                http,
                'mutation { createInteraction(input: {tenantId: "t1", userId: "u1", '
                'encounterIdentifier: "e"}) { id } }',
                key=admin,
            )
    finally:
        await stop_server(uv, task)

    # A database failure while checking a key: logged with its traceback and SQL.
    uv, task, url = await start_server(Settings(database_url=bare_database_url))
    try:
        async with client_for(url) as http:
            assert (await post(http, TENANTS, key=admin)).status_code == 500
    finally:
        await stop_server(uv, task)

    assert any('"message": "request"' in line for line in log_lines), "nothing captured"
    assert any("Traceback" in line and prefix in line for line in log_lines)
    secrets = {
        "admin key": admin,
        "reader key": reader,
        "ingest key": ingest,
        "admin secret part": admin.split("_", 2)[2],
        "reader secret part": reader.split("_", 2)[2],
        "wrong key": wrong,
        "unknown key": unknown,
        "webhook secret 1": WEBHOOK_SECRETS[0],
        "webhook secret 2": WEBHOOK_SECRETS[1],
        "corti secret": CORTI_SECRET,
    }
    for line in log_lines:
        found = [name for name, secret in secrets.items() if secret in line]
        assert not found, f"{found} logged: {line[:500]}"


async def test_a_signed_websocket_handshake_is_refused_cleanly(
    server: Server, db: Database, log_lines: list[str]
) -> None:
    """Webhook signatures are for HTTP bodies; a WebSocket has none to sign."""
    url = server.url.replace("http://", "ws://") + "/graphql"
    headers = {"X-Webhook-Signature": webhooks.sign("whsec-test-one", b"")}
    async with websockets.connect(
        url,
        subprotocols=[Subprotocol("graphql-transport-ws")],
        additional_headers=headers,
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403
    errors = [line for line in log_lines if '"level": "ERROR"' in line]
    assert not errors, errors
