"""Corti `/transcribe` websocket (stateless dictation): config, audio, end, usage, ended.

    async with client.open_dictation(DictationConfig(), on_delta=f) as session:
        session.session_id                   # from CONFIG_ACCEPTED
        await session.send_audio(chunk)
        result = await session.end()         # credits from `usage`

The URL is `{wss}/transcribe?tenant-name=..&token=Bearer%20..`; opening is
retried like `/streams` (nothing is billed before audio flows). Order at the
close (docs/corti-api.md section 13): `end` -> remaining `transcript` /
`command` -> `usage` -> `ended` (lowercase) -> close. `delta_usage` is a running
total since the session started, never an increment: only the latest is kept
(and handed to `on_delta`), and one arriving after `usage` is ignored (counted
in `DictationResult.late_deltas`). A close before `usage` raises
`CortiStreamDropped`; a refused config raises `CortiStreamRefused`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Self

from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from service.corti import frames
from service.corti.exceptions import CortiError, CortiStreamDropped, CortiStreamRefused
from service.corti.stateless_schemas import (
    DictationCommandHit,
    DictationConfig,
    DictationTranscript,
)
from service.corti.stream_config import StreamTimeouts
from service.corti.transport import CortiTransport

if TYPE_CHECKING:
    from types import TracebackType

logger = logging.getLogger(__name__)

_REFUSED = {"CONFIG_DENIED", "CONFIG_MISSING", "CONFIG_TIMEOUT", "CONFIG_NOT_PROVIDED"}

OnDelta = Callable[[Decimal], None]


@dataclass(slots=True)
class DictationResult:
    """What a finished dictation reported; `credits` is the final `usage`."""

    session_id: str
    credits: Decimal
    last_delta: Decimal | None = None
    late_deltas: int = 0
    transcripts: list[DictationTranscript] = field(default_factory=list)
    commands: list[DictationCommandHit] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    ended: bool = False


class DictationSession:
    """One `/transcribe` session; entering opens it and waits for CONFIG_ACCEPTED."""

    def __init__(
        self,
        transport: CortiTransport,
        config: DictationConfig | None = None,
        *,
        timeouts: StreamTimeouts | None = None,
        on_delta: OnDelta | None = None,
    ) -> None:
        self._transport = transport
        self.config = config or DictationConfig()
        self.timeouts = timeouts or StreamTimeouts()
        self.session_id = ""
        self._on_delta = on_delta
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._usage: Decimal | None = None
        self._last_delta: Decimal | None = None
        self._late_deltas = 0
        self._transcripts: list[DictationTranscript] = []
        self._commands: list[DictationCommandHit] = []
        self._errors: list[dict[str, Any]] = []
        self._ended = asyncio.Event()
        self._closed = asyncio.Event()
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

    async def open(self) -> None:
        """Connect, send the config and wait for CONFIG_ACCEPTED (its sessionId)."""
        self._ws = await self._transport.connect(
            "/transcribe",
            what="/transcribe",
            open_timeout=self.timeouts.open,
            close_timeout=self.timeouts.close,
        )
        try:
            await self._configure(self._ws)
        except BaseException:
            await self._ws.close()
            raise
        self._reader = asyncio.create_task(self._read_loop(self._ws))

    async def _configure(self, ws: ClientConnection) -> None:
        await asyncio.wait_for(
            ws.send(json.dumps(self.config.message())), self.timeouts.send
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
                    "/transcribe closed before the config was accepted "
                    f"({frames.close_text(exc)})"
                ) from exc
            message = frames.decode(raw)
            kind = message.get("type")
            if kind in {"CONFIG_ACCEPTED", "CONFIG_ALREADY_RECEIVED"}:
                self.session_id = str(message.get("sessionId") or "")
                if not self.session_id:
                    raise CortiStreamDropped("CONFIG_ACCEPTED without a sessionId")
                return
            if kind in _REFUSED or kind == "ended":
                reason = message.get("reason")
                text = f"Corti refused the dictation config: {kind}"
                raise CortiStreamRefused(
                    f"{text} ({reason})" if reason else text,
                    detail=str(reason) if reason else str(kind),
                    error_type=str(kind),
                )
            if kind == "error":
                self._record_error(message)
                raise frames.stream_error(message, "before the config was accepted")

    async def send_audio(self, chunk: bytes) -> None:
        """Send one binary audio frame."""
        await self._send(chunk)

    async def end(self) -> DictationResult:
        """Send `end`, read until `usage` and `ended`, and return the result."""
        await self._send(json.dumps({"type": "end"}))
        await self._wait_ended()
        error = self._dropped() if self._usage is None else None
        await self.close()
        if error is not None:
            raise error
        return self.result()

    def result(self) -> DictationResult:
        """What was received so far (credits 0 until `usage` arrives)."""
        return DictationResult(
            session_id=self.session_id,
            credits=self._usage if self._usage is not None else Decimal(0),
            last_delta=self._last_delta,
            late_deltas=self._late_deltas,
            transcripts=list(self._transcripts),
            commands=list(self._commands),
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
            raise RuntimeError("dictation session is not open")
        if self._closed.is_set():
            raise self._dropped()
        try:
            await asyncio.wait_for(ws.send(data), self.timeouts.send)
        except ConnectionClosed as exc:
            raise self._dropped(frames.close_text(exc)) from exc
        except TimeoutError as exc:
            raise CortiStreamDropped(
                f"sending to /transcribe took over {self.timeouts.send}s"
            ) from exc

    async def _wait_ended(self) -> None:
        waiter = asyncio.ensure_future(self._ended.wait())
        closed = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait(
                {waiter, closed},
                timeout=self.timeouts.end,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            waiter.cancel()
            closed.cancel()

    def _dropped(self, note: str | None = None) -> CortiError:
        if self._errors:
            return frames.stream_error(
                {"error": self._errors[-1]}, "and /transcribe closed"
            )
        if note is None:
            note = (
                self._close_note
                if self._closed.is_set()
                else f"no usage within {self.timeouts.end}s"
            )
        return CortiStreamDropped(f"/transcribe closed before usage ({note})")

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
                    DictationTranscript.model_validate(i) for i in items
                )
            elif kind == "command":
                self._commands.append(
                    DictationCommandHit.model_validate(message.get("data"))
                )
            elif kind == "delta_usage":
                figure = frames.credits(message)
                if self._usage is not None:
                    # Out of order: the final figure is already known.
                    self._late_deltas += 1
                    logger.warning("Ignoring a delta_usage after usage on /transcribe")
                    return
                self._last_delta = figure
                if self._on_delta is not None:
                    self._on_delta(figure)
            elif kind == "usage":
                if self._usage is None:
                    self._usage = frames.credits(message)
            elif kind == "ended":
                self._ended.set()
            elif kind == "error":
                self._record_error(message)
        except (ValidationError, TypeError, ValueError) as exc:
            logger.warning(
                "Ignoring an unreadable %s message on /transcribe: %s", kind, exc
            )

    def _record_error(self, message: dict[str, Any]) -> None:
        error = message.get("error")
        self._errors.append(
            error if isinstance(error, dict) else {"details": str(error)}
        )
