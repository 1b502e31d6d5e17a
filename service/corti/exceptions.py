"""The CortiError family: every failure the Corti client raises.

`retryable` tells the caller whether trying the same operation again later can
succeed. `maybe_billed` is set when a billing call (transcript or document
creation) may have reached Corti although no answer came back: the caller must
look at what exists before creating again (see `CortiOutcomeUnknown`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx

_WWW_AUTH_DESCRIPTION = re.compile(r'error_description="([^"]*)"')
_WWW_AUTH_ERROR = re.compile(r'error="([^"]*)"')


class CortiError(Exception):
    """A failed Corti call; `status` is the HTTP status when there was one."""

    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        detail: str | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        maybe_billed: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail
        self.error_type = error_type
        self.request_id = request_id
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after = retry_after
        self.maybe_billed = maybe_billed

    @property
    def reason(self) -> str:
        """A short readable reason, suitable for a job's error column."""
        return self.detail or str(self)

    @classmethod
    def from_response(cls, response: httpx.Response) -> CortiError:
        """Build the matching subclass from an HTTP error response."""
        try:
            what = f"{response.request.method} {response.request.url.path}"
        except RuntimeError:  # a response built by hand has no request
            what = "request"
        return cls.from_http(
            response.status_code, response.content, response.headers, what=what
        )

    @classmethod
    def from_http(
        cls,
        status: int,
        content: bytes,
        headers: Mapping[str, str],
        *,
        what: str = "request",
    ) -> CortiError:
        """Build the matching subclass from a status, body and headers."""
        body = _error_body(content)
        detail = _first_str(body, "detail", "details", "error_description", "title")
        if detail is None and status == 401:
            detail = _www_authenticate_reason(headers.get("WWW-Authenticate", ""))
        message = f"Corti answered {status} to {what}"
        if detail:
            message += f": {detail}"
        return _class_for_status(status)(
            message,
            status=status,
            detail=detail,
            error_type=_first_str(body, "type", "error"),
            request_id=_first_str(body, "requestid", "requestId"),
            retry_after=parse_retry_after(headers.get("Retry-After")),
        )


class CortiUnavailable(CortiError):
    """Corti could not answer now (5xx, 408, timeout, network); try again later."""

    default_retryable = True


class CortiOutcomeUnknown(CortiUnavailable):
    """A billing create may have happened, but its answer was lost.

    Raised by `create_transcript` and `generate_document` after a timeout, a
    dropped connection, a 408 or a 5xx once the request may have been sent.
    Retrying is allowed only after listing the interaction's transcripts or
    documents and recording anything the lost attempt created.
    """

    def __init__(self, message: str, **kwargs: Any) -> None:
        kwargs.setdefault("maybe_billed", True)
        super().__init__(message, **kwargs)


class CortiInsufficientBalance(CortiError):
    """Corti answered 429: in Corti's docs, the account has no credits left."""


class CortiAuthError(CortiError):
    """Credentials or token refused (401, 403, or the token endpoint said no)."""


class CortiNotFound(CortiError):
    """The interaction, recording, transcript or document does not exist (404)."""


class CortiBadRequest(CortiError):
    """Corti refused the request as invalid (400, 422 and other 4xx)."""


class CortiStreamDropped(CortiUnavailable):
    """The /streams websocket closed before the final `usage` message."""


class CortiStreamRefused(CortiError):
    """The /streams session was refused (CONFIG_DENIED, CONFIG_MISSING, ...)."""


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or HTTP date)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _class_for_status(status: int) -> type[CortiError]:
    if status in (401, 403):
        return CortiAuthError
    if status == 404:
        return CortiNotFound
    if status == 429:
        return CortiInsufficientBalance
    if status == 408 or status >= 500:
        return CortiUnavailable
    if 400 <= status < 500:
        return CortiBadRequest
    return CortiError


def _error_body(content: bytes) -> dict[str, Any]:
    try:
        data = json.loads(content) if content else None
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _first_str(body: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _www_authenticate_reason(header: str) -> str | None:
    found = _WWW_AUTH_DESCRIPTION.search(header) or _WWW_AUTH_ERROR.search(header)
    return found.group(1) if found else None
