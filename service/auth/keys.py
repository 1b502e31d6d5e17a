"""API keys: created by the CLI, shown once, stored as a SHA-256 hash.

A key reads `cul_<prefix>_<secret>`. The prefix finds the row; the hash of the
whole key is compared in constant time. Keys carry 256 random bits, so a fast
hash is enough (no password stretching needed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.principal import Principal, Role
from service.db.base import utcnow
from service.db.direct import Direct
from service.db.models import ApiKey
from service.validation import check_id

KEY_PREFIX = "cul"


# Built once: every request with a key runs it.
_BY_PREFIX = Direct(
    select(
        ApiKey.id, ApiKey.role, ApiKey.tenant_id, ApiKey.secret_hash, ApiKey.revoked_at
    ).where(ApiKey.prefix == bindparam("prefix"))
)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class KeyInfo:
    """What `keys list` shows of a key (never the secret)."""

    id: uuid.UUID
    prefix: str
    role: str
    tenant_id: str | None
    name: str | None
    created_at: datetime
    revoked_at: datetime | None


async def create_key(
    session: AsyncSession, role: Role, tenant_id: str | None, name: str | None = None
) -> tuple[KeyInfo, str]:
    """Store a new key; returns its info and the plain key (shown once)."""
    if tenant_id is not None:
        tenant_id = check_id("tenant", tenant_id)
    prefix = secrets.token_hex(6)
    plain = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        prefix=prefix,
        secret_hash=_hash(plain),
        role=role.value,
        tenant_id=tenant_id,
        name=name,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    return _info(row), plain


async def list_keys(session: AsyncSession) -> list[KeyInfo]:
    """Every key, newest first."""
    rows = await session.execute(select(ApiKey).order_by(ApiKey.created_at.desc()))
    return [_info(row) for row in rows.scalars()]


async def revoke_key(session: AsyncSession, id_or_prefix: str) -> bool:
    """Revoke by id or prefix; False when no active key matched."""
    try:
        condition = ApiKey.id == uuid.UUID(id_or_prefix)
    except ValueError:
        condition = ApiKey.prefix == id_or_prefix
    result = await session.execute(
        update(ApiKey)
        .where(condition, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
        .returning(ApiKey.id)
    )
    return result.first() is not None


async def authenticate(session: AsyncSession, presented: str) -> Principal | None:
    """The principal for a presented key, or None if unknown or revoked."""
    parts = presented.split("_")
    if len(parts) < 3 or parts[0] != KEY_PREFIX:
        return None
    rows = await _BY_PREFIX.rows(session, {"prefix": parts[1]}, alone=True)
    if not rows:
        return None
    key_id, role, tenant_id, secret_hash, revoked_at = rows[0]
    if revoked_at is not None:
        return None
    if not hmac.compare_digest(secret_hash, _hash(presented)):
        return None
    return Principal(role=Role(role), tenant_id=tenant_id, key_id=key_id)


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        prefix=row.prefix,
        role=row.role,
        tenant_id=row.tenant_id,
        name=row.name,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


async def is_active(session: AsyncSession, key_id: uuid.UUID) -> bool:
    """Whether the key exists and is not revoked (for re-checks of open sockets)."""
    revoked = (
        await session.execute(select(ApiKey.revoked_at).where(ApiKey.id == key_id))
    ).first()
    return revoked is not None and revoked[0] is None
