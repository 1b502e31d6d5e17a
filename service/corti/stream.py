"""Corti `/streams` websocket session: config, audio, end, usage, ENDED.

    async with client.open_stream(interaction_id, StreamConfig()) as session:
        await session.send_audio(chunk)          # binary frames, ~250 ms each
        result = await session.end()             # credits from `usage`

or in one call: `await client.stream(interaction_id, audio)`
(`run_stream(transport, ...)` underneath).

The URL is `{wss}/interactions/{id}/streams?tenant-name=..&token=Bearer%20..`.
Opening goes through `CortiTransport.connect`, retried like a REST call (401:
one token refresh; 5xx/network: backoff), since nothing is billed before audio
flows. Once audio is sent the session is never retried here: a close before
the final `usage` message raises `CortiStreamDropped` (retryable) and the
caller decides. `delta_usage` is a running total: only the latest is kept
(and handed to `on_delta`); one after `usage` is ignored (`late_deltas`).
A refusal of the config (`CONFIG_DENIED`, `CONFIG_MISSING`,
`CONFIG_NOT_PROVIDED`, ...) raises `CortiStreamRefused` (not retryable)
carrying Corti's reason. Every wait has a timeout (`StreamTimeouts`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import quote

from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from service.corti import frames
from service.corti.exceptions import (
    CortiError,
    CortiStreamDropped,
    CortiStreamRefused,
)
from service.corti.schemas import StreamFact, StreamTranscript
from service.corti.stream_config import (
    DEFAULT_CHUNK_BYTES,
    AudioSource,
    StreamConfig,
    StreamParticipantConfig,
    StreamResult,
    StreamTimeouts,
)
from service.corti.transport import CortiTransport

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "AudioSource",
    "StreamConfig",
    "StreamParticipantConfig",
    "StreamResult",
    "StreamSession",
    "StreamTimeouts",
    "run_stream",
]

logger = logging.getLogger(__name__)

_ACCEPTED = {"CONFIG_ACCEPTED", "CONFIG_ALREADY_RECEIVED"}
_REFUSED = {
    "CONFIG_DENIED",
    "CONFIG_MISSING",
    "CONFIG_NOT_PROVIDED",
    "CONFIG_TIMEOUT",
    "CONFIG_REJECTED",
}


class StreamSession:
    """One `/streams` session; entering opens it and waits for CONFIG_ACCEPTED."""

    def __init__(
        self,
        transport: CortiTransport,
        interaction_id: str,
        config: StreamConfig | None = None,
        *,
        timeouts: StreamTimeouts | None = None,
        on_delta: Callable[[Decimal], None] | None = None,
    ) -> None:
        self._transport = transport
        self._on_delta = on_delta
        self._late_deltas = 0
        self.interaction_id = interaction_id
        self.config = config or StreamConfig()
        self.timeouts = timeouts or StreamTimeouts()
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._usage: Decimal | None = None
        self._last_delta: Decimal | None = None
        self._transcripts: list[StreamTranscript] = []
        self._facts: list[StreamFact] = []
        self._errors: list[dict[str, Any]] = []
        self._ended = asyncio.Event()
        self._closed = asyncio.Event()
        self._flushed = asyncio.Event()
        self._close_note = ""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- opening -------------------------------------------------------------

    async def open(self) -> None:
        """Connect, send the config and wait for CONFIG_ACCEPTED."""
        self._ws = await self._connect()
        try:
            await self._configure(self._ws)
        except BaseException:
            await self._ws.close()
            raise
        self._reader = asyncio.create_task(self._read_loop(self._ws))

    async def _connect(self) -> ClientConnection:
        interaction = quote(self.interaction_id, safe="")
        return await self._transport.connect(
            f"/interactions/{interaction}/streams",
            what=f"/streams of interaction {self.interaction_id}",
            open_timeout=self.timeouts.open,
            close_timeout=self.timeouts.close,
        )

    async def _configure(self, ws: ClientConnection) -> None:
        await asyncio.wait_for(
            ws.send(json.dumps(self.config.to_wire())), self.timeouts.send
        )
        while True:
            try:
                raw = await asyncio.wait_for(ws.recv(), self.timeouts.config)
            except TimeoutError as exc:
                raise CortiStreamDropped(
                    f"no config answer within {self.timeouts.config}s"
                ) from exc
            except ConnectionClosed as exc:
                raise CortiStreamDropped(
                    f"stream closed before the config was accepted ({frames.close_text(exc)})"
                ) from exc
            message = frames.decode(raw)
            kind = message.get("type")
            if kind in _ACCEPTED:
                return
            if kind in _REFUSED or kind == "ENDED":
                reason = message.get("reason")
                text = f"Corti refused the stream config: {kind}"
                raise CortiStreamRefused(
                    f"{text} ({reason})" if reason else text,
                    detail=str(reason) if reason else str(kind),
                    error_type=str(kind),
                )
            if kind == "error":
                self._record_error(message)
                raise frames.stream_error(message, "before the config was accepted")

    # --- running -------------------------------------------------------------

    async def send_audio(self, chunk: bytes) -> None:
        """Send one binary audio frame."""
        await self._send(chunk)

    async def flush(self) -> None:
        """Send `flush` and wait for `flushed`."""
        self._flushed.clear()
        await self._send(json.dumps({"type": "flush"}))
        if not await self._wait_for(self._flushed, self.timeouts.end):
            error = self._dropped(waiting_for="flushed")
            await self.close()
            raise error

    async def end(self) -> StreamResult:
        """Send `end`, read until `usage` and `ENDED`, and return the result.

        The `usage` message is what counts: if the socket closes or the wait
        times out after it but before `ENDED`, the result is still returned.
        """
        await self._send(json.dumps({"type": "end"}))
        await self._wait_for(self._ended, self.timeouts.end)
        error = self._dropped(waiting_for="usage") if self._usage is None else None
        await self.close()
        if error is not None:
            raise error
        return self.result()

    def result(self) -> StreamResult:
        """What was received so far (credits 0 until `usage` arrives)."""
        return StreamResult(
            credits=self._usage if self._usage is not None else Decimal(0),
            last_delta=self._last_delta,
            late_deltas=self._late_deltas,
            transcripts=list(self._transcripts),
            facts=list(self._facts),
            errors=list(self._errors),
            ended=self._ended.is_set(),
        )

    async def close(self) -> None:
        """Close the socket and stop the reader (safe to call twice)."""
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, self.timeouts.close)
            except TimeoutError:
                self._reader.cancel()

    async def _send(self, data: bytes | str) -> None:
        ws = self._ws
        if ws is None:
            raise RuntimeError("stream session is not open")
        if self._closed.is_set():
            raise self._dropped()
        try:
            await asyncio.wait_for(ws.send(data), self.timeouts.send)
        except ConnectionClosed as exc:
            raise self._dropped(exc) from exc
        except TimeoutError as exc:
            raise CortiStreamDropped(
                f"sending to the stream took over {self.timeouts.send}s"
            ) from exc

    async def _wait_for(self, event: asyncio.Event, within: float) -> bool:
        """Wait for `event`; False if the socket closed or `within` ran out."""
        waiter = asyncio.ensure_future(event.wait())
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait(
                {waiter, closed}, timeout=within, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()
            closed.cancel()
        return event.is_set()

    def _dropped(
        self, exc: ConnectionClosed | None = None, *, waiting_for: str = "usage"
    ) -> CortiError:
        if self._errors:
            return frames.stream_error(
                {"error": self._errors[-1]}, "and the stream closed"
            )
        if exc is not None:
            note = frames.close_text(exc)
        elif self._closed.is_set():
            note = self._close_note
        else:
            note = f"no {waiting_for} within {self.timeouts.end}s"
        return CortiStreamDropped(f"stream closed before {waiting_for} ({note})")

    async def _read_loop(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                self._handle(frames.decode(raw))
            self._close_note = frames.close_text_of(ws)
        except ConnectionClosed as exc:
            self._close_note = frames.close_text(exc)
        finally:
            self._closed.set()

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        try:
            if kind == "transcript":
                data = message.get("data") or []
                items = data if isinstance(data, list) else [data]
                self._transcripts.extend(
                    StreamTranscript.model_validate(i) for i in items
                )
            elif kind == "facts":
                facts = message.get("fact", message.get("data")) or []
                self._facts.extend(StreamFact.model_validate(f) for f in facts)
            elif kind == "delta_usage":
                figure = frames.credits(message)
                if self._usage is not None:
                    # Out of order: the final figure is already known.
                    self._late_deltas += 1
                    logger.warning("Ignoring a delta_usage after usage on /streams")
                    return
                self._last_delta = figure
                if self._on_delta is not None:
                    self._on_delta(figure)
            elif kind == "usage":
                if self._usage is None:
                    self._usage = frames.credits(message)
            elif kind == "ENDED":
                self._ended.set()
            elif kind == "flushed":
                self._flushed.set()
            elif kind == "error":
                self._record_error(message)
        except (ValidationError, TypeError, ValueError) as exc:
            logger.warning(
                "Ignoring an unreadable %s message on /streams: %s", kind, exc
            )

    def _record_error(self, message: dict[str, Any]) -> None:
        error = message.get("error")
        self._errors.append(
            error if isinstance(error, dict) else {"details": str(error)}
        )


async def run_stream(
    transport: CortiTransport,
    interaction_id: str,
    audio: AudioSource,
    config: StreamConfig | None = None,
    *,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    chunk_interval: float = 0.0,
    timeouts: StreamTimeouts | None = None,
) -> StreamResult:
    """Run a whole stream: config, audio in ~250 ms chunks, end, usage."""
    async with StreamSession(
        transport, interaction_id, config, timeouts=timeouts
    ) as session:
        async for chunk in frames.chunks(audio, chunk_bytes):
            await session.send_audio(chunk)
            if chunk_interval:
                await asyncio.sleep(chunk_interval)
        return await session.end()
