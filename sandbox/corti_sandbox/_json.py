"""JSON that writes `Decimal` credits as exact JSON numbers (no float detour)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from starlette.responses import Response


def dumps(value: Any) -> str:
    """Encode like `json.dumps`, writing Decimals as plain decimal numbers."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("credits must be finite")
        return format(value.normalize(), "f")
    if isinstance(value, Mapping):
        items = (f"{json.dumps(str(key))}:{dumps(item)}" for key, item in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(item) for item in value) + "]"
    return json.dumps(value)


class JSONResponse(Response):
    """A JSON response encoded with `dumps` (exact Decimal numbers)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        """Encode the content."""
        return dumps(content).encode()


_ERROR_TYPES = {
    400: "bad_request",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    429: "insufficient_balance",
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
}


def corti_error(
    status: int, detail: str, *, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """Corti's error body: `{requestid, status, type, detail}`."""
    body = {
        "requestid": str(uuid.uuid4()),
        "status": status,
        "type": _ERROR_TYPES.get(status, "error"),
        "detail": detail,
    }
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))
