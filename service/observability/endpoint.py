"""The worker's `/metrics` endpoint: a minimal HTTP/1.1 server on its event loop.

It runs in the worker's own loop (not prometheus-client's thread server) so a
scrape can read the database-wide job figures with the worker's engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from service.observability.metrics import CONTENT_TYPE

log = logging.getLogger("service.metrics")

READ_TIMEOUT_SECONDS = 10.0


async def start_endpoint(
    host: str, port: int, render: Callable[[], Awaitable[bytes]]
) -> asyncio.Server:
    """Serve `GET /metrics` (the text of `render()`) on host:port."""

    async def handle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT_SECONDS):
                request = await reader.readuntil(b"\r\n\r\n")
            method, _, rest = request.partition(b" ")
            path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
            if method not in (b"GET", b"HEAD"):
                status, body, kind = "405 Method Not Allowed", b"", "text/plain"
            elif path != b"/metrics":
                status, body, kind = "404 Not Found", b"not found\n", "text/plain"
            else:
                status, body, kind = "200 OK", await render(), CONTENT_TYPE
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + (b"" if method == b"HEAD" else body))
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception:
            log.exception("metrics endpoint failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    return await asyncio.start_server(handle, host, port)
