"""The sandbox speaks Corti's wire protocol: raw HTTP checks, no client code."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
import pytest_asyncio

from corti_sandbox.testing import SandboxControl, SandboxServer
from tests.fixtures.corti import audio


@pytest_asyncio.fixture
async def http(
    sandbox: SandboxServer, control: SandboxControl
) -> AsyncIterator[httpx.AsyncClient]:
    """A plain HTTP client on the sandbox."""
    async with httpx.AsyncClient(
        base_url=sandbox.url, verify=False, timeout=5
    ) as client:
        yield client


async def _token(http: httpx.AsyncClient, tenant: str = "base") -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": "c",
        "client_secret": "s",
        "scope": "openid",
    }
    response = await http.post(
        f"/realms/{tenant}/protocol/openid-connect/token", data=form
    )
    assert response.status_code == 200
    token: str = response.json()["access_token"]
    return token


async def _headers(http: httpx.AsyncClient, tenant: str = "base") -> dict[str, str]:
    return {
        "Authorization": f"Bearer {await _token(http, tenant)}",
        "Tenant-Name": tenant,
    }


async def _interaction(http: httpx.AsyncClient, headers: dict[str, str]) -> str:
    body = {
        "encounter": {"identifier": "e", "status": "planned", "type": "consultation"}
    }
    response = await http.post("/v2/interactions/", json=body, headers=headers)
    assert response.status_code == 201
    assert set(response.json()) == {"interactionId", "websocketUrl"}
    interaction_id: str = response.json()["interactionId"]
    return interaction_id


class TestTokenEndpoint:
    @pytest.mark.asyncio
    async def test_keycloak_answer(self, http: httpx.AsyncClient) -> None:
        form = {
            "grant_type": "client_credentials",
            "client_id": "c",
            "client_secret": "s",
            "scope": "openid",
        }
        response = await http.post(
            "/realms/base/protocol/openid-connect/token", data=form
        )
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 300
        assert body["access_token"].count(".") == 2  # JWT-shaped
        assert "Tenant-Name" not in response.request.headers

    @pytest.mark.asyncio
    async def test_basic_auth_and_errors(self, http: httpx.AsyncClient) -> None:
        url = "/realms/base/protocol/openid-connect/token"
        ok = await http.post(
            url, data={"grant_type": "client_credentials"}, auth=("c", "s")
        )
        assert ok.status_code == 200
        wrong_grant = await http.post(
            url, data={"grant_type": "password", "client_id": "c"}
        )
        assert wrong_grant.status_code == 400
        assert wrong_grant.json()["error"] == "unsupported_grant_type"
        no_client = await http.post(url, data={"grant_type": "client_credentials"})
        assert no_client.status_code == 401
        assert no_client.json()["error"] == "invalid_client"

    @pytest.mark.asyncio
    async def test_configurable_expiry(
        self, http: httpx.AsyncClient, control: SandboxControl
    ) -> None:
        await control.configure(token_expires_in=1)
        headers = await _headers(http)
        assert (await http.get("/v2/interactions/", headers=headers)).status_code == 200
        await asyncio.sleep(1.05)
        assert (await http.get("/v2/interactions/", headers=headers)).status_code == 401


class TestRestConventions:
    @pytest.mark.asyncio
    async def test_401_has_no_body(self, http: httpx.AsyncClient) -> None:
        bad = await http.get(
            "/v2/interactions/",
            headers={"Authorization": "Bearer nope", "Tenant-Name": "base"},
        )
        assert bad.status_code == 401
        assert bad.content == b""
        assert 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
        missing = await http.get("/v2/interactions/", headers={"Tenant-Name": "base"})
        assert missing.status_code == 401
        assert missing.content == b""

    @pytest.mark.asyncio
    async def test_tenant_header(self, http: httpx.AsyncClient) -> None:
        headers = await _headers(http)
        no_tenant = {"Authorization": headers["Authorization"]}
        assert (
            await http.get("/v2/interactions/", headers=no_tenant)
        ).status_code == 400
        other = {**headers, "Tenant-Name": "other"}
        assert (await http.get("/v2/interactions/", headers=other)).status_code == 403

    @pytest.mark.asyncio
    async def test_exact_trailing_slashes_and_error_body(
        self, http: httpx.AsyncClient
    ) -> None:
        headers = await _headers(http)
        interaction_id = await _interaction(http, headers)
        for path in (
            "/v2/interactions",
            f"/v2/interactions/{interaction_id}/",
            f"/v2/interactions/{interaction_id}/transcripts",
        ):
            response = await http.get(path, headers=headers)
            assert response.status_code == 404, path
        missing = await http.get(
            "/v2/interactions/00000000-0000-4000-8000-000000000000", headers=headers
        )
        assert missing.status_code == 404
        assert set(missing.json()) == {"requestid", "status", "type", "detail"}
        assert missing.json()["status"] == 404

    @pytest.mark.asyncio
    async def test_statuses_and_raw_credits(self, http: httpx.AsyncClient) -> None:
        headers = await _headers(http)
        interaction_id = await _interaction(http, headers)
        base = f"/v2/interactions/{interaction_id}"
        upload = await http.post(
            f"{base}/recordings/",
            content=audio(1),
            headers={**headers, "Content-Type": "application/octet-stream"},
        )
        assert upload.status_code == 201
        recording_id = upload.json()["recordingId"]
        stored = await http.get(f"{base}/recordings/{recording_id}", headers=headers)
        assert stored.content == audio(1)
        transcript = await http.post(
            f"{base}/transcripts/",
            json={"recordingId": recording_id, "primaryLanguage": "en"},
            headers=headers,
        )
        assert transcript.status_code == 201
        assert b'"usageInfo":{"creditsConsumed":0.01}' in transcript.content
        body = {
            "context": [{"type": "string", "data": "x" * 101}],
            "templateKey": "soap",
            "outputLanguage": "en",
        }
        document = await http.post(f"{base}/documents/", json=body, headers=headers)
        assert document.status_code == 201
        assert b'"creditsConsumed":0.12' in document.content
        assert json.loads(document.content, parse_float=Decimal)["usageInfo"][
            "creditsConsumed"
        ] == Decimal("0.12")
        unstored = await http.post(
            f"{base}/documents/",
            json=body,
            headers={**headers, "X-Corti-Retention-Policy": "none"},
        )
        assert unstored.headers["X-Corti-Retention-Policy"] == "acknowledged"
        assert (
            len((await http.get(f"{base}/documents/", headers=headers)).json()["data"])
            == 1
        )
        status = await http.get(
            f"{base}/transcripts/{transcript.json()['id']}/status", headers=headers
        )
        assert status.json() == {"status": "completed"}
        assert (await http.delete(base, headers=headers)).status_code == 204

    @pytest.mark.asyncio
    async def test_tenants_are_isolated(self, http: httpx.AsyncClient) -> None:
        interaction_id = await _interaction(http, await _headers(http, "base"))
        other = await _headers(http, "acme")
        assert (
            await http.get(f"/v2/interactions/{interaction_id}", headers=other)
        ).status_code == 404
        assert (await http.get("/v2/interactions/", headers=other)).json() == {
            "interactions": []
        }


class TestControl:
    @pytest.mark.asyncio
    async def test_bad_fault_and_setting_are_refused(
        self, http: httpx.AsyncClient
    ) -> None:
        assert (
            await http.post("/_sandbox/faults", json={"kind": "meteor"})
        ).status_code == 400
        assert (
            await http.patch("/_sandbox/config", json={"nope": 1})
        ).status_code == 400
        config = (await http.get("/_sandbox/config")).json()
        assert config["token_expires_in"] == 300

    @pytest.mark.asyncio
    async def test_faults_count_down(
        self, http: httpx.AsyncClient, control: SandboxControl
    ) -> None:
        armed = await control.arm(
            {"kind": "error", "count": 2}, {"kind": "delay", "seconds": 0.01}
        )
        assert [f["remaining"] for f in armed] == [2, 1]
        headers = await _headers(http)
        codes = [
            (await http.get("/v2/interactions/", headers=headers)).status_code
            for _ in range(4)
        ]
        assert codes == [503, 503, 200, 200]
        assert [f["remaining"] for f in await control.faults()] == [0, 0]
        await control.clear_faults()
        assert await control.faults() == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_command_line_sandbox() -> None:
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service",
            "corti-sandbox",
            "--port",
            str(port),
            "--client-id",
            "cid",
            "--client-secret",
            "sec",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{url}/_sandbox/health", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "sandbox did not start"
                time.sleep(0.05)
        token_url = f"{url}/realms/base/protocol/openid-connect/token"
        wrong = httpx.post(
            token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": "cid",
                "client_secret": "x",
            },
        )
        assert wrong.status_code == 401
        right = httpx.post(
            token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": "cid",
                "client_secret": "sec",
            },
        )
        assert right.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_command_line_without_the_sandbox_says_how_to_install_it() -> None:
    # As in the image: `corti_sandbox` cannot be imported.
    code = (
        "import sys; sys.modules['corti_sandbox'] = None\n"
        "from service.__main__ import main; main(['corti-sandbox'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "the Corti sandbox is not installed" in done.stderr
    assert "pip install -e ./sandbox" in done.stderr
    assert "Traceback" not in done.stderr
