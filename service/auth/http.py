"""HTTP authentication, one place for GraphQL, exports and websockets.

`authenticate_request` reads the caller from the headers: a bearer key, or a
signed webhook (whose signature covers the body, so the body is read, bounded
by `MAX_BODY_BYTES`; a signed request must be JSON, never multipart).
`authenticate_connection_params` does the same for the `connection_init`
payload of a websocket. `check_rate` is the one per-key rate limit, and
`RateLimited` its one 429 with `Retry-After`, whichever endpoint refused.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Hashable, Mapping
from typing import Any

from starlette.requests import HTTPConnection, Request

from service.auth import keys, webhooks
from service.auth.principal import Principal, Role
from service.config import Settings
from service.db.session import Database
from service.errors import AppError, Unauthenticated
from service.ratelimit import RateLimiter

WWW_AUTHENTICATE = 'Bearer realm="corti-usage"'
BEARER_REQUIRED = "an API key is required (Authorization: Bearer <key>)"
BEARER_FORMAT = "use Authorization: Bearer <key>"
UNKNOWN_KEY = "unknown or revoked API key"


class RateLimited(AppError):
    """The key spent its requests per minute: HTTP 429 with Retry-After."""

    code = "FORBIDDEN"
    status = 429

    def __init__(self, per_minute: int, retry_after: int) -> None:
        super().__init__(
            f"rate limit of {per_minute} requests per minute exceeded; "
            f"retry after {retry_after} s",
            reason="RATE_LIMITED",
            retryAfter=retry_after,
        )
        self.retry_after = retry_after


def http_status(error: AppError) -> int:
    """The HTTP status of an error answered before anything ran."""
    explicit = getattr(error, "status", None)
    if isinstance(explicit, int):
        return explicit
    return {
        "UNAUTHENTICATED": 401,
        "FORBIDDEN": 403,
        "BAD_USER_INPUT": 400,
        "NOT_FOUND": 404,
    }.get(error.code, 500)


def error_headers(error: AppError) -> dict[str, str]:
    """WWW-Authenticate for 401, Retry-After for 429 and 503."""
    status = http_status(error)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    retry_after = error.extensions.get("retryAfter")
    if status in (429, 503) and retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return headers


def error_body(error: AppError) -> dict[str, Any]:
    """`{"errors": [...]}` with the error's code and extensions."""
    return {
        "errors": [
            {
                "message": error.message,
                "extensions": {**error.extensions, "code": error.code},
            }
        ]
    }


def may_upload(principal: Principal) -> bool:
    """Whether a multipart (audio upload) body is read for this caller.

    Keys that may run Corti jobs (admin, ingest) may upload; readers and signed
    webhooks may not, so their multipart bodies are refused unread.
    """
    return principal.can_write and not principal.webhook


def _webhook_secrets(settings: Settings) -> list[str]:
    if settings.webhook_secret is None:
        return []
    raw = settings.webhook_secret.get_secret_value().split(",")
    return [s.strip() for s in raw if s.strip()]


async def authenticate_bearer(db: Database, header: str) -> Principal:
    """The principal of an `Authorization: Bearer <key>` value (or UNAUTHENTICATED)."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(BEARER_FORMAT)
    async with db.read() as session:
        principal = await keys.authenticate(session, token.strip())
    if principal is None:
        raise Unauthenticated(UNKNOWN_KEY)
    return principal


async def authenticate_request(
    request: HTTPConnection, db: Database, settings: Settings
) -> Principal:
    """The caller of an HTTP request or websocket handshake, or UNAUTHENTICATED.

    Only the headers are read for a key; a signed webhook's JSON body is read
    (the middleware bounds it by MAX_BODY_BYTES) to check its signature.
    """
    header = request.headers.get("authorization")
    if header:
        return await authenticate_bearer(db, header)
    signature = request.headers.get("x-webhook-signature")
    secrets = _webhook_secrets(settings)
    # Only HTTP requests have a body to sign (a WebSocket has none).
    if signature and secrets and isinstance(request, Request):
        content_type = request.headers.get("content-type", "")
        if not content_type.lower().startswith("application/json"):
            # Never read a multipart (upload) body for a signature.
            raise Unauthenticated("a signed webhook request must be application/json")
        body = await request.body()
        if not webhooks.verify(signature, body, secrets):
            raise Unauthenticated("invalid or expired webhook signature")
        if not await webhooks.first_use(db, signature, body):
            raise Unauthenticated(
                "this signed webhook request was already received; sign each "
                "request anew"
            )
        return Principal(role=Role.INGEST, webhook=True)
    raise Unauthenticated(BEARER_REQUIRED)


async def authenticate_connection_params(
    db: Database, params: Mapping[str, Any], handshake: Principal | None
) -> Principal:
    """The caller of a websocket from its `connection_init` payload.

    `{"Authorization": "Bearer <key>"}` (any case of the name); without one the
    handshake's own header counts. UNAUTHENTICATED with the HTTP messages.
    """
    header = next((v for k, v in params.items() if k.lower() == "authorization"), None)
    if header is None:
        if handshake is not None:
            return handshake
        raise Unauthenticated("an API key is required")
    return await authenticate_bearer(db, str(header))


async def still_valid(db: Database, principal: Principal) -> bool:
    """Whether the key behind `principal` is still active (not revoked)."""
    if principal.key_id is None:
        return True
    async with db.read() as session:
        return await keys.is_active(session, principal.key_id)


def rate_identity(principal: Principal, client_host: str | None) -> Hashable:
    """Whose budget a request spends: its key, or a webhook's client address."""
    key_id: uuid.UUID | None = principal.key_id
    return key_id or ("webhook", client_host)


def check_rate(
    limiter: RateLimiter | None, principal: Principal, client_host: str | None
) -> None:
    """Spend one request of the caller's budget; RateLimited when it is spent."""
    if limiter is None:
        return
    wait = limiter.take(rate_identity(principal, client_host))
    if wait > 0:
        raise RateLimited(limiter.per_minute, max(1, math.ceil(wait)))
