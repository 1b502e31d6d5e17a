"""Half-sent bodies are answered 408 instead of being held (issue 10 item 14)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from service.config import Settings
from service.db.session import Database
from tests.auth.helpers import new_key
from tests.fixtures.app import start_server, stop_server

pytestmark = pytest.mark.asyncio


async def _stall(
    url: str, headers: dict[str, str], sent: bytes, declared: int
) -> bytes:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        lines = [
            "POST /graphql HTTP/1.1",
            f"Host: {parts.netloc}",
            f"Content-Length: {declared}",
            *(f"{k}: {v}" for k, v in headers.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + sent)
        await writer.drain()
        async with asyncio.timeout(20):  # the server answers long before
            return await reader.readuntil(b"\r\n\r\n")
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("content_type", "first"),
    [
        ("application/json", b'{"query": "'),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{"qu',
        ),
    ],
)
async def test_a_stalled_body_is_408(
    database_url: str, db: Database, content_type: str, first: bytes
) -> None:
    _, key = await new_key(db, "admin")
    settings = Settings(database_url=database_url, body_read_timeout_seconds=0.5)
    uv, task, url = await start_server(settings)
    try:
        head = await _stall(
            url,
            {"Content-Type": content_type, "Authorization": f"Bearer {key}"},
            first,
            100_000,
        )
        assert head.startswith(b"HTTP/1.1 408"), head
    finally:
        await stop_server(uv, task)
