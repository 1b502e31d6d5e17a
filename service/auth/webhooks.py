"""Signed webhook requests: `X-Webhook-Signature: t=<unix>,v1=<hex>`.

v1 is HMAC-SHA256 over "<t>.<raw body>" with one of the configured secrets
(several during rotation). A valid signature acts as an ingest key for every
tenant, limited to the ingestion mutations.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence

TOLERANCE_SECONDS = 300


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value for `body` (used by tests and the README)."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(
        secret.encode(), f"{t}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return f"t={t},v1={digest}"


def verify(
    header: str, body: bytes, secrets: Sequence[str], now: float | None = None
) -> bool:
    """Whether the header is a fresh, valid signature of `body`."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > TOLERANCE_SECONDS:
        return False
    signed = f"{timestamp}.".encode() + body
    valid = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        for candidate in fields.get("v1", []):
            # Keep checking after a match so timing does not reveal which matched.
            # Bytes: compare_digest raises TypeError on non-ASCII str.
            valid |= hmac.compare_digest(expected.encode(), candidate.encode())
    return valid
