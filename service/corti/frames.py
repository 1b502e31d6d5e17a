"""Reading Corti's websocket frames: JSON messages, credits, errors, close codes.

Shared by every Corti websocket session (`/streams` now, `/transcribe` next);
opening the socket is `CortiTransport.connect`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from service.corti.exceptions import CortiError, CortiStreamDropped
from service.corti.schemas import parse_json
from service.corti.stream_config import AudioSource


async def chunks(audio: AudioSource, size: int) -> AsyncIterator[bytes]:
    """Cut bytes or an async byte stream into frames of `size` bytes."""
    if isinstance(audio, bytes):
        for start in range(0, len(audio), size):
            yield audio[start : start + size]
        return
    pending = b""
    async for piece in audio:
        pending += piece
        while len(pending) >= size:
            yield pending[:size]
            pending = pending[size:]
    if pending:
        yield pending


def decode(raw: str | bytes) -> dict[str, Any]:
    try:
        message = parse_json(raw)
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}


def credits(message: dict[str, Any]) -> Decimal:
    value = message.get("credits")
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"credits must be a number, not {value!r}")
    return Decimal(value)


def stream_error(message: dict[str, Any], when: str) -> CortiError:
    error = message.get("error")
    error = error if isinstance(error, dict) else {}
    status = error.get("status")
    detail = error.get("details") or error.get("detail") or error.get("title")
    text = f"Corti stream error {when}: {detail or 'unknown'}"
    if isinstance(status, int):
        body = json.dumps({"detail": text}).encode()
        return CortiError.from_http(status, body, {}, what="/streams")
    return CortiStreamDropped(text, detail=str(detail) if detail else None)


def close_text(exc: ConnectionClosed) -> str:
    frame = exc.rcvd
    if frame is None:
        return "no close frame"
    return f"close code {frame.code}" + (f" {frame.reason}" if frame.reason else "")


def close_text_of(ws: ClientConnection) -> str:
    code = ws.close_code
    return "no close frame" if code is None else f"close code {code}"
