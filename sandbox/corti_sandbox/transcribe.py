"""The `/transcribe` websocket: stateless dictation (docs/corti-api.md section 13).

Script: the client sends `{"type": "config", "configuration": {primaryLanguage,
...}}`; the sandbox answers `CONFIG_ACCEPTED` with a fresh `sessionId`, or
`CONFIG_DENIED` (bad config, unsupported language), `CONFIG_MISSING` (audio or
another message first) or `CONFIG_TIMEOUT` (nothing within `config_timeout`),
then closes with 1000. Every config status carries a `sessionId` (the SDK's
schema requires it). Every full second of audio (32 000 bytes) yields a final
`transcript` (`data` an object, times in seconds) and a `delta_usage` with the
running credits since the session started; the first segment also yields a
`command` for the config's first command, if it has one. `flush` emits the
partial second and answers `flushed`. `end` does the same, then sends
`usage{credits}` (0.015 per started second received), bills the session under
its `sessionId` (no interaction: the token's tenant), sends `ended`
(lowercase, as on Corti) and closes 1000. A session closed any other way is
not billed. The socket faults of faults.py (`drop_stream`, `delay_usage`,
`late_delta_usage`, and `delay` on the config answer) apply as on /streams.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from corti_sandbox._json import dumps
from corti_sandbox.faults import Fault
from corti_sandbox.oauth import Refusal, require_ws_auth, sandbox_state
from corti_sandbox.state import (
    AUDIO_BYTES_PER_SECOND,
    DICTATION_CREDITS_PER_SECOND,
    SandboxState,
    TokenRecord,
    dictation_credits,
    new_id,
)

IDLE_TIMEOUT_SECONDS = 300.0


async def transcribe_endpoint(websocket: WebSocket) -> None:
    """`/audio-bridge/v2/transcribe?tenant-name=..&token=..`."""
    state = sandbox_state(websocket)
    try:
        token = require_ws_auth(websocket)
    except Refusal as refusal:
        await websocket.send_denial_response(refusal.response)
        state.log_request("GET", websocket.url.path, refusal.response.status_code)
        return
    await websocket.accept()
    state.log_request("GET", websocket.url.path, 101)
    state.dictations_opened += 1
    session = _Dictation(websocket, state, token)
    state.in_flight += 1
    try:
        await session.run()
    except WebSocketDisconnect:
        pass
    finally:
        state.in_flight -= 1


class _Dictation:
    def __init__(
        self, websocket: WebSocket, state: SandboxState, token: TokenRecord
    ) -> None:
        self.ws = websocket
        self.state = state
        self.tenant = token.tenant
        self.session_id = new_id()
        self.received = 0
        self.emitted = 0
        self.segments = 0
        self.command_id: str | None = None
        self.drop: Fault | None = None
        self.slow_usage: Fault | None = None
        self.late_delta: Fault | None = None

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_text(dumps(message))

    async def status(self, kind: str, reason: str | None = None) -> None:
        message: dict[str, Any] = {"type": kind, "sessionId": self.session_id}
        if reason:
            message["reason"] = reason
        await self.send(message)

    async def refuse(self, kind: str, reason: str) -> None:
        await self.status(kind, reason)
        await self.ws.close(code=1000)

    async def run(self) -> None:
        try:
            first = await asyncio.wait_for(
                self.ws.receive(), self.state.config.config_timeout
            )
        except TimeoutError:
            await self.refuse("CONFIG_TIMEOUT", "no configuration received in time")
            return
        if first["type"] == "websocket.disconnect":
            return
        problem = self.configure(first)
        if problem is not None:
            await self.refuse(*problem)
            return
        path = self.ws.url.path
        slow = self.state.take_fault({"delay"}, "GET", path)
        if slow is not None:
            await asyncio.sleep(slow.seconds)
        await self.status("CONFIG_ACCEPTED")
        self.drop = self.state.take_fault({"drop_stream"}, "GET", path)
        self.slow_usage = self.state.take_fault({"delay_usage"}, "GET", path)
        self.late_delta = self.state.take_fault({"late_delta_usage"}, "GET", path)
        while True:
            try:
                message = await asyncio.wait_for(
                    self.ws.receive(), IDLE_TIMEOUT_SECONDS
                )
            except TimeoutError:
                await self.ws.close(code=1011)  # idle too long; not billed
                return
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                if await self.audio(message["bytes"]):
                    return
                continue
            if await self.command(message.get("text") or ""):
                return

    def configure(self, message: Mapping[str, Any]) -> tuple[str, str] | None:
        """Check the first message; a (refusal type, reason) pair if it is bad."""
        if message.get("text") is None:
            return ("CONFIG_MISSING", "the first message must be the config")
        try:
            data = json.loads(message["text"])
        except ValueError:
            return ("CONFIG_MISSING", "the first message is not JSON")
        if not isinstance(data, dict) or data.get("type") != "config":
            return ("CONFIG_MISSING", "the first message must be the config")
        configuration = data.get("configuration")
        if not isinstance(configuration, dict):
            return ("CONFIG_DENIED", "configuration is required")
        language = configuration.get("primaryLanguage")
        if not isinstance(language, str) or not language:
            return ("CONFIG_DENIED", "primaryLanguage is required")
        if language not in self.state.config.languages:
            return ("CONFIG_DENIED", "language unavailable")
        commands = configuration.get("commands")
        if commands is not None:
            if not isinstance(commands, list) or not all(
                isinstance(c, dict)
                and isinstance(c.get("id"), str)
                and isinstance(c.get("phrases"), list)
                for c in commands
            ):
                return ("CONFIG_DENIED", "commands need an id and phrases")
            if commands:
                self.command_id = commands[0]["id"]
        return None

    async def audio(self, chunk: bytes) -> bool:
        """Take audio; True when a drop fault ended the session."""
        self.received += len(chunk)
        if self.drop is not None and 0 < self.drop.after_bytes <= self.received:
            await self.ws.close(code=self.drop.close_code)
            return True
        while self.received - self.emitted >= AUDIO_BYTES_PER_SECOND:
            await self.emit(AUDIO_BYTES_PER_SECOND)
            if self.state.config.delta_usage:
                seconds = self.emitted // AUDIO_BYTES_PER_SECOND
                await self.send(
                    {
                        "type": "delta_usage",
                        "credits": DICTATION_CREDITS_PER_SECOND * seconds,
                    }
                )
        return False

    async def command(self, text: str) -> bool:
        """Handle a text message; True when the session is over."""
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        kind = data.get("type") if isinstance(data, dict) else None
        if kind == "config":
            await self.status("CONFIG_ALREADY_RECEIVED")
        elif kind == "flush":
            await self.emit(self.received - self.emitted)
            await self.send({"type": "flushed"})
        elif kind == "end":
            if self.drop is not None:
                await self.ws.close(code=self.drop.close_code)
                return True
            await self.emit(self.received - self.emitted)
            if self.slow_usage is not None:
                await asyncio.sleep(self.slow_usage.seconds)
            credits = dictation_credits(self.received)
            await self.send({"type": "usage", "credits": credits})
            self.state.bill_stateless(
                "dictation", self.session_id, self.tenant, credits
            )
            if self.late_delta is not None:
                late = credits + DICTATION_CREDITS_PER_SECOND
                await self.send({"type": "delta_usage", "credits": late})
            await self.send({"type": "ended"})
            await self.ws.close(code=1000)
            return True
        else:
            await self.send(
                {
                    "type": "error",
                    "error": {
                        "id": new_id(),
                        "title": "Unknown message",
                        "status": 400,
                        "details": f"unknown message type {kind!r}",
                        "doc": "",
                    },
                }
            )
        return False

    async def emit(self, n_bytes: int) -> None:
        """Turn the next `n_bytes` of audio into a transcript (and a command)."""
        if n_bytes <= 0:
            return
        start = Decimal(self.emitted) / AUDIO_BYTES_PER_SECOND
        self.emitted += n_bytes
        end = Decimal(self.emitted) / AUDIO_BYTES_PER_SECOND
        self.segments += 1
        text = f"Sandbox dictation segment {self.segments}."
        await self.send(
            {
                "type": "transcript",
                "data": {
                    "text": text,
                    "rawTranscriptText": text.lower(),
                    "start": start,
                    "end": end,
                    "isFinal": True,
                },
            }
        )
        if self.segments == 1 and self.command_id is not None:
            await self.send(
                {
                    "type": "command",
                    "data": {
                        "id": self.command_id,
                        "variables": None,
                        "rawTranscriptText": text.lower(),
                        "start": start,
                        "end": end,
                    },
                }
            )
