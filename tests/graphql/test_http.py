"""GraphQL over HTTP: conformance audit, media types, authentication, health.

The audit is graphql-http's `serverAudits` (npm, pinned with its lock file in
tools/graphql-http-audit, run by our audit.mjs there), installed with `npm ci`
into tools/graphql-http-audit/node_modules on first use (npm's cache in
.npm-cache there; both gitignored).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.fixtures.app import GraphQLClient, Server

pytestmark = pytest.mark.asyncio

TOOL = Path(__file__).resolve().parents[2] / "tools" / "graphql-http-audit"


def _audit_tool() -> Path:
    """tools/graphql-http-audit with graphql-http installed (npm ci, once)."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        message = (
            "!!! node/npm NOT FOUND: the GraphQL-over-HTTP audit did NOT run "
            "(install Node.js 18+ with npm; CI has it) !!!"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with (TOOL / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # test runs side by side install once
        if not (TOOL / "node_modules" / "graphql-http" / "package.json").exists():
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--cache", ".npm-cache"],
                cwd=TOOL,
                check=True,
                capture_output=True,
                timeout=300,
            )
    return TOOL / "audit.mjs"


async def test_graphql_over_http_audit_passes_every_check(
    server: Server, admin_key: str
) -> None:
    audit = await asyncio.to_thread(_audit_tool)
    process = await asyncio.create_subprocess_exec(
        "node",
        str(audit),
        f"{server.url}/graphql",
        env={**os.environ, "AUDIT_AUTHORIZATION": f"Bearer {admin_key}"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=300)
    text = output.decode()
    assert process.returncode == 0, text
    assert "warn=0 error=0 fatal=0" in text, text


async def test_graphql_response_media_type_gets_400_without_data(
    gql: GraphQLClient, admin_key: str
) -> None:
    response = await gql.http.post(
        "/graphql",
        json={"query": "{ nope }"},
        headers={
            "Authorization": f"Bearer {admin_key}",
            "Accept": "application/graphql-response+json",
        },
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith(
        "application/graphql-response+json"
    )
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_classic_json_clients_get_200_for_validation_errors(
    gql: GraphQLClient,
) -> None:
    response = await gql.post("{ nope }")
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_no_key_is_unauthenticated_with_401(gql: GraphQLClient) -> None:
    response = await gql.http.post("/graphql", json={"query": "{ __typename }"})
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_health_and_readiness(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ok"}
        assert ready.headers["x-request-id"]


async def test_a_number_too_long_to_parse_is_a_400_not_a_crash(
    gql: GraphQLClient, admin_key: str
) -> None:
    body = '{"query": "{ __typename }", "variables": {"n": ' + "9" * 5000 + "}}"
    response = await gql.http.post(
        "/graphql",
        content=body,
        headers={
            "Authorization": f"Bearer {admin_key}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 400
    assert "Traceback" not in response.text
