"""Who is calling, and what they may see and write."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from service.errors import Forbidden


class Role(StrEnum):
    """What a key may do: admin everything, reader queries, ingest writes."""

    ADMIN = "admin"
    READER = "reader"
    INGEST = "ingest"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: a key (or a signed webhook) and its scope."""

    role: Role
    tenant_id: str | None = None
    key_id: uuid.UUID | None = None
    webhook: bool = False

    @property
    def can_read(self) -> bool:
        """Whether queries (beyond own jobs) are allowed."""
        return self.role in (Role.ADMIN, Role.READER)

    @property
    def can_write(self) -> bool:
        """Whether ingestion and job mutations are allowed."""
        return self.role in (Role.ADMIN, Role.INGEST)

    def require_read(self) -> None:
        """Raise FORBIDDEN unless this principal may run queries."""
        if not self.can_read:
            raise Forbidden(f"a key with role {self.role.value} cannot read usage")

    def require_write(self) -> None:
        """Raise FORBIDDEN unless this principal may write."""
        if not self.can_write:
            raise Forbidden(f"a key with role {self.role.value} cannot write")

    def sees_tenant(self, tenant_id: str) -> bool:
        """Whether data of `tenant_id` is visible to this principal."""
        return self.tenant_id is None or self.tenant_id == tenant_id

    def require_tenant(self, tenant_id: str) -> None:
        """Raise FORBIDDEN when writing into a tenant outside this key's scope."""
        if not self.sees_tenant(tenant_id):
            raise Forbidden("this key is bound to another tenant")


ADMIN = Principal(role=Role.ADMIN)
