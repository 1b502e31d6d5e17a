"""Uploads: the caller is known before the body is read; forms never leak files."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx
import pytest

from service.auth.webhooks import sign
from service.db.session import Database
from tests.auth.helpers import new_key
from tests.fixtures.app import Server

pytestmark = pytest.mark.asyncio

BOUNDARY = "----ledger-test"
DECLARED = 100 * 1024 * 1024  # announced, never sent


async def _first_answer(
    server: Server,
    headers: dict[str, str],
    first_bytes: bytes,
    declared: int = DECLARED,
) -> bytes:
    """Send the headers and a sliver of a 100 MB body, then read the status line.

    The server must answer from the headers: if it waited for the body, no
    answer would come and the read below would time out.
    """
    url = urlsplit(server.url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        lines = [
            "POST /graphql HTTP/1.1",
            f"Host: {url.netloc}",
            f"Content-Length: {declared}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + first_bytes)
        await writer.drain()
        async with asyncio.timeout(20):
            return await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()


MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
PART = (
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
    '{"query": "mutation { __typename }"}\r\n'
    f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="0"; filename="a"\r\n\r\n'
).encode() + b"x" * 4096


async def test_no_key_multipart_is_401_before_the_body(server: Server) -> None:
    head = await _first_answer(server, MULTIPART, PART)
    assert head.startswith(b"HTTP/1.1 401"), head


async def test_bad_key_multipart_is_401_before_the_body(server: Server) -> None:
    headers = {**MULTIPART, "Authorization": "Bearer cul_nope_nope"}
    head = await _first_answer(server, headers, PART)
    assert head.startswith(b"HTTP/1.1 401"), head


async def test_reader_multipart_is_403_before_the_body(
    server: Server, db: Database
) -> None:
    _, key = await new_key(db, "reader")
    headers = {**MULTIPART, "Authorization": f"Bearer {key}"}
    head = await _first_answer(server, headers, PART)
    assert head.startswith(b"HTTP/1.1 403"), head


async def test_signed_multipart_is_refused_before_the_body(server: Server) -> None:
    signature = sign("whsec-test-one", PART)
    headers = {**MULTIPART, "X-Webhook-Signature": signature}
    head = await _first_answer(server, headers, PART)
    assert head.startswith(b"HTTP/1.1 401"), head


async def test_no_key_json_is_401_before_the_body(server: Server) -> None:
    headers = {"Content-Type": "application/json"}
    body = b'{"query": "' + b"x" * 4096
    head = await _first_answer(server, headers, body, declared=1024 * 1024)
    assert head.startswith(b"HTTP/1.1 401"), head


def _temp_fds() -> set[str]:
    """Open descriptors of this process (the server runs in it) on temp files."""
    temp = os.path.realpath(tempfile.gettempdir())
    found: set[str] = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith((temp, "/tmp/")):
            found.add(f"{fd}:{target}")
    return found


@contextmanager
def _no_gc() -> Iterator[None]:
    """Files must be closed by the code, not whenever the collector runs."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


REQUESTS = 4
AUDIO = b"\x00" * (3 * 1024 * 1024)  # over Starlette's 1 MiB in-memory spool


@pytest.mark.parametrize(
    "operations",
    [
        # Refused by validation: the upload never reaches a resolver.
        {"query": "mutation($a: Upload!) { nope(a: $a) }", "variables": {"a": None}},
        {"query": "mutation($a: Upload!) {", "variables": {"a": None}},
        # Runs and fails in the resolver (unknown interaction).
        {
            "query": 'mutation($a: Upload!) { requestStream(input: {interactionId: "x", '
            "audio: $a}) { id } }",
            "variables": {"a": None},
        },
        # Malformed map: refused after parsing the form.
        {"query": "mutation { __typename }", "variables": 7},
    ],
)
async def test_every_parsed_form_is_closed(
    server: Server, db: Database, operations: dict[str, object]
) -> None:
    _, key = await new_key(db, "admin")
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as http:
        await http.get("/healthz")
        with _no_gc():
            before = _temp_fds()
            for _ in range(REQUESTS):
                response = await http.post(
                    "/graphql",
                    data={
                        "operations": json.dumps(operations),
                        "map": json.dumps({"0": ["variables.a"]}),
                    },
                    files={"0": ("a.webm", AUDIO, "audio/webm")},
                    headers={"Authorization": f"Bearer {key}"},
                )
                assert response.status_code in (200, 400), response.text
                assert response.json()["errors"], response.text
            after = _temp_fds()
    # One request's form left open would show as REQUESTS new descriptors; allow
    # one unrelated temp file that another part of the process may open meanwhile.
    assert len(after - before) < REQUESTS - 2, after - before
