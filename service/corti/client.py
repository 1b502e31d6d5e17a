"""CortiClient: the REST side of Corti (httpx), with OAuth and a retry policy.

Retry policy, per call:
- 401: forget the token, fetch a new one, and retry once.
- 408, 5xx, timeouts and network errors: retry with capped exponential backoff
  and jitter, honouring `Retry-After`, up to `RetryPolicy.max_attempts` tries.
- 429 (Corti: "insufficient balance"): a few tries, then `CortiInsufficientBalance`.
- any other 4xx: raised at once.

Billing creates are special. `create_transcript` and `generate_document` bill
credits at Corti and are not idempotent, so the client never repeats them once
the request may have reached Corti: a timeout, a dropped connection, a 408 or a
5xx after sending raises `CortiOutcomeUnknown` (retryable, `maybe_billed=True`).
Before trying again the caller must look for what the lost attempt created:
`find_transcripts(interaction_id, recording_id)` or
`find_documents(interaction_id, name)` (give each document a unique `name`).
Failures that surely happened before Corti did anything (connection refused,
401, 429) are retried as usual.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from service.corti.auth import DEFAULT_REFRESH_BUFFER_SECONDS, TokenProvider
from service.corti.exceptions import (
    CortiAuthError,
    CortiError,
    CortiInsufficientBalance,
    CortiOutcomeUnknown,
    CortiUnavailable,
)
from service.corti.schemas import (
    Document,
    DocumentContext,
    DocumentCreateRequest,
    DocumentList,
    Encounter,
    Interaction,
    InteractionCreated,
    InteractionCreateRequest,
    InteractionList,
    Patient,
    RecordingCreated,
    StringContext,
    TokenResponse,
    Transcript,
    TranscriptCreateRequest,
    TranscriptList,
    TranscriptListItem,
    TranscriptParticipant,
    TranscriptStatus,
    parse_json,
)

if TYPE_CHECKING:
    from service.config import Settings
    from service.corti.stream import (
        AudioSource,
        StreamConfig,
        StreamResult,
        StreamSession,
        StreamTimeouts,
    )

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)

# Network failures where the request surely never reached Corti.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry transient Corti failures."""

    max_attempts: int = 4
    max_429_attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 20.0
    jitter: float = 0.1
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before try `attempt + 1` (attempt counts from 1)."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        delay = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return max(0.0, delay * (1 + random.uniform(-self.jitter, self.jitter)))


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """How to wait for a transcript that Corti still reports as processing."""

    initial_delay: float = 1.0
    max_delay: float = 10.0
    factor: float = 1.5
    timeout: float = 900.0


