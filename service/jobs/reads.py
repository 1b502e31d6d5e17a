"""Read-side SQL of jobs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.models import Job


async def jobs_by_id(session: AsyncSession, ids: Sequence[Any]) -> dict[Any, Job]:
    """Jobs by id."""
    rows = await session.execute(select(Job).where(Job.id.in_(list(ids))))
    return {row.id: row for row in rows.scalars()}
