"""Logs are JSON lines carrying the request id the client saw."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from service.logs import JsonFormatter
from tests.fixtures.app import GraphQLClient


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


@pytest.mark.asyncio
async def test_access_log_is_json_with_the_request_id(
    gql: GraphQLClient, json_log: io.StringIO
) -> None:
    response = await gql.post("{ tenants { totalCount } }")
    request_id = response.headers["x-request-id"]
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    access = [
        e
        for e in lines
        if e.get("message") == "request" and e.get("request_id") == request_id
    ]
    assert len(access) == 1, lines
    entry = access[0]
    assert entry["method"] == "POST"
    assert entry["path"] == "/graphql"
    assert entry["status"] == 200
    assert entry["level"] == "INFO"
    assert isinstance(entry["duration_ms"], float)


@pytest.mark.asyncio
async def test_a_client_request_id_is_kept(gql: GraphQLClient, admin_key: str) -> None:
    response = await gql.http.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={
            "Authorization": f"Bearer {admin_key}",
            "X-Request-Id": "trace-abc-123",
        },
    )
    assert response.headers["x-request-id"] == "trace-abc-123"
