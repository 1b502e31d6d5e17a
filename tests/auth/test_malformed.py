"""Malformed requests get a coded 400 and leave no traceback in the log (issue 10, 11)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from service.db.session import Database
from tests.auth.helpers import new_key

pytestmark = pytest.mark.asyncio

DEEP = 100_000


def _assert_coded(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("application/"), response.headers
    body: dict[str, Any] = response.json()
    assert [e["extensions"]["code"] for e in body["errors"]] == [code], body


def _assert_clean(log_lines: list[str]) -> None:
    for line in log_lines:
        assert "Traceback" not in line, line[:2000]
        assert '"level": "ERROR"' not in line, line[:2000]


BODIES = {
    "a string": b'"{ __typename }"',
    "a number": b"42",
    "null": b"null",
    "true": b"true",
    "a list": b'[{"query": "{ __typename }"}]',
    "deep lists": b'{"query": "{ __typename }", "variables": {"a": '
    + b"[" * DEEP
    + b"]" * DEEP
    + b"}}",
    "deep objects": b'{"extensions": ' + b'{"a": ' * DEEP + b"1" + b"}" * DEEP + b"}",
    "deep query": b"[" * DEEP,
    "not utf-8": b'{"query": "\xff\xfe"}',
    "not json": b"{query}",
    "query not a string": b'{"query": {"a": 1}}',
    "variables not an object": b'{"query": "{ __typename }", "variables": [1]}',
}


@pytest.mark.parametrize("shape", list(BODIES))
async def test_malformed_json_bodies_are_coded_400(
    shape: str, db: Database, api: httpx.AsyncClient, log_lines: list[str]
) -> None:
    _, key = await new_key(db, "reader")
    response = await api.post(
        "/graphql",
        content=BODIES[shape],
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    _assert_coded(response, 400, "BAD_USER_INPUT")
    _assert_clean(log_lines)
    ok = await api.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert ok.json()["data"] == {"__typename": "Query"}


async def test_without_a_key_a_malformed_body_is_401_unread(
    api: httpx.AsyncClient, log_lines: list[str]
) -> None:
    for body in BODIES.values():
        response = await api.post(
            "/graphql", content=body, headers={"Content-Type": "application/json"}
        )
        _assert_coded(response, 401, "UNAUTHENTICATED")
    _assert_clean(log_lines)


@pytest.mark.parametrize(
    "accept",
    [
        "application/graphql-response+jsonx",
        "text/application/graphql-response+json",
        "application/graphql-response+json;q=0, application/graphql-response+json2",
        "multipart/mixed-application/graphql-response+json",
        ",,,;;;",
    ],
)
async def test_odd_accept_headers(
    accept: str, db: Database, api: httpx.AsyncClient, log_lines: list[str]
) -> None:
    response = await api.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Accept": accept}
    )
    _assert_coded(response, 401, "UNAUTHENTICATED")
    _, key = await new_key(db, "reader")
    response = await api.post(
        "/graphql",
        json={"query": "{ __typename }"},
        headers={"Accept": accept, "Authorization": f"Bearer {key}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"] == {"__typename": "Query"}
    _assert_clean(log_lines)


MULTIPART_QUERY = (
    'mutation($a: Upload!) { requestStream(input: {interactionId: "nope", '
    "audio: $a}) { id } }"
)


def _multipart(
    fields: dict[str, tuple[str | None, bytes, str]],
) -> dict[str, tuple[str | None, bytes, str]]:
    return fields


MULTIPART_SHAPES: dict[str, dict[str, tuple[str | None, bytes, str]]] = {
    "operations as a file": {
        "operations": (
            "operations.json",
            json.dumps({"query": MULTIPART_QUERY, "variables": {"a": None}}).encode(),
            "application/json",
        ),
        "map": (None, b'{"0": ["variables.a"]}', "text/plain"),
        "0": ("a.webm", b"x" * 100, "audio/webm"),
    },
    "map as a file": {
        "operations": (
            None,
            json.dumps({"query": MULTIPART_QUERY, "variables": {"a": None}}).encode(),
            "text/plain",
        ),
        "map": ("map.json", b'{"0": ["variables.a"]}', "application/json"),
        "0": ("a.webm", b"x" * 100, "audio/webm"),
    },
    "operations a list": {
        "operations": (None, b"[1, 2]", "text/plain"),
        "map": (None, b"{}", "text/plain"),
    },
    "operations a string": {
        "operations": (None, b'"x"', "text/plain"),
        "map": (None, b"{}", "text/plain"),
    },
    "map a list": {
        "operations": (None, b'{"query": "{ __typename }"}', "text/plain"),
        "map": (None, b'[["variables.a"]]', "text/plain"),
    },
    "map paths not a list": {
        "operations": (
            None,
            json.dumps({"query": MULTIPART_QUERY, "variables": {"a": None}}).encode(),
            "text/plain",
        ),
        "map": (None, b'{"0": "variables.a"}', "text/plain"),
        "0": ("a.webm", b"x" * 100, "audio/webm"),
    },
    "map path into nothing": {
        "operations": (
            None,
            json.dumps({"query": MULTIPART_QUERY, "variables": {"a": None}}).encode(),
            "text/plain",
        ),
        "map": (None, b'{"0": ["variables.b.c.d", "x.9"]}', "text/plain"),
        "0": ("a.webm", b"x" * 100, "audio/webm"),
    },
    "map names a missing file": {
        "operations": (
            None,
            json.dumps({"query": MULTIPART_QUERY, "variables": {"a": None}}).encode(),
            "text/plain",
        ),
        "map": (None, b'{"7": ["variables.a"]}', "text/plain"),
    },
    "deep operations": {
        "operations": (None, b"[" * DEEP + b"]" * DEEP, "text/plain"),
        "map": (None, b"{}", "text/plain"),
    },
}


@pytest.mark.parametrize("shape", list(MULTIPART_SHAPES))
async def test_malformed_multipart_is_coded_400(
    shape: str, db: Database, api: httpx.AsyncClient, log_lines: list[str]
) -> None:
    _, key = await new_key(db, "admin")
    response = await api.post(
        "/graphql",
        files=MULTIPART_SHAPES[shape],
        headers={"Authorization": f"Bearer {key}"},
    )
    _assert_coded(response, 400, "BAD_USER_INPUT")
    _assert_clean(log_lines)


async def test_broken_multipart_framing_is_coded_400(
    db: Database, api: httpx.AsyncClient, log_lines: list[str]
) -> None:
    _, key = await new_key(db, "admin")
    for content_type, body in [
        ("multipart/form-data", b"--x\r\n"),
        ("multipart/form-data; boundary=x", b"garbage without a boundary"),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: bad\r\n"),
    ]:
        response = await api.post(
            "/graphql",
            content=body,
            headers={"Content-Type": content_type, "Authorization": f"Bearer {key}"},
        )
        _assert_coded(response, 400, "BAD_USER_INPUT")
    _assert_clean(log_lines)


async def test_other_shapes_are_coded(
    db: Database, api: httpx.AsyncClient, log_lines: list[str]
) -> None:
    _, key = await new_key(db, "reader")
    auth = {"Authorization": f"Bearer {key}"}
    no_type = await api.post("/graphql", content=b"{ __typename }", headers=auth)
    _assert_coded(no_type, 400, "BAD_USER_INPUT")
    text = await api.post(
        "/graphql",
        content=b"{ __typename }",
        headers={**auth, "Content-Type": "text/plain"},
    )
    _assert_coded(text, 400, "BAD_USER_INPUT")
    method = await api.put("/graphql", content=b"{}", headers=auth)
    assert method.status_code == 405
    bad_get = await api.get(
        "/graphql", params={"query": "{ __typename }", "variables": "[1"}, headers=auth
    )
    _assert_coded(bad_get, 400, "BAD_USER_INPUT")
    _assert_clean(log_lines)
