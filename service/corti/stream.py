"""Corti `/streams` websocket session: config, audio, end, usage, ENDED.

    async with client.open_stream(interaction_id, StreamConfig()) as session:
        await session.send_audio(chunk)          # binary frames, ~250 ms each
        result = await session.end()             # credits from `usage`

or in one call: `await run_stream(client, interaction_id, audio)`.

The URL is `{wss}/interactions/{id}/streams?tenant-name=..&token=Bearer%20..`.
Opening is retried like a REST call (401: one token refresh; 5xx/network:
backoff), since nothing is billed before audio flows. Once audio is sent the
session is never retried here: a close before the final `usage` message raises
`CortiStreamDropped` (retryable) and the caller decides. A refusal of the config
(`CONFIG_DENIED`, `CONFIG_MISSING`, `CONFIG_NOT_PROVIDED`, ...) raises
`CortiStreamRefused` (not retryable) carrying Corti's reason. Every wait has a
timeout (`StreamTimeouts`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, Self
from urllib.parse import quote, urlencode

from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from service.corti.exceptions import (
    CortiError,
    CortiStreamDropped,
    CortiStreamRefused,
    CortiUnavailable,
)
from service.corti.schemas import StreamFact, StreamTranscript, parse_json

if TYPE_CHECKING:
    from types import TracebackType

    from service.corti.client import CortiClient

logger = logging.getLogger(__name__)


class _RedactToken(logging.Filter):
    """Hide the `token=` query parameter in websockets' handshake debug lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = _TOKEN_IN_URL.sub(r"\1REDACTED", record.getMessage())
            record.args = None
        return True


_TOKEN_IN_URL = re.compile(r"(token=)[^&\s]+")
# websockets logs the request line (with the token) at DEBUG: give it our own
# logger, which redacts it.
_ws_logger = logging.getLogger(f"{__name__}.websocket")
_ws_logger.addFilter(_RedactToken())

AudioSource = bytes | AsyncIterable[bytes]

_ACCEPTED = {"CONFIG_ACCEPTED", "CONFIG_ALREADY_RECEIVED"}
_REFUSED = {
    "CONFIG_DENIED",
    "CONFIG_MISSING",
    "CONFIG_NOT_PROVIDED",
    "CONFIG_TIMEOUT",
    "CONFIG_REJECTED",
}


@dataclass(frozen=True, slots=True)
class StreamParticipantConfig:
    """A channel and its role for the stream config."""

    channel: int = 0
    role: Literal["doctor", "patient", "multiple"] = "multiple"


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """The `configuration` sent first on `/streams` (SDK 1.0.0 field names)."""

    primary_language: str = "en"
    mode: Literal["facts", "transcription"] = "facts"
    output_locale: str | None = None
    participants: tuple[StreamParticipantConfig, ...] = (StreamParticipantConfig(),)
    is_diarization: bool = False
    is_multichannel: bool = False
    retention_policy: Literal["retain", "none"] | None = None

    def to_wire(self) -> dict[str, Any]:
        """The `{"type": "config", "configuration": ...}` message."""
        mode: dict[str, Any] = {"type": self.mode}
        if self.output_locale:
            mode["outputLocale"] = self.output_locale
        configuration: dict[str, Any] = {
            "transcription": {
                "primaryLanguage": self.primary_language,
                "isDiarization": self.is_diarization,
                "isMultichannel": self.is_multichannel,
                "participants": [
                    {"channel": p.channel, "role": p.role} for p in self.participants
                ],
            },
            "mode": mode,
        }
        if self.retention_policy:
            configuration["X-Corti-Retention-Policy"] = self.retention_policy
        return {"type": "config", "configuration": configuration}


@dataclass(frozen=True, slots=True)
class StreamTimeouts:
    """Seconds allowed for each wait of a stream session."""

    open: float = 10.0
    config: float = 15.0
    send: float = 30.0
    end: float = 120.0
    close: float = 5.0


@dataclass(slots=True)
class StreamResult:
    """What a finished stream reported; `credits` is the final `usage`."""

    credits: Decimal
    last_delta: Decimal | None = None
    transcripts: list[StreamTranscript] = field(default_factory=list)
    facts: list[StreamFact] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    ended: bool = False


