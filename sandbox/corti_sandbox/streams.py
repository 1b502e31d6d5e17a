"""The `/streams` websocket: config, audio -> transcripts and facts, end -> usage.

Script (docs/corti-api.md section 12): the client sends its config; the sandbox
answers `CONFIG_ACCEPTED`, or `CONFIG_DENIED` with a reason (bad config,
unsupported language), `CONFIG_MISSING` (audio or another message first) or
`CONFIG_NOT_PROVIDED` (nothing within `config_timeout`), then closes with 1000.
Every full second of audio (32 000 bytes) yields a final `transcript` segment,
a `facts` message in facts mode, and a `delta_usage` with the running credits.
`flush` emits the partial second and answers `flushed`. `end` does the same,
then sends `usage{credits}`, bills the stream, sends `ENDED` and closes 1000.
A session closed any other way is not billed. The `delay_usage` and
`late_delta_usage` faults (faults.py) delay `usage` or send a `delta_usage`
after it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from corti_sandbox._json import corti_error, dumps
from corti_sandbox.faults import Fault
from corti_sandbox.oauth import Refusal, require_ws_auth, sandbox_state
from corti_sandbox.state import (
    AUDIO_BYTES_PER_SECOND,
    STREAM_CREDITS_PER_SECOND,
    InteractionRecord,
    SandboxState,
    new_id,
    now_iso,
    stream_credits,
)

IDLE_TIMEOUT_SECONDS = 300.0


async def streams_endpoint(websocket: WebSocket) -> None:
    """`/audio-bridge/v2/interactions/{id}/streams?tenant-name=..&token=..`."""
    state = sandbox_state(websocket)
    interaction_id = websocket.path_params["interaction_id"]
    try:
        token = require_ws_auth(websocket)
        interaction = state.interactions.get(interaction_id)
        if interaction is None or interaction.tenant != token.tenant:
            raise Refusal(corti_error(404, f"Interaction {interaction_id} not found"))
    except Refusal as refusal:
        # Refused before the upgrade, as Corti does.
        await websocket.send_denial_response(refusal.response)
        state.log_request("GET", websocket.url.path, refusal.response.status_code)
        return
    await websocket.accept()
    state.log_request("GET", websocket.url.path, 101)
    state.streams_opened += 1
    session = _Session(websocket, state, interaction)
    state.in_flight += 1
    try:
        await session.run()
    except WebSocketDisconnect:
        pass
    finally:
        state.in_flight -= 1


class _Session:
    def __init__(
        self, websocket: WebSocket, state: SandboxState, interaction: InteractionRecord
    ) -> None:
        self.ws = websocket
        self.state = state
        self.interaction = interaction
        self.id = new_id()
        self.received = 0
        self.emitted = 0  # bytes already turned into transcript segments
        self.segments = 0
        self.mode = "facts"
        self.drop: Fault | None = None
        self.slow_usage: Fault | None = None
        self.late_delta: Fault | None = None

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_text(dumps(message))

    async def refuse(self, kind: str, reason: str | None = None) -> None:
        message = {"type": kind}
        if reason:
            message["reason"] = reason
        await self.send(message)
        await self.ws.close(code=1000)

    async def run(self) -> None:
        try:
            first = await asyncio.wait_for(
                self.ws.receive(), self.state.config.config_timeout
            )
        except TimeoutError:
            await self.refuse(
                "CONFIG_NOT_PROVIDED", "no configuration received in time"
            )
            return
        if first["type"] == "websocket.disconnect":
            return
        problem = self.configure(first)
        if problem is not None:
            await self.refuse(*problem)
            return
        slow = self.state.take_fault({"delay"}, "GET", self.ws.url.path)
        if slow is not None:
            await asyncio.sleep(slow.seconds)
        await self.send({"type": "CONFIG_ACCEPTED"})
        path = self.ws.url.path
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
        transcription = configuration.get("transcription")
        mode = configuration.get("mode")
        if not isinstance(transcription, dict) or not isinstance(mode, dict):
            return ("CONFIG_DENIED", "transcription and mode are required")
        language = transcription.get("primaryLanguage")
        if not isinstance(language, str) or not language:
            return ("CONFIG_DENIED", "transcription.primaryLanguage is required")
        if not isinstance(transcription.get("participants"), list):
            return ("CONFIG_DENIED", "transcription.participants is required")
        if mode.get("type") not in {"facts", "transcription"}:
            return ("CONFIG_DENIED", "mode.type must be facts or transcription")
        languages = self.state.config.languages
        locale = mode.get("outputLocale")
        if language not in languages or (
            locale is not None and locale not in languages
        ):
            return ("CONFIG_DENIED", "language unavailable")
        self.mode = mode["type"]
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
                        "credits": STREAM_CREDITS_PER_SECOND * seconds,
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
            await self.send({"type": "CONFIG_ALREADY_RECEIVED"})
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
            credits = stream_credits(self.received)
            await self.send({"type": "usage", "credits": credits})
            self.state.bill("stream", self.id, self.interaction, credits)
            if self.late_delta is not None:
                late = credits + STREAM_CREDITS_PER_SECOND
                await self.send({"type": "delta_usage", "credits": late})
            await self.send({"type": "ENDED"})
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
        """Turn the next `n_bytes` of audio into a transcript (and a fact)."""
        if n_bytes <= 0:
            return
        start = Decimal(self.emitted) / AUDIO_BYTES_PER_SECOND
        self.emitted += n_bytes
        end = Decimal(self.emitted) / AUDIO_BYTES_PER_SECOND
        self.segments += 1
        segment = {
            "id": new_id(),
            "transcript": f"Sandbox stream segment {self.segments}.",
            "final": True,
            "speakerId": -1,
            "participant": {"channel": 0},
            "time": {"start": start, "end": end},
        }
        await self.send({"type": "transcript", "data": [segment]})
        if self.mode == "facts":
            created = now_iso()
            fact = {
                "id": new_id(),
                "text": f"Sandbox fact from segment {self.segments}.",
                "group": "other",
                "groupId": "00000000-0000-4000-8000-000000000001",
                "isDiscarded": False,
                "source": "core",
                "createdAt": created,
                "updatedAt": created,
            }
            await self.send({"type": "facts", self.state.config.facts_key: [fact]})
