"""Pure ASGI middleware: request ids, access logs and a request body limit."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.logs import request_id_var

log = logging.getLogger("service.http")

DRAIN_BYTES = 64 * 1024 * 1024
DRAIN_SECONDS = 10.0


class RequestContext:
    """Gives each request an id (X-Request-Id in and out) and logs it once."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = (
            dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        )
        request_id = (
            incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else ""
        )
        request_id = request_id or uuid.uuid4().hex
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status: dict[str, Any] = {"code": None}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if scope["type"] == "http" and scope.get("path") not in (
                "/healthz",
                "/readyz",
                "/metrics",
            ):
                log.info(
                    "request",
                    extra={
                        "method": scope.get("method"),
                        "path": scope.get("path"),
                        "status": status["code"],
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )
            request_id_var.reset(token)


class BodyLimit:
    """Answers 413 for bodies over the limit, before or while they stream in.

    Multipart requests (audio uploads) get `upload_limit`, everything else
    `limit`.
    """

    def __init__(self, app: ASGIApp, limit: int, upload_limit: int) -> None:
        self.app = app
        self.limit = limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        limit = (
            self.upload_limit if content_type.startswith("multipart/") else self.limit
        )
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            if headers.get(b"expect", b"").lower() != b"100-continue":
                await _drain(receive, int(declared))
            await _too_large(send, limit)
            return
        received = 0
        started = {"response": False}

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                started["response"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started["response"]:
                await _drain(receive, 0)
                await _too_large(send, limit)


class _TooLarge(Exception):
    pass


async def _drain(receive: Receive, declared: int) -> None:
    """Read and drop the rest of a refused body, bounded in bytes and time.

    Most clients (httpx, requests) read the answer only after sending the whole
    body; if the server answers and closes first, they get a connection reset
    instead of the 413. Bodies declared larger than DRAIN_BYTES are not read.
    """
    if declared > DRAIN_BYTES:
        return
    dropped = 0
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            while dropped <= DRAIN_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    return
                dropped += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
    except TimeoutError:
        return


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps(
        {
            "errors": [
                {
                    "message": f"request body is larger than {limit} bytes",
                    "extensions": {"code": "BAD_USER_INPUT"},
                }
            ]
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyTimeout:
    """Answers 408 when a request body stalls: no bytes for `idle` seconds.

    Bounds half-sent requests (slowloris bodies): each read of the body must
    bring data within `idle` seconds, and a JSON body must be complete within
    `total` seconds (uploads, which may be large, only have the idle bound).
    Request heads are bounded by service/http_protocol.py.
    """

    def __init__(self, app: ASGIApp, idle: float, total: float) -> None:
        self.app = app
        self.idle = idle
        self.total = total

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        upload = headers.get(b"content-type", b"").startswith(b"multipart/")
        loop = asyncio.get_running_loop()
        deadline = None if upload else loop.time() + self.total
        state = {"complete": False, "started": False}

        async def timed_receive() -> Message:
            if state["complete"]:
                return await receive()  # e.g. waiting for a disconnect
            budget = self.idle
            if deadline is not None:
                budget = min(budget, max(0.0, deadline - loop.time()))
            try:
                async with asyncio.timeout(budget):
                    message = await receive()
            except TimeoutError:
                raise _BodyTimedOut from None
            if message["type"] != "http.request" or not message.get("more_body"):
                state["complete"] = True
            return message

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        try:
            await self.app(scope, timed_receive, tracking_send)
        except _BodyTimedOut:
            log.info("request body timed out", extra={"idle_seconds": self.idle})
            if not state["started"]:
                await _answer(
                    send, 408, f"request body not received within {self.idle:g} s"
                )


class _BodyTimedOut(Exception):
    pass


async def _answer(send: Send, status: int, message: str) -> None:
    body = json.dumps(
        {"errors": [{"message": message, "extensions": {"code": "BAD_USER_INPUT"}}]}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
