"""uvicorn's HTTP protocol with a read timeout for the request line and headers.

uvicorn bounds the idle time between two requests on a keep-alive connection
(`timeout_keep_alive`) but not a request head that arrives slowly: a client that
connects and sends nothing, or half a header line, is held until it goes away
(issue 10 item 14). This protocol arms a timer when a connection opens and when
the first byte of each request arrives, and cancels it once the head is
complete; when it fires, the client gets `408 Request Timeout` and the
connection is closed. Bodies are bounded by `BodyTimeout` (service/middleware.py).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_408 = (
    b"HTTP/1.1 408 Request Timeout\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 29\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"request headers not received\n"
)


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """A request head must be complete within `header_timeout` seconds.

    The timer starts when the connection opens and again when a request's first
    byte arrives; keep-alive idleness between requests stays uvicorn's own
    `timeout_keep_alive`. With `header_timeout` unset the value comes from
    `HEADER_READ_TIMEOUT_SECONDS` (the form `serve --workers N` uses, where each
    process reads its settings from the environment).
    """

    header_timeout: ClassVar[float | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        timeout = self.header_timeout
        if timeout is None:
            from service.config import get_settings

            timeout = get_settings().header_read_timeout_seconds
        self._head_timeout = timeout

    @classmethod
    def with_timeout(cls, seconds: float) -> type[HeaderTimeoutProtocol]:
        """This protocol with a fixed timeout (one process, settings in hand)."""
        return type(cls.__name__, (cls,), {"header_timeout": seconds})

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(
                self._head_timeout, self._head_timed_out
            )

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # A pipelined head behind a request still being answered: writing a
            # 408 now would interleave with that response; end the connection
            # once it is sent instead.
            self.cycle.keep_alive = False
            return
        self.transport.write(_408)
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._cancel_head_timer()
        super().on_headers_complete()

    def handle_websocket_upgrade(self) -> None:
        self._cancel_head_timer()
        super().handle_websocket_upgrade()
