"""Any registered job kind runs like the Corti kinds; scheduled jobs run once per due time."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from service.corti import CortiClient
from service.db.models import Job
from service.db.session import Database
from service.events import JobFinished, after_commit, remove_handler
from service.jobs import registry
from service.jobs.registry import JobContext, JobFailed, RetryLater
from service.jobs.schedule import due_at
from service.uow import unit_of_work
from service.worker.runner import Worker
from tests.worker.helpers import RunWorker, worker_settings

pytestmark = pytest.mark.asyncio

Kinds = Callable[..., Callable[[registry.Run], registry.Run]]


@pytest_asyncio.fixture
async def kinds() -> AsyncIterator[Kinds]:
    """`@kinds(name, ...)` registers a test-only kind, forgotten after the test."""
    names: list[str] = []

    def declare(
        name: str, every: timedelta | None = None, **options: Any
    ) -> Callable[[registry.Run], registry.Run]:
        names.append(name)
        if every is not None:
            return registry.scheduled(name, every=every, **options)
        return registry.job_kind(name, **options)

    yield declare
    for name in names:
        registry.forget(name)


async def _enqueue(db: Database, kind: str, payload: dict[str, Any]) -> uuid.UUID:
    async with unit_of_work(db) as uow:
        return await uow.enqueue(kind, payload, tenant_id="t1")


async def _job(db: Database, job_id: uuid.UUID) -> Job:
    async with db.read() as session:
        job = await session.get(Job, job_id)
    assert job is not None
    return job


async def _until_done(db: Database, job_id: uuid.UUID, within: float = 20) -> Job:
    deadline = time.monotonic() + within
    while True:
        job = await _job(db, job_id)
        if job.status in ("SUCCEEDED", "FAILED"):
            return job
        assert time.monotonic() < deadline, f"job still {job.status}"
        await asyncio.sleep(0.05)


class TestKinds:
    async def test_a_registered_kind_runs_and_its_end_is_announced(
        self, db: Database, kinds: Kinds, run_worker: RunWorker
    ) -> None:
        seen: list[dict[str, Any]] = []
        finished: list[JobFinished] = []

        @kinds("test.echo")
        async def echo(ctx: JobContext) -> None:
            await ctx.save(step="saved")
            seen.append({**ctx.payload, "state": dict(ctx.state), "at": ctx.attempt})

        @after_commit(JobFinished)
        async def on_finished(event: JobFinished, _db: Database) -> None:
            finished.append(event)

        try:
            async with run_worker():
                job_id = await _enqueue(db, "test.echo", {"n": 7})
                job = await _until_done(db, job_id)
        finally:
            remove_handler(on_finished)
        assert (job.status, job.attempts, job.state) == (
            "SUCCEEDED",
            1,
            {"step": "saved"},
        )
        assert seen == [{"n": 7, "state": {"step": "saved"}, "at": 1}]
        assert [(e.job_id, e.kind, e.status) for e in finished] == [
            (job_id, "test.echo", "SUCCEEDED")
        ]

    async def test_retry_later_retries_with_backoff_then_succeeds(
        self, db: Database, kinds: Kinds, run_worker: RunWorker
    ) -> None:
        @kinds("test.flaky", backoff_base=0.01, backoff_cap=0.02)
        async def flaky(ctx: JobContext) -> None:
            if ctx.attempt < 3:
                raise RetryLater(f"receiver answered 503 ({ctx.attempt})")

        async with run_worker():
            job = await _until_done(db, await _enqueue(db, "test.flaky", {}))
        assert (job.status, job.attempts, job.error) == ("SUCCEEDED", 3, None)

    async def test_retry_later_gives_up_at_the_kinds_limit(
        self, db: Database, kinds: Kinds, run_worker: RunWorker
    ) -> None:
        @kinds("test.down", max_attempts=2, backoff_base=0.01, backoff_cap=0.02)
        async def down(ctx: JobContext) -> None:
            raise RetryLater("connection refused", note="; the receiver is down")

        async with run_worker(job_max_attempts=5):
            job = await _until_done(db, await _enqueue(db, "test.down", {}))
        assert (job.status, job.attempts) == ("FAILED", 2)
        assert job.error == (
            "gave up after 2 attempts: connection refused; the receiver is down"
        )

    async def test_job_failed_fails_at_once(
        self, db: Database, kinds: Kinds, run_worker: RunWorker
    ) -> None:
        @kinds("test.refused")
        async def refused(ctx: JobContext) -> None:
            raise JobFailed("the endpoint was deleted")

        async with run_worker():
            job = await _until_done(db, await _enqueue(db, "test.refused", {}))
        assert (job.status, job.attempts, job.error) == (
            "FAILED",
            1,
            "the endpoint was deleted",
        )

    async def test_a_worker_leaves_kinds_it_does_not_know(
        self, db: Database, kinds: Kinds, run_worker: RunWorker
    ) -> None:
        @kinds("test.known")
        async def known(ctx: JobContext) -> None:
            return None

        unknown = await _enqueue(db, "test.elsewhere", {})
        async with run_worker():
            done = await _until_done(db, await _enqueue(db, "test.known", {}))
        assert done.status == "SUCCEEDED"
        left = await _job(db, unknown)
        assert (left.status, left.attempts) == ("QUEUED", 0)


class TestSchedules:
    async def test_due_times_are_multiples_of_the_period(self) -> None:
        every = registry.Schedule("x", timedelta(minutes=5))
        at = datetime(2026, 3, 1, 10, 7, 30, tzinfo=UTC)
        assert due_at(every, at) == datetime(2026, 3, 1, 10, 5, tzinfo=UTC)
        assert due_at(every, datetime(2026, 3, 1, 10, 5, tzinfo=UTC)) == due_at(
            every, at
        )

    async def test_two_workers_enqueue_each_due_time_once(
        self,
        db: Database,
        database_url: str,
        corti: CortiClient,
        kinds: Kinds,
    ) -> None:
        @kinds("test.sweep", every=timedelta(minutes=5))
        async def sweep(ctx: JobContext) -> None:
            return None

        other_db = Database.from_url(database_url)
        try:
            settings = worker_settings(database_url)
            first = Worker(db, corti, settings)
            second = Worker(other_db, corti, settings)
            at = datetime(2026, 3, 1, 10, 7, tzinfo=UTC)
            for now in (
                at,
                at + timedelta(minutes=1),  # same period
                at + timedelta(minutes=3),  # the next one
                at + timedelta(minutes=3, seconds=1),
            ):
                # Each worker's own clock says the schedule is due.
                first._next_due.clear()
                second._next_due.clear()
                await asyncio.gather(
                    first.enqueue_scheduled(now), second.enqueue_scheduled(now)
                )
        finally:
            await other_db.dispose()
        async with db.read() as session:
            rows = (
                await session.execute(select(Job.kind, Job.payload, Job.run_after))
            ).all()
        assert sorted(row.payload["due_at"] for row in rows) == [
            "2026-03-01T10:05:00+00:00",
            "2026-03-01T10:10:00+00:00",
        ]
        assert {row.kind for row in rows} == {"test.sweep"}

    async def test_scheduled_jobs_run_once_per_due_time_with_two_workers(
        self,
        db: Database,
        database_url: str,
        kinds: Kinds,
        run_worker: RunWorker,
    ) -> None:
        runs: list[str] = []

        @kinds("test.tick", every=timedelta(seconds=1))
        async def tick(ctx: JobContext) -> None:
            runs.append(ctx.payload["due_at"])

        other_db = Database.from_url(database_url)
        try:
            async with run_worker(), run_worker(database=other_db):
                deadline = time.monotonic() + 20
                while len(runs) < 3:
                    assert time.monotonic() < deadline, runs
                    await asyncio.sleep(0.05)
        finally:
            await other_db.dispose()
        assert len(runs) == len(set(runs))
        async with db.read() as session:
            due = list(
                (
                    await session.execute(select(Job.payload["due_at"].as_string()))
                ).scalars()
            )
        assert len(due) == len(set(due)) >= 3
