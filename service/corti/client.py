"""CortiClient: every Corti call an application makes, on one `CortiTransport`.

The endpoints live by idea in `interactions.py` (interactions and recordings),
`transcripts.py`, `documents.py` and `tools.py` (the stateless extract-facts and
coding calls, and guided documents); `/streams` sessions in `stream.py`,
`/transcribe` dictation sessions in `dictation.py`. The
transport (`transport.py`, with `retry.py`) owns the token, the pool and the
retry policy that all of them share:
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
The stateless calls (`extract_facts`, `predict_codes`, `create_guided_document`)
have no such lookup: after `CortiOutcomeUnknown` nobody can tell whether
Corti billed them.
Failures that surely happened before Corti did anything (connection refused,
401, 429) are retried as usual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Self

import httpx
from pydantic import SecretStr

from service.corti.auth import DEFAULT_REFRESH_BUFFER_SECONDS
from service.corti.dictation import DictationSession, OnDelta
from service.corti.documents import DocumentEndpoints
from service.corti.interactions import InteractionEndpoints
from service.corti.retry import RetryPolicy
from service.corti.stateless_schemas import DictationConfig
from service.corti.stream import (
    DEFAULT_CHUNK_BYTES,
    AudioSource,
    StreamConfig,
    StreamResult,
    StreamSession,
    StreamTimeouts,
    run_stream,
)
from service.corti.tools import ToolEndpoints
from service.corti.transcripts import PollPolicy, TranscriptEndpoints
from service.corti.transport import CortiTransport

if TYPE_CHECKING:
    from service.config import Settings


class CortiClient(
    InteractionEndpoints, TranscriptEndpoints, DocumentEndpoints, ToolEndpoints
):
    """Async Corti client; use as `async with CortiClient(...) as corti:`."""

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
        stream_chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        max_connections: int = 100,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.transport = CortiTransport(
            base_url=base_url,
            wss_url=wss_url,
            login_url=login_url,
            tenant_name=tenant_name,
            client_id=client_id,
            client_secret=client_secret,
            timeout=timeout,
            retry=retry,
            refresh_buffer=refresh_buffer,
            max_connections=max_connections,
            http=http,
        )
        self.poll = poll or PollPolicy()
        self.stream_chunk_bytes = stream_chunk_bytes

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
        await self.transport.aclose()

    def __repr__(self) -> str:
        return f"CortiClient(base_url={self.base_url!r}, tenant={self.tenant_name!r})"

    # --- the transport's settings and token ---------------------------------

    @property
    def base_url(self) -> str:
        """The REST base URL (`.../v2`)."""
        return self.transport.base_url

    @property
    def wss_url(self) -> str:
        """The websocket base URL."""
        return self.transport.wss_url

    @property
    def login_url(self) -> str:
        """The OAuth realms base URL."""
        return self.transport.login_url

    @property
    def tenant_name(self) -> str:
        """The Corti tenant every call names."""
        return self.transport.tenant_name

    @property
    def timeout(self) -> float:
        """Seconds allowed per HTTP request."""
        return self.transport.timeout

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy of every call."""
        return self.transport.retry

    @property
    def token_url(self) -> str:
        """The OAuth token endpoint for this tenant."""
        return self.transport.token_url

    @property
    def token_refreshes(self) -> int:
        """How many access tokens this client has fetched so far."""
        return self.transport.token_refreshes

    async def access_token(self) -> str:
        """A fresh access token (cached; one refresh under concurrency)."""
        return await self.transport.access_token()

    def invalidate_token(self, token: str) -> None:
        """Drop `token` after Corti refused it, so the next call refreshes."""
        self.transport.invalidate_token(token)

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
        return await run_stream(
            self.transport,
            interaction_id,
            audio,
            config,
            chunk_bytes=chunk_bytes or self.stream_chunk_bytes,
            chunk_interval=chunk_interval,
            timeouts=timeouts,
        )

    def open_stream(
        self,
        interaction_id: str,
        config: StreamConfig | None = None,
        *,
        timeouts: StreamTimeouts | None = None,
        on_delta: OnDelta | None = None,
    ) -> StreamSession:
        """An unopened `StreamSession`; use it as an async context manager."""
        return StreamSession(
            self.transport, interaction_id, config, timeouts=timeouts, on_delta=on_delta
        )

    # --- /transcribe -----------------------------------------------------------

    def open_dictation(
        self,
        config: DictationConfig | None = None,
        *,
        timeouts: StreamTimeouts | None = None,
        on_delta: OnDelta | None = None,
    ) -> DictationSession:
        """An unopened `/transcribe` `DictationSession` (async context manager)."""
        return DictationSession(
            self.transport, config, timeouts=timeouts, on_delta=on_delta
        )
