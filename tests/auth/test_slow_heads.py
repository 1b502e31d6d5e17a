"""Half-sent request heads are answered 408 and closed (issue 10 item 14).

Before service/http_protocol.py, uvicorn held each of these connections until
the client went away (the first two tests waited out their 20 s guard).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from service.config import Settings
from tests.fixtures.app import start_server, stop_server

pytestmark = pytest.mark.asyncio

GUARD = 20  # seconds; the server answers after header_read_timeout_seconds (1)


async def _send_and_read(url: str, pieces: list[bytes], pause: float) -> bytes:
    """Send `pieces` with `pause` between them; everything the server sends."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(pause)
        async with asyncio.timeout(GUARD):
            return await reader.read()  # until the server closes
    finally:
        writer.close()


@pytest.mark.parametrize(
    "sent",
    [
        b"",  # connects, sends nothing
        b"GET /heal",  # half a request line
        b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: appl",  # half a header
    ],
    ids=["nothing", "half-line", "half-header"],
)
async def test_a_stalled_head_is_408_and_closed(database_url: str, sent: bytes) -> None:
    settings = Settings(database_url=database_url, header_read_timeout_seconds=1.0)
    uv, task, url = await start_server(settings)
    try:
        answer = await _send_and_read(url, [sent] if sent else [], 0)
        assert answer.startswith(b"HTTP/1.1 408 "), answer
        assert b"connection: close" in answer.lower()
    finally:
        await stop_server(uv, task)


async def test_a_head_in_pieces_within_the_timeout_is_served(database_url: str) -> None:
    settings = Settings(database_url=database_url, header_read_timeout_seconds=2.0)
    uv, task, url = await start_server(settings)
    try:
        head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        pieces = [head[i : i + 8] for i in range(0, len(head), 8)]
        answer = await _send_and_read(url, pieces, 0.05)  # ~0.4 s in all
        assert answer.startswith(b"HTTP/1.1 200 "), answer
    finally:
        await stop_server(uv, task)


async def test_each_request_on_a_keep_alive_connection_is_timed(
    database_url: str,
) -> None:
    """The timer restarts with each request: a served request leaves no timer
    behind, and a second head that stalls gets its own 408."""
    settings = Settings(database_url=database_url, header_read_timeout_seconds=1.0)
    uv, task, url = await start_server(settings)
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        async with asyncio.timeout(GUARD):
            first = await reader.readuntil(b"\r\n\r\n")
        assert first.startswith(b"HTTP/1.1 200 "), first
        writer.write(b"GET /healthz HTTP/1.1\r\nHo")
        await writer.drain()
        async with asyncio.timeout(GUARD):
            rest = await reader.read()
        assert b"HTTP/1.1 408 " in rest, rest
    finally:
        writer.close()
        await stop_server(uv, task)
