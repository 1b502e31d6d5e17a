"""Scheduled jobs: each due time enqueued once, whatever the number of workers.

Due times are the multiples of a schedule's `every` since the Unix epoch
(UTC). `job_schedules` keeps one row per schedule with the last due time
enqueued; a worker that finds a schedule due moves that row forward with a
compare-and-set (`last_due_at < due`) and enqueues the job in the same
transaction, so of several workers exactly one wins each due time (row lock
on PostgreSQL, BEGIN IMMEDIATE on SQLite), and a job is never lost or
doubled. Periods missed while no worker ran are not caught up: the next
check enqueues the current one only.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite

from service.db.models import JobSchedule
from service.db.session import Database
from service.jobs.registry import Schedule
from service.uow import unit_of_work

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def due_at(schedule: Schedule, now: datetime) -> datetime:
    """The latest due time of `schedule` at or before `now`."""
    periods = (now - EPOCH) // schedule.every
    return EPOCH + periods * schedule.every


def next_due(schedule: Schedule, now: datetime) -> datetime:
    """The first due time after `now`."""
    return due_at(schedule, now) + schedule.every


async def enqueue_due(db: Database, schedule: Schedule, now: datetime) -> bool:
    """Enqueue the job of the due time at `now` unless a worker already did."""
    due = due_at(schedule, now)
    async with unit_of_work(db) as uow:
        dialect = postgresql if db.dialect == "postgresql" else sqlite
        created = await uow.session.execute(
            dialect.insert(JobSchedule)
            .values(name=schedule.name, last_due_at=due)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(JobSchedule.name)
        )
        won = created.scalar_one_or_none() is not None
        if not won:
            moved = await uow.session.execute(
                update(JobSchedule)
                .where(JobSchedule.name == schedule.name, JobSchedule.last_due_at < due)
                .values(last_due_at=due)
                .returning(JobSchedule.name)
            )
            won = moved.scalar_one_or_none() is not None
        if won:
            await uow.enqueue(schedule.name, {"due_at": due.isoformat()}, run_after=due)
    return won
