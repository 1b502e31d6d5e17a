"""The job queue: leases in the `jobs` table, shared by any number of workers.

A worker claims jobs that are QUEUED and due, or RUNNING with an expired lease
(their worker died), by one UPDATE ... RETURNING that sets RUNNING, a lease
expiry and `attempts + 1`. On PostgreSQL the candidate rows are picked with
`FOR UPDATE SKIP LOCKED`, so concurrent workers claim disjoint jobs without
waiting on each other; on SQLite the statement runs in a BEGIN IMMEDIATE
transaction, which makes it atomic against every other writer.

Every later write of an attempt is fenced by (`leased_by`, `attempts`): after a
lease ran out and another worker claimed the job, the stale attempt's writes
match no row and raise `LeaseLost`, so it can neither save progress nor end
the job.

Every statement runs in a unit of work (service/uow.py); `finish` raises
`JobFinished` in the caller's, the other helpers open their own.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from service.db.base import utcnow
from service.db.models import Job
from service.db.session import Database
from service.events import JobFinished
from service.jobs.audio import delete_audio
from service.jobs.records import JobState
from service.uow import UnitOfWork, unit_of_work


class LeaseLost(Exception):
    """Another worker holds the job now; this attempt must stop."""


@dataclass(frozen=True)
class Lease:
    """One attempt's hold on a job: (`holder`, `attempt`) fences its writes."""

    job_id: uuid.UUID
    holder: str
    attempt: int


@dataclass
class ClaimedJob:
    """A job as claimed by a worker (a snapshot; `state` is kept up to date)."""

    lease: Lease
    kind: str
    payload: dict[str, Any]
    state: dict[str, Any]
    tenant_id: str | None
    interaction_id: str | None
    audio_bytes: int | None
    # W3C trace context of the request that enqueued the job (tracing on).
    trace_context: dict[str, str] | None = None

    @property
    def id(self) -> uuid.UUID:
        """The job id."""
        return self.lease.job_id


def backoff(attempt: int, *, base: float, cap: float, jitter: float = 0.2) -> float:
    """Seconds before retrying after failed attempt `attempt` (from 1)."""
    delay = min(cap, base * 2.0 ** max(0, attempt - 1))
    return max(0.0, delay * random.uniform(1 - jitter, 1 + jitter))


def _fence(lease: Lease) -> ColumnElement[bool]:
    return and_(
        Job.id == lease.job_id,
        Job.leased_by == lease.holder,
        Job.attempts == lease.attempt,
        Job.status == JobState.RUNNING.value,
    )


async def claim(
    db: Database,
    holder: str,
    *,
    limit: int,
    lease_seconds: float,
    kinds: Sequence[str] | None = None,
) -> list[ClaimedJob]:
    """Lease up to `limit` due jobs (queued, or with an expired lease).

    `kinds`: only jobs of these kinds (a worker claims what it can run).
    """
    if limit <= 0 or (kinds is not None and not kinds):
        return []
    now = utcnow()
    due = (
        select(Job.id)
        .where(
            Job.kind.in_(kinds) if kinds is not None else true(),
            or_(
                and_(Job.status == JobState.QUEUED.value, Job.run_after <= now),
                and_(
                    Job.status == JobState.RUNNING.value,
                    Job.lease_expires_at < now,
                ),
            ),
        )
        .order_by(Job.run_after)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(Job)
        .where(Job.id.in_(due.scalar_subquery()))
        .values(
            status=JobState.RUNNING.value,
            attempts=Job.attempts + 1,
            leased_by=holder,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            updated_at=now,
        )
        .returning(
            Job.id,
            Job.kind,
            Job.attempts,
            Job.payload,
            Job.state,
            Job.tenant_id,
            Job.interaction_id,
            Job.audio_bytes,
            Job.trace_context,
        )
        .execution_options(synchronize_session=False)
    )
    async with unit_of_work(db) as uow:
        rows = (await uow.session.execute(statement)).all()
    return [
        ClaimedJob(
            lease=Lease(row.id, holder, row.attempts),
            kind=row.kind,
            payload=dict(row.payload or {}),
            state=dict(row.state or {}),
            tenant_id=row.tenant_id,
            interaction_id=row.interaction_id,
            audio_bytes=row.audio_bytes,
            trace_context=row.trace_context,
        )
        for row in rows
    ]


async def renew(
    db: Database, leases: list[Lease], lease_seconds: float
) -> set[uuid.UUID]:
    """Extend the given leases; returns the ids of the jobs still held."""
    if not leases:
        return set()
    now = utcnow()
    statement = (
        update(Job)
        .where(or_(*(_fence(lease) for lease in leases)))
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds))
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    )
    async with unit_of_work(db) as uow:
        return set((await uow.session.execute(statement)).scalars())


async def save_state(db: Database, lease: Lease, state: dict[str, Any]) -> None:
    """Persist an attempt's progress (before a call Corti may bill)."""
    async with unit_of_work(db) as uow:
        await _fenced_update(uow.session, lease, state=state, updated_at=utcnow())


async def finish(
    uow: UnitOfWork,
    lease: Lease,
    *,
    failure: str | None,
    state: dict[str, Any],
    usage_record_id: uuid.UUID | None = None,
    interaction_id: str | None = None,
) -> None:
    """End the job (SUCCEEDED, or FAILED with `failure`) and drop its audio.

    Runs in the caller's unit of work, which also holds the job's result (a
    usage record), and raises `JobFinished` there.
    """
    status = (JobState.FAILED if failure else JobState.SUCCEEDED).value
    values: dict[str, Any] = {
        "status": status,
        "error": failure,
        "state": state,
        "lease_expires_at": None,
        "updated_at": utcnow(),
    }
    if usage_record_id is not None:
        values["usage_record_id"] = usage_record_id
    if interaction_id is not None:
        values["interaction_id"] = interaction_id
    kind = await _fenced_update(uow.session, lease, **values)
    await delete_audio(uow.session, lease.job_id)
    uow.raise_event(JobFinished(lease.job_id, kind, status))


async def fail(db: Database, lease: Lease, error: str, state: dict[str, Any]) -> None:
    """End the job FAILED with a readable reason."""
    async with unit_of_work(db) as uow:
        await finish(uow, lease, failure=error, state=state)


async def retry_later(
    db: Database, lease: Lease, error: str, state: dict[str, Any], delay: float
) -> None:
    """Queue the job again after `delay` seconds, keeping the error visible."""
    now = utcnow()
    async with unit_of_work(db) as uow:
        await _fenced_update(
            uow.session,
            lease,
            status=JobState.QUEUED.value,
            error=error,
            state=state,
            run_after=now + timedelta(seconds=delay),
            lease_expires_at=None,
            updated_at=now,
        )


async def release(db: Database, lease: Lease, state: dict[str, Any]) -> None:
    """Give an unfinished job back at once (shutdown); the attempt is not counted."""
    now = utcnow()
    async with unit_of_work(db) as uow:
        await _fenced_update(
            uow.session,
            lease,
            status=JobState.QUEUED.value,
            attempts=Job.attempts - 1,
            state=state,
            run_after=now,
            lease_expires_at=None,
            updated_at=now,
        )


async def _fenced_update(session: AsyncSession, lease: Lease, **values: Any) -> str:
    """Update the job if this lease still holds it; returns the job's kind."""
    result = await session.execute(
        update(Job)
        .where(_fence(lease))
        .values(**values)
        .returning(Job.kind)
        .execution_options(synchronize_session=False)
    )
    kind = result.scalar_one_or_none()
    if kind is None:
        raise LeaseLost(f"job {lease.job_id} is no longer held by {lease.holder}")
    return kind
