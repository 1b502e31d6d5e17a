"""Signed webhook requests: `X-Webhook-Signature: t=<unix>,v1=<hex>`.

v1 is HMAC-SHA256 over "<t>.<raw body>" with one of the configured secrets
(several during rotation). A valid signature acts as an ingest key for every
tenant, limited to the ingestion mutations.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite

from service.auth.models import SeenWebhookSignature
from service.db.direct import Direct
from service.db.session import Database

TOLERANCE_SECONDS = 300
# Expired rows are deleted on every PRUNE_EVERY-th accepted request.
PRUNE_EVERY = 100
_accepted = itertools.count(1)
# Built once (every signed webhook runs it).
_FIRST_USE = {
    dialect: Direct(
        module.insert(SeenWebhookSignature)
        .values(
            digest=bindparam("digest"),
            expires_at=bindparam(
                "expires_at", type_=SeenWebhookSignature.__table__.c.expires_at.type
            ),
        )
        .on_conflict_do_nothing(index_elements=["digest"])
        .returning(SeenWebhookSignature.digest)
    )
    for dialect, module in (("postgresql", postgresql), ("sqlite", sqlite))
}


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header value for `body` (used by tests and the README)."""
    t = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(
        secret.encode(), f"{t}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return f"t={t},v1={digest}"


def signed_at(header: str) -> int | None:
    """The header's `t=` (unix seconds), or None."""
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def first_use(db: Database, header: str, body: bytes) -> bool:
    """Record a verified request; False if the same signed request was seen.

    One unique insert in the shared database, so a replay is refused by every
    API process, also while another one is handling the original.
    """
    timestamp = signed_at(header) or 0
    digest = hashlib.sha256(f"{timestamp}.".encode() + body).hexdigest()
    expires = datetime.fromtimestamp(timestamp, UTC) + timedelta(
        seconds=TOLERANCE_SECONDS + 60
    )
    async with db.write() as session:
        inserted = await _FIRST_USE[db.dialect].rows(
            session, {"digest": digest, "expires_at": expires}, alone=True
        )
        fresh = bool(inserted)
        if fresh and next(_accepted) % PRUNE_EVERY == 0:
            await prune(session)
    return fresh


async def prune(session: Any) -> None:
    """Delete the rows whose signatures have expired anyway."""
    await session.execute(
        delete(SeenWebhookSignature).where(
            SeenWebhookSignature.expires_at < datetime.now(UTC)
        )
    )


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
