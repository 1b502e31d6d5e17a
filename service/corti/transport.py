"""CortiTransport: the connection to Corti that REST calls and websockets share.

It owns the OAuth client-credentials token (`TokenProvider`), the httpx pool,
the retry policy (`service.corti.retry`) and the mapping of every failure to
the `CortiError` family. `request()` sends one REST call, `connect()` opens a
websocket (`/streams`, later `/transcribe`) with the token in its query, both
through `call_with_retries`, so a 401 refresh, a backoff or an error message
is decided in one place.

Billing creates are special: with `billing=True` a timeout, a dropped
connection, a 408 or a 5xx once the request may have reached Corti raises
`CortiOutcomeUnknown` (never retried here); failures that surely happened
before Corti did anything (connection refused, 401, 429) are retried as usual.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterable
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import httpx
from pydantic import BaseModel, SecretStr, ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus

from service.corti.auth import DEFAULT_REFRESH_BUFFER_SECONDS, TokenProvider
from service.corti.exceptions import (
    CortiAuthError,
    CortiError,
    CortiOutcomeUnknown,
    CortiUnavailable,
)
from service.corti.retry import RetryPolicy, call_with_retries
from service.corti.schemas import TokenResponse, parse_json
from service.observability import tracing
from service.observability.metrics import corti_request

ModelT = TypeVar("ModelT", bound=BaseModel)

# Network failures where the request surely never reached Corti.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


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
_ws_logger = logging.getLogger("service.corti.stream.websocket")
_ws_logger.addFilter(_RedactToken())


class CortiTransport:
    """Token, connection pool and retry policy for one Corti tenant."""

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
        refresh_buffer: float = DEFAULT_REFRESH_BUFFER_SECONDS,
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

    async def aclose(self) -> None:
        """Close the HTTP connection pool (if this transport created it)."""
        if self._owns_http:
            await self._http.aclose()

    def __repr__(self) -> str:
        return (
            f"CortiTransport(base_url={self.base_url!r}, tenant={self.tenant_name!r})"
        )

    # --- the token -----------------------------------------------------------

    @property
    def token_url(self) -> str:
        """The OAuth token endpoint for this tenant."""
        return (
            f"{self.login_url}/{quote(self.tenant_name)}/protocol/openid-connect/token"
        )

    @property
    def token_refreshes(self) -> int:
        """How many access tokens have been fetched so far."""
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
            response = await self._send(
                "POST", self.token_url, {"data": form}, authorized=False
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

    # --- REST ----------------------------------------------------------------

    async def request(
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
        """One REST call to `{base_url}{path}`; a 2xx response or a `CortiError`."""
        kwargs: dict[str, Any] = {"params": params, "headers": dict(headers or {})}
        if json is not None:
            kwargs["json"] = json
        if content is not None:
            kwargs["content"] = content
        return await self._send(
            method,
            f"{self.base_url}{path}",
            kwargs,
            billing=billing,
            replayable=replayable,
        )

    async def _send(
        self,
        method: str,
        url: str,
        kwargs: dict[str, Any],
        *,
        authorized: bool = True,
        billing: bool = False,
        replayable: bool = True,
    ) -> httpx.Response:
        path = httpx.URL(url).path
        what = f"{method} {path}"

        async def attempt(token: str) -> httpx.Response:
            headers = dict(kwargs.get("headers") or {})
            if authorized:
                headers["Authorization"] = f"Bearer {token}"
                headers["Tenant-Name"] = self.tenant_name
            try:
                response = await self._http.request(
                    method, url, **{**kwargs, "headers": headers}
                )
            except httpx.UnsupportedProtocol as exc:
                raise CortiError(f"{what}: unsupported URL scheme") from exc
            except httpx.TransportError as exc:
                corti_request(method, path, "error")
                reason = f"{type(exc).__name__} on {what}"
                if billing and not isinstance(exc, _NOT_SENT):
                    raise CortiOutcomeUnknown(
                        f"{reason}; the create may have been billed"
                    ) from exc
                raise CortiUnavailable(reason) from exc
            corti_request(method, path, response.status_code)
            if response.is_success:
                return response
            error = CortiError.from_response(response)
            if billing and isinstance(error, CortiUnavailable):
                raise CortiOutcomeUnknown(
                    f"{error}; the create may have been billed",
                    status=error.status,
                    detail=error.detail,
                    error_type=error.error_type,
                    request_id=error.request_id,
                    retry_after=error.retry_after,
                ) from error
            raise error

        return await call_with_retries(
            self.retry,
            what,
            attempt,
            tokens=self._tokens if authorized else None,
            replayable=replayable,
        )

    # --- websockets ----------------------------------------------------------

    async def connect(
        self, path: str, *, what: str, open_timeout: float, close_timeout: float
    ) -> ClientConnection:
        """Open the websocket `{wss_url}{path}` (token and tenant in its query).

        Retried like a REST call, except 429, which fails at once: nothing is
        billed before audio flows.
        """

        async def attempt(token: str) -> ClientConnection:
            query = urlencode(
                {"tenant-name": self.tenant_name, "token": f"Bearer {token}"},
                quote_via=quote,
            )
            url_path = urlsplit(f"{self.wss_url}{path}").path
            try:
                with tracing.span(
                    "corti websocket", **{"url.path": url_path, "corti.what": what}
                ):
                    ws = await connect(
                        f"{self.wss_url}{path}?{query}",
                        open_timeout=open_timeout,
                        close_timeout=close_timeout,
                        max_size=2**22,
                        logger=_ws_logger,
                    )
            except InvalidStatus as exc:
                corti_request("GET", url_path, exc.response.status_code)
                raise CortiError.from_http(
                    exc.response.status_code,
                    bytes(exc.response.body or b""),
                    exc.response.headers,
                    what=f"websocket {what}",
                ) from exc
            except (OSError, TimeoutError, InvalidHandshake) as exc:
                corti_request("GET", url_path, "error")
                # str(exc) is safe; the URL with its token is not in it.
                raise CortiUnavailable(
                    f"cannot open {what}: {type(exc).__name__}"
                ) from exc
            corti_request("GET", url_path, 101)
            return ws

        return await call_with_retries(
            self.retry, what, attempt, tokens=self._tokens, max_429_attempts=1
        )


def seg(value: str) -> str:
    """One URL path segment, escaped."""
    return quote(value, safe="")


def parse(
    response: httpx.Response, model: type[ModelT], *, billing: bool = False
) -> ModelT:
    """Read a 2xx answer as `model`; an unreadable billing answer is ambiguous."""
    try:
        return model.model_validate(parse_json(response.content))
    except (ValidationError, ValueError) as exc:
        message = f"Corti sent an unreadable {model.__name__} ({response.status_code})"
        if billing:
            # The create succeeded at Corti (2xx) but we cannot read its credits.
            raise CortiOutcomeUnknown(message) from exc
        raise CortiError(message, status=response.status_code) from exc