class CortiClient:
    """Async Corti REST client; use as `async with CortiClient(...) as corti:`."""

    def __init__(
        self,
        *,
        base_url: str,
        wss_url: str,
        login_url: str,
        tenant_name: str,
        client_id: str,
        client_secret: str | SecretStr,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        refresh_buffer: float = DEFAULT_REFRESH_BUFFER_SECONDS,
        stream_chunk_bytes: int = 8000,
        max_connections: int = 100,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        if not (tenant_name and client_id):
            raise ValueError("Corti tenant name and client id are required")
        self.base_url = base_url.rstrip("/")
        self.wss_url = wss_url.rstrip("/")
        self.login_url = login_url.rstrip("/")
        self.tenant_name = tenant_name
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.poll = poll or PollPolicy()
        self.stream_chunk_bytes = stream_chunk_bytes
        self._client_id = client_id
        self._client_secret = (
            client_secret
            if isinstance(client_secret, SecretStr)
            else SecretStr(client_secret)
        )
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
            ),
        )
        self._tokens = TokenProvider(self._fetch_token, refresh_buffer=refresh_buffer)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> CortiClient:
        """Build a client from `Settings` (CORTI_* environment variables)."""
        if not (
            settings.corti_tenant_name
            and settings.corti_client_id
            and settings.corti_client_secret
        ):
            raise ValueError(
                "CORTI_TENANT_NAME, CORTI_CLIENT_ID and CORTI_CLIENT_SECRET must be set"
            )
        options.setdefault("timeout", settings.corti_timeout_seconds)
        return cls(
            base_url=settings.corti_base,
            wss_url=settings.corti_wss,
            login_url=settings.corti_login,
            tenant_name=settings.corti_tenant_name,
            client_id=settings.corti_client_id,
            client_secret=settings.corti_client_secret,
            **options,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connection pool (if this client created it)."""
        if self._owns_http:
            await self._http.aclose()

    def __repr__(self) -> str:
        return f"CortiClient(base_url={self.base_url!r}, tenant={self.tenant_name!r})"

    # --- auth ----------------------------------------------------------------

    @property
    def token_url(self) -> str:
        """The OAuth token endpoint for this tenant."""
        return (
            f"{self.login_url}/{quote(self.tenant_name)}/protocol/openid-connect/token"
        )

    @property
    def token_refreshes(self) -> int:
        """How many access tokens this client has fetched so far."""
        return self._tokens.refreshes

    async def access_token(self) -> str:
        """A fresh access token (cached; one refresh under concurrency)."""
        return await self._tokens.token()

    def invalidate_token(self, token: str) -> None:
        """Drop `token` after Corti refused it, so the next call refreshes."""
        self._tokens.invalidate(token)

    async def _fetch_token(self) -> TokenResponse:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret.get_secret_value(),
            "scope": "openid",
        }
        try:
            response = await self._send_with_retries(
                "POST", self.token_url, lambda: {"data": form}, authorized=False
            )
        except CortiError as exc:
            if exc.status != 400 or isinstance(exc, CortiAuthError):
                raise
            # Keycloak answers 400/401 with invalid_client or unauthorized_client.
            raise CortiAuthError(
                f"Corti refused the client credentials ({exc.status}: {exc.reason})",
                status=exc.status,
                detail=exc.detail,
                error_type=exc.error_type,
            ) from exc
        try:
            return TokenResponse.model_validate(parse_json(response.content))
        except (ValidationError, ValueError) as exc:
            raise CortiAuthError(
                "Corti token endpoint sent an unreadable answer"
            ) from exc

    # --- interactions --------------------------------------------------------

    async def create_interaction(
        self,
        encounter_identifier: str,
        *,
        encounter_status: str = "planned",
        encounter_type: str = "first_consultation",
        title: str | None = None,
        assigned_user_id: str | None = None,
        patient: Patient | None = None,
    ) -> InteractionCreated:
        """Create an interaction (`POST /interactions/`); no credits involved."""
        body = InteractionCreateRequest(
            assigned_user_id=assigned_user_id,
            encounter=Encounter(
                identifier=encounter_identifier,
                status=encounter_status,
                type=encounter_type,
                title=title,
            ),
            patient=patient,
        )
        response = await self._request("POST", "/interactions/", json=body.to_wire())
        return _parse(response, InteractionCreated)

    async def get_interaction(self, interaction_id: str) -> Interaction:
        """Fetch one interaction (`CortiNotFound` if unknown)."""
        response = await self._request("GET", f"/interactions/{_seg(interaction_id)}")
        return _parse(response, Interaction)

    async def list_interactions(
        self,
        *,
        index: int = 1,
        page_size: int = 10,
        sort: str | None = None,
        direction: str | None = None,
        encounter_status: Sequence[str] = (),
    ) -> list[Interaction]:
        """One page of interactions; an empty list means past the last page."""
        params: list[tuple[str, str | int]] = [
            ("pageSize", page_size),
            ("index", index),
        ]
        if sort:
            params.append(("sort", sort))
        if direction:
            params.append(("direction", direction))
        params.extend(("encounterStatus", status) for status in encounter_status)
        response = await self._request("GET", "/interactions/", params=params)
        return _parse(response, InteractionList).interactions

    async def delete_interaction(self, interaction_id: str) -> None:
        """Delete an interaction (204)."""
        await self._request("DELETE", f"/interactions/{_seg(interaction_id)}")

    # --- recordings ----------------------------------------------------------

    async def upload_recording(
        self,
        interaction_id: str,
        audio: bytes | AsyncIterable[bytes],
        *,
        content_type: str = "application/octet-stream",
        size: int | None = None,
    ) -> RecordingCreated:
        """Upload raw audio bytes (not multipart) and return the recording id.

        With `bytes` the upload is retried like any call. An async iterator of
        chunks cannot be replayed, so it gets one try (give `size` to send a
        Content-Length instead of chunked encoding).
        """
        headers = {"Content-Type": content_type}
        replayable = isinstance(audio, bytes)
        if size is not None and not replayable:
            headers["Content-Length"] = str(size)
        response = await self._request(
            "POST",
            f"/interactions/{_seg(interaction_id)}/recordings/",
            content=audio,
            headers=headers,
            replayable=replayable,
        )
        return _parse(response, RecordingCreated)

    # --- transcripts ---------------------------------------------------------

    async def create_transcript(
        self,
        interaction_id: str,
        recording_id: str,
        *,
        primary_language: str = "en",
        diarize: bool | None = None,
        is_multichannel: bool | None = None,
        participants: Sequence[TranscriptParticipant] | None = None,
        wait: bool = True,
    ) -> Transcript:
        """Create a transcript (bills credits; never auto-retried once sent).

        When Corti answers `processing`, polls the status endpoint with backoff
        and then GETs the transcript (unless `wait=False`). The final status may
        be `completed` or `failed`; both carry `usageInfo.creditsConsumed`.
        Raises `CortiOutcomeUnknown` when the create may have billed without an
        answer, or was billed but waiting for it failed: call
        `find_transcripts()` before creating again.
        """
        body = TranscriptCreateRequest(
            recording_id=recording_id,
            primary_language=primary_language,
            diarize=diarize,
            is_multichannel=is_multichannel,
            participants=list(participants) if participants is not None else None,
        )
        response = await self._request(
            "POST",
            f"/interactions/{_seg(interaction_id)}/transcripts/",
            json=body.to_wire(),
            billing=True,
        )
        transcript = _parse(response, Transcript, billing=True)
        if not wait or transcript.status != "processing":
            return transcript
        try:
            return await self.wait_for_transcript(interaction_id, transcript.id)
        except CortiError as exc:
            # Created and billed, but its final credits are not known yet.
            raise CortiOutcomeUnknown(
                f"transcript {transcript.id} was created but waiting for it failed: "
                f"{exc}",
                status=exc.status,
                detail=exc.detail,
            ) from exc

    async def wait_for_transcript(
        self, interaction_id: str, transcript_id: str, *, within: float | None = None
    ) -> Transcript:
        """Poll a processing transcript's status with backoff, then GET it."""
        deadline = time.monotonic() + (
            within if within is not None else self.poll.timeout
        )
        delay = self.poll.initial_delay
        while True:
            if time.monotonic() + delay > deadline:
                raise CortiUnavailable(
                    f"transcript {transcript_id} still processing after the poll timeout"
                )
            await asyncio.sleep(delay)
            status = await self.get_transcript_status(interaction_id, transcript_id)
            if status.status != "processing":
                break
            delay = min(delay * self.poll.factor, self.poll.max_delay)
        return await self.get_transcript(interaction_id, transcript_id)

    async def get_transcript_status(
        self, interaction_id: str, transcript_id: str
    ) -> TranscriptStatus:
        """The status of a transcript: completed, processing or failed."""
        path = f"/interactions/{_seg(interaction_id)}/transcripts/{_seg(transcript_id)}/status"
        return _parse(await self._request("GET", path), TranscriptStatus)

    async def get_transcript(
        self, interaction_id: str, transcript_id: str
    ) -> Transcript:
        """Fetch one transcript with its credits."""
        path = f"/interactions/{_seg(interaction_id)}/transcripts/{_seg(transcript_id)}"
        return _parse(await self._request("GET", path), Transcript)

    async def list_transcripts(
        self, interaction_id: str, *, full: bool = False
    ) -> list[TranscriptListItem]:
        """The interaction's transcripts (list items carry no credits)."""
        response = await self._request(
            "GET",
            f"/interactions/{_seg(interaction_id)}/transcripts/",
            params={"full": "true" if full else "false"},
        )
        return _parse(response, TranscriptList).transcripts or []

    async def find_transcripts(
        self, interaction_id: str, recording_id: str, *, wait: bool = True
    ) -> list[Transcript]:
        """Transcripts of the interaction made from `recording_id`, with credits.

        Use after `CortiOutcomeUnknown` to see what a lost create billed. With
        `wait`, transcripts still processing are waited for, so the credits
        returned are final.
        """
        items = await self.list_transcripts(interaction_id)
        found = []
        for item in items:
            transcript = await self.get_transcript(interaction_id, item.id)
            if transcript.recording_id != recording_id:
                continue
            if wait and transcript.status == "processing":
                transcript = await self.wait_for_transcript(interaction_id, item.id)
            found.append(transcript)
        return found

    # --- documents -----------------------------------------------------------

    async def generate_document(
        self,
        interaction_id: str,
        *,
        template_key: str,
        context: str | Sequence[DocumentContext],
        output_language: str = "en",
        name: str | None = None,
    ) -> Document:
        """Generate a document (bills credits; never auto-retried once sent).

        A plain string becomes one `string` context. Give a unique `name` so
        that `find_documents()` can recognise the document after a
        `CortiOutcomeUnknown`.
        """
        contexts: list[DocumentContext] = (
            [StringContext(data=context)] if isinstance(context, str) else list(context)
        )
        body = DocumentCreateRequest(
            context=contexts,
            template_key=template_key,
            output_language=output_language,
            name=name,
        )
        response = await self._request(
            "POST",
            f"/interactions/{_seg(interaction_id)}/documents/",
            json=body.to_wire(),
            billing=True,
        )
        return _parse(response, Document, billing=True)

    async def get_document(self, interaction_id: str, document_id: str) -> Document:
        """Fetch one document with its credits."""
        path = f"/interactions/{_seg(interaction_id)}/documents/{_seg(document_id)}"
        return _parse(await self._request("GET", path), Document)

    async def list_documents(self, interaction_id: str) -> list[Document]:
        """All documents of the interaction, with their credits."""
        path = f"/interactions/{_seg(interaction_id)}/documents/"
        return _parse(await self._request("GET", path), DocumentList).data

    async def find_documents(self, interaction_id: str, name: str) -> list[Document]:
        """Documents of the interaction called `name` (see `generate_document`)."""
        return [
            doc for doc in await self.list_documents(interaction_id) if doc.name == name
        ]

    # --- /streams ------------------------------------------------------------

    async def stream(
        self,
        interaction_id: str,
        audio: AudioSource,
        config: StreamConfig | None = None,
        *,
        chunk_bytes: int | None = None,
        chunk_interval: float = 0.0,
        timeouts: StreamTimeouts | None = None,
    ) -> StreamResult:
        """Stream audio through `/streams` and return the final credits."""
        from service.corti.stream import run_stream

        return await run_stream(
            self,
            interaction_id,
            audio,
            config,
            chunk_bytes=chunk_bytes,
            chunk_interval=chunk_interval,
            timeouts=timeouts,
        )

    def open_stream(
        self,
        interaction_id: str,
        config: StreamConfig | None = None,
        *,
        timeouts: StreamTimeouts | None = None,
    ) -> StreamSession:
        """An unopened `StreamSession`; use it as an async context manager."""
        from service.corti.stream import StreamSession

        return StreamSession(self, interaction_id, config, timeouts=timeouts)

    # --- plumbing ------------------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Any = None,
        content: bytes | AsyncIterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
        billing: bool = False,
        replayable: bool = True,
    ) -> httpx.Response:
        url = f"{self.base_url}{path}"

        def build() -> dict[str, Any]:
            kwargs: dict[str, Any] = {"params": params, "headers": dict(headers or {})}
            if json is not None:
                kwargs["json"] = json
            if content is not None:
                kwargs["content"] = content
            return kwargs

        return await self._send_with_retries(
            method, url, build, billing=billing, replayable=replayable
        )

    async def _send_with_retries(
        self,
        method: str,
        url: str,
        build: Callable[[], dict[str, Any]],
        *,
        authorized: bool = True,
        billing: bool = False,
        replayable: bool = True,
    ) -> httpx.Response:
        what = f"{method} {httpx.URL(url).path}"
        failures = 0
        balance_failures = 0
        refreshed = False
        while True:
            kwargs = build()
            token = ""
            if authorized:
                token = await self._tokens.token()
                kwargs["headers"]["Authorization"] = f"Bearer {token}"
                kwargs["headers"]["Tenant-Name"] = self.tenant_name
            try:
                response = await self._http.request(method, url, **kwargs)
            except httpx.UnsupportedProtocol as exc:
                raise CortiError(f"{what}: unsupported URL scheme") from exc
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__} on {what}"
                if billing and not isinstance(exc, _NOT_SENT):
                    raise CortiOutcomeUnknown(
                        f"{reason}; the create may have been billed"
                    ) from exc
                failures += 1
                if not replayable or failures >= self.retry.max_attempts:
                    raise CortiUnavailable(reason) from exc
                await self._backoff(what, reason, failures, None)
                continue

            if response.is_success:
                return response
            error = CortiError.from_response(response)
            if response.status_code == 401 and authorized:
                self._tokens.invalidate(token)
                if refreshed or not replayable:
                    error.retryable = not refreshed
                    raise error
                refreshed = True
                logger.info("Corti refused the token on %s; refreshing once", what)
                continue
            if isinstance(error, CortiInsufficientBalance):
                balance_failures += 1
                if not replayable or balance_failures >= self.retry.max_429_attempts:
                    raise error
                await self._backoff(what, "429", balance_failures, error.retry_after)
                continue
            if isinstance(error, CortiUnavailable):
                if billing:
                    raise CortiOutcomeUnknown(
                        f"{error}; the create may have been billed",
                        status=error.status,
                        detail=error.detail,
                        error_type=error.error_type,
                        request_id=error.request_id,
                        retry_after=error.retry_after,
                    ) from error
                failures += 1
                if not replayable or failures >= self.retry.max_attempts:
                    raise error
                await self._backoff(
                    what, str(error.status), failures, error.retry_after
                )
                continue
            raise error

    async def _backoff(
        self, what: str, reason: str, attempt: int, retry_after: float | None
    ) -> None:
        delay = self.retry.delay(attempt, retry_after)
        logger.warning(
            "Corti %s failed (%s), try %d; retrying in %.2fs",
            what,
            reason,
            attempt,
            delay,
        )
        await asyncio.sleep(delay)


def _seg(value: str) -> str:
    """One URL path segment, escaped."""
    return quote(value, safe="")


def _parse(
    response: httpx.Response, model: type[ModelT], *, billing: bool = False
) -> ModelT:
    try:
        return model.model_validate(parse_json(response.content))
    except (ValidationError, ValueError) as exc:
        message = f"Corti sent an unreadable {model.__name__} ({response.status_code})"
        if billing:
            # The create succeeded at Corti (2xx) but we cannot read its credits.
            raise CortiOutcomeUnknown(message) from exc
        raise CortiError(message, status=response.status_code) from exc
