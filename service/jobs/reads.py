"""Job reads for one caller: who sees which job, applied here, once.

Readers see their tenant's jobs (an unbound key every job); ingest keys only
the jobs they created. A job's usage record is shown within the caller's
tenant only (its interaction may have moved to another tenant since).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.auth.principal import Principal, Role
from service.db.models import Job, UsageRecord


class JobReader:
    """Jobs and the usage records they produced, as one caller may see them."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    def visible(self, row: Job) -> bool:
        """Readers see their tenant's jobs; ingest keys only their own."""
        caller = self.principal
        if caller.role is Role.INGEST:
            return caller.key_id is not None and row.api_key_id == caller.key_id
        if row.tenant_id is None:
            return caller.tenant_id is None
        return caller.sees_tenant(row.tenant_id)

    async def jobs(self, session: AsyncSession, ids: Sequence[Any]) -> dict[Any, Job]:
        """The jobs among `ids` that the caller may see."""
        rows = await session.execute(select(Job).where(Job.id.in_(list(ids))))
        return {row.id: row for row in rows.scalars() if self.visible(row)}

    async def usage(
        self, session: AsyncSession, record_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, UsageRecord]:
        """Usage records by id (of jobs the caller sees), inside its tenant."""
        statement = select(UsageRecord).where(UsageRecord.id.in_(list(record_ids)))
        if self.principal.tenant_id is not None:
            statement = statement.where(
                UsageRecord.tenant_id == self.principal.tenant_id
            )
        return {row.id: row for row in (await session.execute(statement)).scalars()}
