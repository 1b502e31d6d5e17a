"""OAuth2 client-credentials token cache, shaped like the JS SDK's provider.

A token is reused until `expires_in - refresh_buffer` seconds after it was
fetched (the SDK uses a 2 minute buffer, so a 300 s token lives about 180 s).
Concurrent callers that find no fresh token wait on one refresh: the lock plus
a generation counter make sure a burst of requests fetches exactly one token.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from service.corti.schemas import TokenResponse

DEFAULT_REFRESH_BUFFER_SECONDS = 120.0

TokenFetcher = Callable[[], Awaitable[TokenResponse]]


@dataclass(frozen=True, slots=True)
class _CachedToken:
    value: str
    fresh_until: float

    def __repr__(self) -> str:
        return f"_CachedToken(value='**********', fresh_until={self.fresh_until})"


class TokenProvider:
    """Caches the access token and refreshes it once, even under concurrency."""

    def __init__(
        self,
        fetch: TokenFetcher,
        *,
        refresh_buffer: float = DEFAULT_REFRESH_BUFFER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._refresh_buffer = refresh_buffer
        self._clock = clock
        self._token: _CachedToken | None = None
        self._generation = 0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        """A token that is fresh now, fetching one if needed."""
        cached = self._token
        if cached is not None and cached.fresh_until > self._clock():
            return cached.value
        generation = self._generation
        async with self._lock:
            cached = self._token
            if cached is not None and self._generation != generation:
                # Someone refreshed while we waited: use theirs, even when the
                # server's expires_in is shorter than our buffer (SDK does too).
                return cached.value
            if cached is not None and cached.fresh_until > self._clock():
                return cached.value
            answer = await self._fetch()
            value = answer.access_token.get_secret_value()
            fresh_until = self._clock() + answer.expires_in - self._refresh_buffer
            self._token = _CachedToken(value, fresh_until)
            self._generation += 1
            return value

    def invalidate(self, token: str) -> None:
        """Forget `token` after Corti refused it; a newer token is kept."""
        cached = self._token
        if cached is not None and cached.value == token:
            self._token = None

    @property
    def refreshes(self) -> int:
        """How many tokens this provider has fetched."""
        return self._generation
