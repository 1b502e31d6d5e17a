"""A minimal keep-alive HTTP/1.1 client over asyncio streams.

The client shares two cores with the server and PostgreSQL, so it must cost
as little CPU per request as possible: a general client (httpx) spends more
time per small request than the request itself takes on the server. This one
writes a prepared request and reads a Content-Length (or chunked) answer.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

IDLE_SECONDS = 4.0


class Connection:
    """One persistent connection; one request at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_used = 0.0

    async def open(self) -> None:
        """Connect."""
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        """Disconnect."""
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
            self.writer = None

    def prepare(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> bytes:
        """The bytes of a request (build them before the clock starts)."""
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Content-Length: {len(body)}",
        ]
        if body:
            lines.append("Content-Type: application/json")
        lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + body

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """Send prepared request bytes; the status and body of the answer."""
        if self.writer is not None and time.monotonic() - self.last_used > IDLE_SECONDS:
            # The server closes keep-alive connections idle this long (uvicorn
            # and node: 5 s); a slow step in between must not send into one.
            await self.close()
        if self.writer is None or self.reader is None:
            await self.open()
        assert self.writer is not None
        assert self.reader is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            body = b"".join(parts)
        else:
            body = await self.reader.read()
            await self.close()
        if headers.get("connection", "").lower() == "close":
            await self.close()
        self.last_used = time.monotonic()
        return status, body

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """Build and send one request."""
        return await self.send(self.prepare(method, path, body, headers))


async def drive(
    connections: Sequence[Connection],
    client: Callable[[Connection], Awaitable[None]],
) -> float:
    """Run `client` on every connection at once; seconds until all finished.

    The connections are closed afterwards, whatever happened.
    """
    started = time.perf_counter()
    try:
        await asyncio.gather(*(client(c) for c in connections))
    finally:
        elapsed = time.perf_counter() - started
        for connection in connections:
            await connection.close()
    return elapsed


def graphql_body(query: str, variables: dict[str, Any]) -> bytes:
    """A GraphQL-over-HTTP POST body."""
    return json.dumps({"query": query, "variables": variables}).encode()


class GraphQLError(RuntimeError):
    """A request that failed or answered with errors."""


def graphql_data(status: int, body: bytes) -> dict[str, Any]:
    """`data` of a successful answer; GraphQLError otherwise."""
    try:
        answer = json.loads(body)
    except ValueError:
        raise GraphQLError(f"HTTP {status}: {body[:300]!r}") from None
    if status != 200 or answer.get("errors"):
        raise GraphQLError(f"HTTP {status}: {json.dumps(answer.get('errors'))[:500]}")
    data: dict[str, Any] = answer["data"]
    return data
