"""GraphQL over HTTP: conformance audit, media types, authentication, health."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest

from tests.fixtures.app import GraphQLClient, Server

pytestmark = pytest.mark.asyncio

AUDIT = Path(__file__).resolve().parents[3] / "shared" / "tools" / "graphql-audit"


async def test_graphql_over_http_audit_passes_every_check(
    server: Server, admin_key: str
) -> None:
    assert AUDIT.exists(), f"the audit tool is expected at {AUDIT}"
    process = await asyncio.create_subprocess_exec(
        str(AUDIT),
        f"{server.url}/graphql",
        env={**os.environ, "GRAPHQL_AUDIT_AUTH": f"Bearer {admin_key}"},
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
