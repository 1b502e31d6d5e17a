"""Fault switches and the ASGI middleware that applies them to HTTP calls.

Faults are armed with `POST /_sandbox/faults` and each fires `count` times on
the matching requests, in the order they were armed:

- `error`: answer `status` (default 503) with Corti's error body, optionally
  with `Retry-After`; nothing is created or billed.
- `insufficient_balance`: answer 429 with `Retry-After` (default 1).
- `delay`: answer `seconds` late; by default the work (and any billing) is done
  first and only the answer waits, so a client timeout leaves it billed. With
  `path` matching `/streams` it delays the answer to a stream's config.
- `lose_answer`: do the work and bill it, then lose the answer: `mode` `drop`
  cuts the connection mid-body, `500` answers 500 with an empty body.
- `drop_stream`: the next `/streams` or `/transcribe` session closes with
  `close_code` (1011) and no `usage` once `after_bytes` of audio arrived (0: on
  `end`); unbilled.
- `delay_usage`: the next `/streams` or `/transcribe` session waits `seconds`
  after `end` before it sends `usage` (the running `delta_usage` figures have
  all been sent by then).
- `late_delta_usage`: the next `/streams` or `/transcribe` session sends one
  more `delta_usage` (with a larger figure) after `usage`, before `ENDED` /
  `ended`: a message out of order that a client must not count.
- `revoke_tokens`: not armed but done at once: every issued token stops working.

`method` and `path` (a substring of the URL path) narrow what a fault matches.
Without `path`, faults match REST calls (`/v2/`); `lose_answer` matches only
the billing calls: `POST .../transcripts/`, `POST .../documents/` (guided
documents too), `POST /v2/tools/extract-facts` and `POST /v2/tools/coding/`;
the websocket kinds match both `/streams` and `/transcribe`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from corti_sandbox._json import corti_error
from corti_sandbox._logging import mark_dropped

if TYPE_CHECKING:
    from corti_sandbox.state import SandboxState

FaultKind = Literal[
    "error",
    "insufficient_balance",
    "delay",
    "lose_answer",
    "drop_stream",
    "delay_usage",
    "late_delta_usage",
    "revoke_tokens",
]
SOCKET_FAULTS = {"drop_stream", "delay_usage", "late_delta_usage"}
BILLING_PATHS = (
    "/transcripts/",
    "/documents/",
    "/tools/extract-facts",
    "/tools/coding/",
)
HTTP_FAULTS = {"error", "insufficient_balance", "delay", "lose_answer"}


class Fault(BaseModel):
    """One fault switch (see the module docstring for each kind)."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    count: int = Field(default=1, ge=1)
    status: int = Field(default=503, ge=400, le=599)
    retry_after: int | None = Field(default=None, ge=0)
    seconds: float = Field(default=0.0, ge=0, le=300)
    before: bool = False
    mode: Literal["drop", "500"] = "drop"
    after_bytes: int = Field(default=0, ge=0)
    close_code: int = Field(default=1011, ge=1000, le=4999)
    method: str | None = None
    path: str | None = None
    remaining: int = -1

    @model_validator(mode="after")
    def _arm(self) -> Self:
        if self.remaining < 0:
            self.remaining = self.count
        return self

    def matches(self, method: str, path: str) -> bool:
        """Whether this fault applies to a request."""
        if self.method and self.method.upper() != method.upper():
            return False
        if self.path is not None:
            return self.path in path
        if self.kind == "lose_answer":
            return method == "POST" and path.endswith(BILLING_PATHS)
        if self.kind in SOCKET_FAULTS:
            return path.endswith(("/streams", "/transcribe"))
        return path.startswith("/v2/")


class FaultMiddleware:
    """Pure ASGI middleware applying HTTP faults and logging requests."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        status = 0

        async def send_logged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        fault = self.state.take_fault(HTTP_FAULTS, method, path)
        self.state.in_flight += 1
        try:
            if fault is None:
                await self.app(scope, receive, send_logged)
            elif await self._apply(fault, scope, receive, send_logged):
                status = 0  # dropped mid-answer
        finally:
            self.state.in_flight -= 1
            self.state.log_request(method, path, status)

    async def _apply(
        self, fault: Fault, scope: Scope, receive: Receive, send: Send
    ) -> bool:
        """Apply `fault`; True when the connection was dropped mid-answer."""
        response: Response
        if fault.kind == "error":
            headers = _retry_after(fault.retry_after)
            response = corti_error(
                fault.status, "Sandbox fault: service error", headers=headers
            )
            await response(scope, receive, send)
        elif fault.kind == "insufficient_balance":
            headers = _retry_after(
                1 if fault.retry_after is None else fault.retry_after
            )
            detail = "Insufficient balance: limited access mode, add credits"
            await corti_error(429, detail, headers=headers)(scope, receive, send)
        elif fault.kind == "delay" and fault.before:
            await asyncio.sleep(fault.seconds)
            await self.app(scope, receive, send)
        elif fault.kind == "delay":
            messages = await _buffered(self.app, scope, receive)
            await asyncio.sleep(fault.seconds)
            for message in messages:
                await send(message)
        elif fault.kind == "lose_answer":
            messages = await _buffered(self.app, scope, receive)
            if fault.mode == "500":
                await Response(status_code=500)(scope, receive, send)
                return False
            start = messages[0]
            body = b"".join(m.get("body", b"") for m in messages[1:])
            # Send half the declared body and stop: the server then closes the
            # connection, and the client sees it dropped mid-answer.
            await send(start)
            half = body[: len(body) // 2]
            await send({"type": "http.response.body", "body": half, "more_body": True})
            mark_dropped()
            return True
        return False


def _retry_after(seconds: int | None) -> dict[str, str]:
    return {} if seconds is None else {"Retry-After": str(seconds)}


async def _buffered(app: ASGIApp, scope: Scope, receive: Receive) -> list[Message]:
    messages: list[Message] = []

    async def collect(message: Message) -> None:
        messages.append(message)

    await app(scope, receive, collect)
    return messages


def fault_list(state: SandboxState) -> dict[str, Any]:
    """The armed faults as JSON."""
    return {"faults": [fault.model_dump() for fault in state.faults]}