class StreamSession:
    """One `/streams` session; entering opens it and waits for CONFIG_ACCEPTED."""

    def __init__(
        self,
        client: CortiClient,
        interaction_id: str,
        config: StreamConfig | None = None,
        *,
        timeouts: StreamTimeouts | None = None,
    ) -> None:
        self._client = client
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

    def _url(self, token: str) -> str:
        query = urlencode(
            {"tenant-name": self._client.tenant_name, "token": f"Bearer {token}"},
            quote_via=quote,
        )
        interaction = quote(self.interaction_id, safe="")
        return f"{self._client.wss_url}/interactions/{interaction}/streams?{query}"

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
        retry = self._client.retry
        failures = 0
        refreshed = False
        what = f"/streams of interaction {self.interaction_id}"
        while True:
            token = await self._client.access_token()
            try:
                return await connect(
                    self._url(token),
                    open_timeout=self.timeouts.open,
                    close_timeout=self.timeouts.close,
                    max_size=2**22,
                    logger=_ws_logger,
                )
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status == 401 and not refreshed:
                    self._client.invalidate_token(token)
                    refreshed = True
                    continue
                error = CortiError.from_http(
                    status,
                    bytes(exc.response.body or b""),
                    exc.response.headers,
                    what=f"websocket {what}",
                )
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                # str(exc) is safe; the URL with its token is not in it.
                error = CortiUnavailable(f"cannot open {what}: {type(exc).__name__}")
            if not error.retryable:
                raise error
            failures += 1
            if failures >= retry.max_attempts:
                raise error
            delay = retry.delay(failures, error.retry_after)
            logger.warning(
                "Opening %s failed (%s); retrying in %.2fs", what, error, delay
            )
            await asyncio.sleep(delay)

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
                    f"stream closed before the config was accepted ({_close_text(exc)})"
                ) from exc
            message = _decode(raw)
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
                raise _stream_error(message, "before the config was accepted")

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
            return _stream_error({"error": self._errors[-1]}, "and the stream closed")
        if exc is not None:
            note = _close_text(exc)
        elif self._closed.is_set():
            note = self._close_note
        else:
            note = f"no {waiting_for} within {self.timeouts.end}s"
        return CortiStreamDropped(f"stream closed before {waiting_for} ({note})")

    async def _read_loop(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                self._handle(_decode(raw))
            self._close_note = _close_text_of(ws)
        except ConnectionClosed as exc:
            self._close_note = _close_text(exc)
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
                self._last_delta = _credits(message)
            elif kind == "usage":
                self._usage = _credits(message)
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
    client: CortiClient,
    interaction_id: str,
    audio: AudioSource,
    config: StreamConfig | None = None,
    *,
    chunk_bytes: int | None = None,
    chunk_interval: float = 0.0,
    timeouts: StreamTimeouts | None = None,
) -> StreamResult:
    """Run a whole stream: config, audio in ~250 ms chunks, end, usage."""
    size = chunk_bytes or client.stream_chunk_bytes
    async with StreamSession(
        client, interaction_id, config, timeouts=timeouts
    ) as session:
        async for chunk in _chunks(audio, size):
            await session.send_audio(chunk)
            if chunk_interval:
                await asyncio.sleep(chunk_interval)
        return await session.end()


async def _chunks(audio: AudioSource, size: int) -> AsyncIterator[bytes]:
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


def _decode(raw: str | bytes) -> dict[str, Any]:
    try:
        message = parse_json(raw)
    except ValueError:
        return {}
    return message if isinstance(message, dict) else {}


def _credits(message: dict[str, Any]) -> Decimal:
    value = message.get("credits")
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise TypeError(f"credits must be a number, not {value!r}")
    return Decimal(value)


def _stream_error(message: dict[str, Any], when: str) -> CortiError:
    error = message.get("error")
    error = error if isinstance(error, dict) else {}
    status = error.get("status")
    detail = error.get("details") or error.get("detail") or error.get("title")
    text = f"Corti stream error {when}: {detail or 'unknown'}"
    if isinstance(status, int):
        body = json.dumps({"detail": text}).encode()
        return CortiError.from_http(status, body, {}, what="/streams")
    return CortiStreamDropped(text, detail=str(detail) if detail else None)


def _close_text(exc: ConnectionClosed) -> str:
    frame = exc.rcvd
    if frame is None:
        return "no close frame"
    return f"close code {frame.code}" + (f" {frame.reason}" if frame.reason else "")


def _close_text_of(ws: ClientConnection) -> str:
    code = ws.close_code
    return "no close frame" if code is None else f"close code {code}"
